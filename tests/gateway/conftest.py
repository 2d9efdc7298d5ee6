"""Real gateways for the tests: ``safestack serve`` processes on 127.0.0.1.

Each module gets gateway processes on a SQLite file and on a fresh PostgreSQL database, in front
of a scripted upstream (a real HTTP server on loopback) and of the recorded model. Tests talk to
them with the real ``openai`` client and raw HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _postgres import fresh_database
from gateway_process import RunningGateway, gateway_config, start_gateway, stop_gateway
from loopback import FakeEndpoint, serving


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeEndpoint]:
    """A scripted OpenAI-compatible upstream shared by the module's gateways."""
    with serving() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_script(upstream: FakeEndpoint) -> None:
    upstream.reset()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeEndpoint,
) -> Iterator[RunningGateway]:
    """A running gateway on each database."""
    tmp = tmp_path_factory.mktemp(f"gateway-{request.param}")
    if request.param == "sqlite":
        running = start_gateway(
            tmp, database_url=f"sqlite:///{tmp}/gateway.db", config=gateway_config(upstream)
        )
        try:
            yield running
        finally:
            stop_gateway(running)
        return
    server: str = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        running = start_gateway(tmp, database_url=url, config=gateway_config(upstream))
        try:
            yield running
        finally:
            stop_gateway(running)
