"""Shared fixtures.

* ``datasets_dir``: the public datasets; tests that need them fail loudly in CI if missing.
* ``endpoint`` / ``closed_url``: a real HTTP server on 127.0.0.1 that each test scripts (JSON or
  server-sent events), and a port nobody listens on. Remote classifiers, monitors and models are
  tested over real sockets rather than a mocked transport, so that timeouts, dropped streams,
  refused connections and retries behave as they do in production.
* ``database_url`` (parametrized ``sqlite`` / ``postgresql``): an empty database for one test;
  ``postgres_server`` the URL of the session's PostgreSQL server, ``postgres_cluster`` that
  server's :class:`PostgresCluster` when the tests started it (to stop and restart it). The
  server is a throwaway cluster unless ``SAFESTACK_TEST_POSTGRES_URL`` names one; without
  PostgreSQL those tests skip, or fail when ``SAFESTACK_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from _postgres import PostgresCluster, PostgresUnavailable, fresh_database
from loopback import FakeEndpoint, free_port, serving

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Development signing credentials that gateways and commands create on first use go to a
# throwaway folder, never into the user's data directory.
if "SAFESTACK_PROVENANCE_DIR" not in os.environ:
    import tempfile

    os.environ["SAFESTACK_PROVENANCE_DIR"] = os.path.join(
        tempfile.mkdtemp(prefix="safestack-test-provenance-"), "provenance"
    )


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    from safestack.datasets_dir import find_datasets_dir
    from safestack.errors import DataError

    try:
        return find_datasets_dir()
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have ../shared/datasets: {exc}")
        pytest.skip(f"public datasets not found: {exc}")


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    """A scripted OpenAI-style server; its ``base_url`` ends in ``/v1``."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with serving() as fake:
        yield fake


@pytest.fixture
def closed_url() -> str:
    """A URL on a local port nobody listens on: connecting to it is refused."""
    return f"http://127.0.0.1:{free_port()}/v1"


@dataclass(frozen=True)
class PostgresServer:
    """The session's PostgreSQL: its URL, and the cluster when the tests run it themselves."""

    url: str
    cluster: PostgresCluster | None


def _no_postgres(reason: str) -> NoReturn:
    if os.environ.get("SAFESTACK_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"SAFESTACK_REQUIRE_POSTGRES=1 but PostgreSQL is unavailable: {reason}")
    pytest.skip(f"PostgreSQL is unavailable: {reason}")


@pytest.fixture(scope="session")
def _postgres() -> Iterator[PostgresServer]:
    external = os.environ.get("SAFESTACK_TEST_POSTGRES_URL", "").strip()
    if external:
        yield PostgresServer(external, None)
        return
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        _no_postgres(str(exc))
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        cluster.destroy()
        _no_postgres(str(exc))
    try:
        yield PostgresServer(cluster.url, cluster)
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_server(_postgres: PostgresServer) -> str:
    """The URL of a PostgreSQL server the tests may create databases on (as a superuser)."""
    return _postgres.url


@pytest.fixture
def postgres_cluster(_postgres: PostgresServer) -> Iterator[PostgresCluster]:
    """The throwaway cluster, for tests that stop and restart the database; running after."""
    if _postgres.cluster is None:
        pytest.skip("the PostgreSQL server is external (SAFESTACK_TEST_POSTGRES_URL): not stopped")
    yield _postgres.cluster
    _postgres.cluster.start()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each kind: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    server: PostgresServer = request.getfixturevalue("_postgres")
    with fresh_database(server.url) as url:
        try:
            yield url
        finally:
            if server.cluster is not None:
                server.cluster.start()  # a test stopped it: it must be up to drop the database
