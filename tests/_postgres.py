"""A throwaway PostgreSQL cluster for the tests, and fresh databases on it.

The store and the gateway are tested against a real PostgreSQL, not a mock, because what matters
there is what only a server does: row locks between connections, a connection that dies when the
server stops, an advisory lock that makes a second migration wait.

:class:`PostgresCluster` runs ``initdb`` into a temporary directory and ``pg_ctl`` to start and
stop a private server on 127.0.0.1 (on a free port, with its socket in the same directory), with
durability switched off because nothing in it needs to survive. PostgreSQL refuses to run as
root; when the tests do, the directory is handed to the ``postgres`` system user and the
binaries run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from loopback import free_port

__all__ = [
    "PostgresCluster",
    "PostgresUnavailable",
    "find_postgres_bin",
    "fresh_database",
]

_SERVER_USER = "postgres"


class PostgresUnavailable(Exception):
    """PostgreSQL is not installed here, or the throwaway cluster could not be started."""


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's layout."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):  # the newest version first
        if (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable("initdb / pg_ctl not found on PATH nor under /usr/lib/postgresql")


class PostgresCluster:
    """A private PostgreSQL server for one test session; :meth:`stop` / :meth:`start` at will.

    The port stays the same across restarts, so a URL taken before :meth:`stop` works again
    after :meth:`start` (that is how the gateway tests make the database vanish and return).
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="safestack-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "server.log"
        self.port = free_port()
        self.running = False
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.socket_dir.mkdir()
        if self._as_root:
            shutil.chown(self.root, user=_SERVER_USER)
            shutil.chown(self.socket_dir, user=_SERVER_USER)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` maintenance database, as user ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", _SERVER_USER, "--", *command]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as error:
            output = getattr(error, "stderr", None) or getattr(error, "stdout", None) or ""
            raise PostgresUnavailable(f"{tool} failed: {error}\n{output}".strip()) from error

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        self.running = True
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"the server does not answer: {error}") from error
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``): open connections die as in a crash."""
        if not self.running:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        """Stop the server and delete everything it wrote."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database ``t_<uuid>`` on the server, dropped (connections and all) after."""
    name = f"t_{uuid.uuid4().hex}"
    admin = make_url(server_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                connection.execute(drop.format(sql.Identifier(name)))
        except psycopg.OperationalError:
            pass  # the server is gone (a test stopped it and it did not come back): nothing to drop
