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

import json
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest

from _postgres import PostgresCluster, PostgresUnavailable, fresh_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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


@dataclass
class Reply:
    """What the server answers.

    ``body`` is JSON-serialisable, or ``bytes`` sent as they are, or a non-empty ``list`` of
    ``bytes`` pieces streamed one by one (``text/event-stream``, the body ends when the connection
    closes), with ``pause`` seconds before each piece after the first ``pause_after``.
    """

    body: Any = None
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    pause: float = 0.0
    pause_after: int = 0


@dataclass(frozen=True)
class Received:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeEndpoint:
    """Scripted replies (a queue, then a fallback) and a record of every request."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.base_url = ""
        self.stopping = threading.Event()
        self._queue: deque[Reply] = deque()
        self._fallback: Callable[[Received], Reply] | None = None
        self._lock = threading.Lock()

    def reply(self, body: Any = None, **options: Any) -> None:
        """Answer the next unanswered request with this (calls queue up in order)."""
        with self._lock:
            self._queue.append(Reply(body, **options))

    def always(self, body: Any = None, **options: Any) -> None:
        """Answer every request the queue does not cover with this."""
        reply = Reply(body, **options)
        self._fallback = lambda _request: reply

    @staticmethod
    def completion(text: str) -> dict[str, Any]:
        """An OpenAI chat-completion body whose answer is ``text``."""
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }

    def respond(self, body_for: Callable[[Received], Any]) -> None:
        """Answer every request the queue does not cover with ``200 body_for(request)``."""
        self._fallback = lambda request: Reply(body_for(request))

    def next_reply(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self._fallback is not None:
            return self._fallback(request)
        return Reply({"error": "the test scripted no reply for this request"}, status=599)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        endpoint = self.server.endpoint
        reply = endpoint.next_reply(request)
        if reply.delay:
            endpoint.stopping.wait(reply.delay)
        if (
            isinstance(reply.body, list)
            and reply.body
            and all(isinstance(piece, bytes) for piece in reply.body)
        ):
            self._stream(reply, endpoint)
            return
        raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _stream(self, reply: Reply, endpoint: FakeEndpoint) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        for i, piece in enumerate(reply.body):
            if reply.pause and i >= reply.pause_after:
                endpoint.stopping.wait(reply.pause)
                if endpoint.stopping.is_set():
                    return
            self.wfile.write(piece)
            self.wfile.flush()

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads: nothing outlives a test

    def __init__(self, endpoint: FakeEndpoint) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = endpoint

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up first (a timeout test): expected
        super().handle_error(request, client_address)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    """A scripted OpenAI-style server; its ``base_url`` ends in ``/v1``."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    fake = FakeEndpoint()
    server = _Server(fake)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_url() -> str:
    """A URL on a local port nobody listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


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
