"""The console as an ASGI app of its own, mounted by the gateway at ``/console``.

Its own app so that its errors are HTML pages (the API's are JSON in OpenAI's shape) and its
routes stay out of the API's OpenAPI document.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from safestack.console import _campaigns, _evidence, _home, _review
from safestack.console._auth import ConsoleError, NotSignedIn, sign_in_redirect
from safestack.console._pages import SECURITY_HEADERS, render
from safestack.errors import (
    ImageError,
    InputError,
    RecordConflictError,
    RecordNotFoundError,
    StoreUnavailableError,
)
from safestack.gateway._state import Gateway

__all__ = ["console_app"]

log = logging.getLogger("safestack.console")


def console_app(gateway: Gateway) -> FastAPI:
    """The console for ``gateway``'s store and stacks (mount it at ``/console``)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    for module in (_home, _campaigns, _review, _evidence):
        app.include_router(module.router)
    _add_error_pages(app)
    return app


def _error(request: Request, status: int, message: str) -> HTMLResponse:
    user = getattr(request.state, "console_user", None)
    return render(
        request,
        "error.html.j2",
        user=user,
        status=status,
        title=f"Error {status}",
        status_code=status,
        message=message,
        request_id=getattr(request.state, "request_id", None),
    )


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def on_signed_out(request: Request, exc: NotSignedIn) -> Response:
        if request.method != "GET":
            return _error(request, 401, "your session has ended; sign in again")
        return RedirectResponse(
            sign_in_redirect(exc.next_path), status_code=303, headers=SECURITY_HEADERS
        )

    @app.exception_handler(ConsoleError)
    async def on_console(request: Request, exc: ConsoleError) -> HTMLResponse:
        return _error(request, exc.status, exc.message)

    @app.exception_handler(RecordNotFoundError)
    async def on_missing(request: Request, exc: RecordNotFoundError) -> HTMLResponse:
        return _error(request, 404, str(exc))

    @app.exception_handler(RecordConflictError)
    async def on_conflict(request: Request, exc: RecordConflictError) -> HTMLResponse:
        return _error(request, 409, str(exc))

    @app.exception_handler(InputError)
    async def on_input(request: Request, exc: InputError) -> HTMLResponse:
        return _error(request, 400, str(exc))

    @app.exception_handler(ImageError)
    async def on_image(request: Request, exc: ImageError) -> HTMLResponse:
        return _error(request, 413 if "large" in type(exc).__name__.lower() else 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return _error(request, 400, f"invalid {where or 'request'}: {first.get('msg', '')}")

    @app.exception_handler(StoreUnavailableError)
    async def on_store_down(request: Request, exc: StoreUnavailableError) -> HTMLResponse:
        log.error("console request: store unavailable: %s", exc)
        return _error(request, 503, "the database is unavailable; nothing was changed, retry")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return _error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("console request %s failed", getattr(request.state, "request_id", "?"))
        return _error(request, 500, "internal error; the operator's log has the details")
