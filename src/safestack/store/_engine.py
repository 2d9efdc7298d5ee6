"""Database URLs and engines: which database, how to connect, and what an outage looks like.

Two backends are supported, and each is configured for the way safestack uses it:

* **SQLite** (the default, one file, zero set-up) in WAL mode, so readers never wait for the
  writer, with a busy timeout instead of failing at once on a locked file. Python's ``sqlite3``
  module would start transactions lazily and only before writes; SQLAlchemy emits ``BEGIN``
  itself instead, and a transaction that will write starts with ``BEGIN IMMEDIATE``. That takes
  the write lock up front, so two processes doing read-then-write (the strike count, then the
  ban) serialise instead of one of them failing when it tries to upgrade its read lock.
* **PostgreSQL** through psycopg 3, for several gateway replicas sharing one database:
  ``pool_pre_ping`` so that a connection that died with a restarted server is replaced rather
  than failing a request, and a connect timeout so that an unreachable server fails fast.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import URL, Connection, Engine, create_engine, event, exc, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from safestack.errors import ConfigError, InputError, StoreError, StoreUnavailableError

__all__ = [
    "DATABASE_URL_ENV",
    "WRITE_OPTION",
    "create_store_engine",
    "default_database_url",
    "normalize_url",
    "redact",
    "translate_error",
]

DATABASE_URL_ENV = "SAFESTACK_DATABASE_URL"

#: Execution option that marks a transaction as one that will write (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "safestack_write"

_BACKENDS = ("sqlite", "postgresql")


def default_database_url() -> str:
    """``SAFESTACK_DATABASE_URL`` if set, else a SQLite file in the user's data directory.

    The directory is created, so the default works on a fresh machine with no set-up.
    """
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return configured
    directory = Path(platformdirs.user_data_dir("safestack", appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'safestack.db'}"


def redact(url: URL) -> str:
    """``url`` with any password replaced by ``***``: safe to log and to put in messages."""
    return url.render_as_string(hide_password=True)


def normalize_url(url: str) -> URL:
    """Parse ``url`` and pick the driver safestack ships with.

    ``postgresql://`` (and the legacy ``postgres://``) become ``postgresql+psycopg://``: psycopg 3
    is the driver installed with safestack, while SQLAlchemy's default for a bare ``postgresql``
    scheme is psycopg2. An explicit driver (``postgresql+psycopg2://``) is kept as given.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ConfigError(
            "the database URL is not a URL (not repeated here: it may hold a password); expected "
            "sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
        ) from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in _BACKENDS:
        raise ConfigError(
            f"database URL {redact(parsed)!r} uses backend {parsed.get_backend_name()!r}; "
            f"supported: {', '.join(_BACKENDS)}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Each pooled connection would open its own empty database.
        raise ConfigError(
            f"database URL {redact(parsed)!r} is an in-memory SQLite database, which is not "
            "shared between connections; name a file: sqlite:///path/to/file.db"
        )
    return parsed


_POOL_SIZE = 10
_POOL_OVERFLOW = 40


def create_store_engine(
    url: URL, *, connect_timeout_s: float, busy_timeout_s: float = 30.0
) -> Engine:
    """An engine for ``url``; no connection is opened until the first query.

    ``hide_parameters`` keeps bound values (an API key's hash, a ban reason) out of the text of
    SQLAlchemy's exceptions, which end up in logs through ``__cause__``.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_s)
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        # A gateway runs up to ~40 store calls at once (worker threads, decision records); the
        # default pool (5 + 10) made the rest wait and, under load, time out as 503s.
        pool_size=_POOL_SIZE,
        max_overflow=_POOL_OVERFLOW,
        # libpq counts whole seconds (and treats anything below 2 as 2).
        connect_args={"connect_timeout": max(1, math.ceil(connect_timeout_s))},
    )


def _enable_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Switch a new file to WAL. Two processes switching a fresh file at once can get "locked"
    without SQLite's busy handler being consulted, so the switch is retried until the timeout."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    # How long a writer waits for another *process* holding the write lock (writers of this
    # process queue on the Store's own lock first). Overload makes waits long, not failures.
    busy_ms = int(busy_timeout_s * 1000)
    engine = create_engine(
        url,
        hide_parameters=True,
        pool_size=_POOL_SIZE,
        max_overflow=_POOL_OVERFLOW,
        # The engine's pool hands connections to whichever thread asks; each is used by one
        # thread at a time, which is all sqlite3's check guards against.
        connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            _enable_wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


_UNAVAILABLE = (
    exc.OperationalError,  # refused, unreachable, server gone, database locked, deadlock
    exc.InterfaceError,  # the connection object itself is broken
    exc.DisconnectionError,  # the pool found a dead connection it could not replace
    exc.TimeoutError,  # no connection free in the pool in time
)


def translate_error(error: exc.SQLAlchemyError, *, url: URL) -> StoreError | InputError:
    """The safestack error for a SQLAlchemy error, with a message safe to show and to log.

    The message names the database by its redacted URL and quotes the first line of the driver's
    own message (not SQLAlchemy's, which appends the statement); any password that the driver
    echoed is blanked out as well.
    """
    where = redact(url)
    original = getattr(error, "orig", None) or error
    reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    if isinstance(error, exc.DataError) and "NUL" in reason:
        # PostgreSQL cannot store U+0000 in text; SQLite can. Same input, same answer on both.
        return InputError("text for the store must not contain NUL characters (U+0000)")
    invalidated = isinstance(error, exc.DBAPIError) and error.connection_invalidated
    if isinstance(error, _UNAVAILABLE) or invalidated:
        return StoreUnavailableError(f"the store at {where} is unavailable: {reason}")
    return StoreError(f"the store at {where} failed: {reason}")
