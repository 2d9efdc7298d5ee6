"""Limits that protect the gateway from clients: body size, slow bodies, slow headers.

* **Body size** — a declared ``Content-Length`` over the limit is answered 413 before a byte of
  the body is read; a chunked body is counted as it arrives and cut off at the limit. Nothing
  is parsed first, so a 10 MB JSON document costs the gateway nothing.
* **Slow bodies** — each body chunk must arrive within ``body_timeout_s`` (408 otherwise).
* **Slow headers** (slow-loris) — :class:`SlowClientGuard`, a uvicorn protocol, closes a
  connection whose request headers are not complete within ``header_timeout_s``. Uvicorn itself
  only times out idle keep-alive connections.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from safestack.gateway._wire import error_body

__all__ = ["BodyLimits", "SlowClientGuard", "slow_client_guard"]


class _BodyProblem(HTTPException):
    """Raised from ``receive``; an HTTPException so that FastAPI's body parsing passes it on."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.status, self.message, self.code = status, message, code


class BodyLimits:
    """ASGI middleware enforcing the body size and the per-chunk body timeout."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout_s: float,
        larger_bodies: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        # Routes (image uploads; "{id}" matches one path segment) that may carry more.
        self.larger_bodies = [
            (re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route))), limit)
            for route, limit in (larger_bodies or {}).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = next((n for r, n in self.larger_bodies if r.fullmatch(scope["path"])), None)
        limit = upload or self.max_body_bytes
        setting = "max_upload_bytes" if upload else "max_body_bytes"
        too_big = _BodyProblem(
            413,
            f"request body larger than {limit:,} bytes ({setting}); send less",
            "request_too_large",
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _reply(send, too_big, scope)
                    return
            except ValueError:
                await _reply(
                    send, _BodyProblem(400, "invalid Content-Length", "bad_request"), scope
                )
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), timeout=self.body_timeout_s)
            except TimeoutError:
                raise _BodyProblem(
                    408,
                    f"the request body did not arrive within {self.body_timeout_s:g} s",
                    "request_timeout",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_big
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyProblem as problem:
            if not started:
                await _reply(send, problem, scope)


async def _reply(send: Send, problem: _BodyProblem, scope: Scope) -> None:
    """The error as JSON in OpenAI's shape, or as a page for the console's browsers."""
    if scope["path"].startswith("/console/"):
        content_type = b"text/html; charset=utf-8"
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Request refused</title>"
            f"<h1>Request refused</h1><p>{html.escape(problem.message)}</p>"
            "<p>Go back and send less (for an image, a smaller file).</p></html>"
        ).encode()
    else:
        content_type = b"application/json"
        body = json.dumps(
            error_body(problem.message, type="invalid_request_error", code=problem.code)
        ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SlowClientGuard(H11Protocol):
    """Uvicorn's HTTP/1.1 protocol, plus a deadline for complete request headers."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on a kept-alive connection gets the same deadline

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # headers are in: the body has its own timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def slow_client_guard(header_timeout_s: float) -> type[SlowClientGuard]:
    """The protocol class to hand to uvicorn (``http=``), with this header deadline."""
    return type("SlowClientGuard", (SlowClientGuard,), {"header_timeout_s": header_timeout_s})
