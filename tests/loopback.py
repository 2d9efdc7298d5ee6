"""A scripted OpenAI-style HTTP server on 127.0.0.1, for tests of everything that calls one.

Remote classifiers, monitors, models and the gateway's upstreams are tested over real sockets
rather than a mocked transport, so that timeouts, dropped streams, refused connections and
retries behave as they do in production.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeEndpoint", "Received", "Reply", "free_port", "serving"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def reset(self) -> None:
        """Forget the script and the requests seen (a server shared by several tests)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self._fallback = None

    def always(self, body: Any = None, **options: Any) -> None:
        """Answer every request the queue does not cover with this."""
        reply = Reply(body, **options)
        self._fallback = lambda _request: reply

    @staticmethod
    def streamed(text: str, *, piece: int = 20) -> list[bytes]:
        """``text`` as an OpenAI chat stream of ``piece``-character deltas, then ``[DONE]``."""
        events = [
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": text[i : i + piece]}}],
            }
            for i in range(0, len(text), piece)
        ]
        return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]

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


@contextmanager
def serving() -> Iterator[FakeEndpoint]:
    """A :class:`FakeEndpoint` listening on 127.0.0.1 until the block ends."""
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
