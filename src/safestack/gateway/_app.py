"""The FastAPI application: routes, error handling, health, metrics.

Errors always come back in OpenAI's shape (``{"error": {"message", "type", "code"}}``) with the
request id, and never with a stack trace, a secret or a database URL: the details go to the log
under the same request id.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safestack import __version__
from safestack.classify.rules import NameRegistry
from safestack.errors import (
    ConfigError,
    ImageError,
    ImageTooLargeError,
    InputError,
    RecordConflictError,
    RecordNotFoundError,
    StoreUnavailableError,
)
from safestack.gateway import _admin, _images, _provenance, _requests, _v1
from safestack.gateway._auth import HTTPProblem
from safestack.gateway._config import GatewayConfig
from safestack.gateway._image_files import ImageFiles
from safestack.gateway._limits import BodyLimits
from safestack.gateway._state import (
    Gateway,
    build_image_checks,
    build_image_stacks,
    build_stacks,
    image_directory,
    opt_out_faces,
)
from safestack.gateway._wire import ErrorBody, error_body
from safestack.hashing import Enforcer, HashMatcher
from safestack.hashing._reports import ReportDeliverer
from safestack.provenance import Provenance
from safestack.stack import ImageSafetyStack, SafetyStack
from safestack.store import Store

__all__ = ["MIN_ADMIN_KEY_CHARS", "create_app"]

log = logging.getLogger("safestack.gateway")

#: Shorter admin keys are refused: the admin key guards bans and key issuance.
MIN_ADMIN_KEY_CHARS = 16
_ADMIN_KEY_SOURCE = "SAFESTACK_ADMIN_KEY"


def create_app(
    config: GatewayConfig | None = None,
    *,
    admin_key: str | None,
    enable_admin: bool = True,
    store: Store | None = None,
    stack: SafetyStack | None = None,
    image_stack: ImageSafetyStack | None = None,
) -> FastAPI:
    """The gateway as an ASGI app (serve it with uvicorn, or ``safestack serve``).

    ``admin_key`` is required while ``enable_admin`` is true (the admin API never runs
    unauthenticated); with ``enable_admin=False`` the ``/admin`` routes do not exist. ``store``
    and ``stack`` default to the configuration's; ``image_stack`` (the image checks, around any
    image model) defaults to every image check around the configured image upstreams. The store
    is migrated at start-up and the classifiers load in the background (``/readyz`` answers 503
    until they have).
    """
    config = config or GatewayConfig()
    if enable_admin:
        if not admin_key:
            raise ConfigError(
                "the admin API needs an admin key: set SAFESTACK_ADMIN_KEY (or run without the "
                "admin API)",
                path=_ADMIN_KEY_SOURCE,
            )
        if len(admin_key) < MIN_ADMIN_KEY_CHARS:
            raise ConfigError(
                f"the admin key is {len(admin_key)} characters; use at least "
                f"{MIN_ADMIN_KEY_CHARS} random characters (e.g. `openssl rand -hex 32`)",
                path=_ADMIN_KEY_SOURCE,
            )
    store = store or Store(config.database_url)
    # Signing material is checked here, before anything else loads: a certificate that expired
    # or cannot sign C2PA stops the gateway at start-up (CredentialsError), not at its first image.
    provenance = (
        Provenance.from_config(config.provenance, store) if config.provenance.enabled else None
    )
    stacks = build_stacks(config, stack)
    base = next(iter(stacks.values()))
    names = NameRegistry()
    faces = opt_out_faces(store) if image_stack is None else None
    matcher = HashMatcher(store)
    image_base = image_stack or build_image_checks(config, base, matcher, names, faces)
    gateway = Gateway(
        config=config,
        store=store,
        stacks=stacks,
        admin_key=admin_key if enable_admin else None,
        image_stacks=build_image_stacks(config, image_base),
        # Links signed with a key derived from the admin key work on every replica; without
        # an admin API, a per-process secret (links then work on this replica only).
        image_files=ImageFiles(
            image_directory(config),
            secret=admin_key or secrets.token_hex(32),
            ttl_s=config.image_url_ttl_s,
        ),
        enforcer=Enforcer(store, receiver=config.reports),
        opt_out_names=names,
        opt_out_faces=faces,
        hash_matcher=matcher,
        provenance=provenance,
    )
    # Reports of known-bad media go out through the store as an outbox; every replica runs a
    # deliverer and they never send the same report at once (see ReportDeliverer).
    deliverer = ReportDeliverer(store, config.reports) if config.reports is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.limiter = anyio.CapacityLimiter(config.workers)
        await run_in_threadpool(gateway.store.migrate)
        threading.Thread(target=gateway.warm_up, name="safestack-warm-up", daemon=True).start()
        if deliverer is not None:
            deliverer.start()
        log.info("gateway ready to accept requests; store %s", gateway.store.url)
        _log_provenance(provenance)
        yield
        if deliverer is not None:
            await run_in_threadpool(deliverer.stop)
        gateway.close()

    app = FastAPI(
        title="safestack gateway",
        version=__version__,
        description="An OpenAI-compatible API with the safety stack between client and model.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.include_router(_v1.router)
    app.include_router(_requests.router)
    app.include_router(_images.router)
    app.include_router(_provenance.router)
    if enable_admin:
        app.include_router(_admin.router)
        if config.console.enabled:
            # The console signs people in with the admin key or role-holding API keys, so it
            # exists only where the admin API does.
            from safestack.console import console_app

            app.mount("/console", console_app(gateway))
    _add_health_routes(app, gateway)
    _add_error_handlers(app)
    _document_errors(app)
    app.add_middleware(RequestContext, gateway=gateway)
    app.add_middleware(
        BodyLimits,
        max_body_bytes=config.max_body_bytes,
        body_timeout_s=config.body_timeout_s,
        # An edit carries an image and a mask, each up to max_upload_bytes, and form fields.
        larger_bodies={
            "/v1/images/edits": 2 * config.max_upload_bytes + 1_048_576,
            "/admin/opt-outs/{opt_out_id}/faces": config.max_upload_bytes + 1_048_576,
            # A red teamer's image upload in a campaign conversation.
            "/console/conversations/{conversation_id}/turns": config.max_upload_bytes + 1_048_576,
            # An image and a sidecar manifest, each up to max_upload_bytes, base64 in JSON.
            **dict.fromkeys(
                ("/v1/provenance/lookup", "/v1/provenance/verify"),
                3 * config.max_upload_bytes + 1_048_576,
            ),
        },
    )
    return app


def _log_provenance(provenance: Provenance | None) -> None:
    if provenance is None:
        log.warning("provenance is off: images are released unsigned and unregistered")
        return
    credentials = provenance.signer.credentials
    watermark = provenance.watermarker.method if provenance.watermarker else "none"
    log.info(
        "provenance: signing as %s until %s, watermark %s",
        credentials.subject,
        f"{credentials.not_after:%Y-%m-%d}",
        watermark,
    )
    if credentials.development:
        log.warning(
            "provenance: development credentials, NOT trusted by public C2PA validators; "
            "configure provenance.certificate for production"
        )


class Readiness(BaseModel):
    """``/readyz``: ``ready`` when every check is ``ok``."""

    status: str
    checks: dict[str, str]


#: Error statuses each group of routes can answer, for the OpenAPI document (all in ErrorBody).
_ERRORS = {
    "/v1/chat/completions": (400, 401, 403, 404, 408, 413, 500, 502, 503, 504),
    "/v1/moderations": (400, 401, 403, 408, 413, 500, 503),
    "/v1/models": (401, 403, 500, 503),
    "/v1/images/files/": (400, 404, 500),
    "/v1/images/": (400, 401, 403, 404, 408, 413, 500, 502, 503, 504),
    "/v1/provenance/manifests/": (400, 401, 403, 404, 500, 503),
    "/v1/provenance/": (400, 401, 403, 404, 408, 413, 500, 503),
    "/admin/": (400, 401, 404, 408, 409, 413, 500, 503),
}
_STATUS_TEXT = {
    400: "Invalid request (not JSON, wrong types, a conversation that cannot be answered, an "
    "image that cannot be decoded); on image routes also a refusal by the safety system "
    "(code content_policy_violation, with the safestack decision).",
    401: "No API key, or an unknown or revoked one (admin routes: not the admin key).",
    403: "The account is suspended (code account_banned, reason admin_ban or strikes).",
    404: "Unknown model or record.",
    408: "The request body stopped arriving.",
    409: "The record exists already.",
    413: "The request body is larger than max_body_bytes (image uploads: max_upload_bytes).",
    500: "Internal error; the operator's log has the details under the request id.",
    502: "The upstream model failed or answered out of contract.",
    503: "The database is unavailable; nothing was written. On image routes also an image "
    "that could not be stamped for provenance (code provenance_unavailable): none was released.",
    504: "The upstream model did not answer in time.",
}


def _document_errors(app: FastAPI) -> None:
    """Describe the errors the gateway really answers, in OpenAI's shape, instead of 422.

    FastAPI documents a 422 ``HTTPValidationError`` for every route with parameters; this API
    answers validation errors with 400 in OpenAI's error shape, which clients parse.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorBody"] = error_schema
        reference = {"$ref": "#/components/schemas/ErrorBody"}
        for path, operations in schema["paths"].items():
            statuses = next(
                (codes for prefix, codes in _ERRORS.items() if path.startswith(prefix)), ()
            )
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status in statuses:
                    responses.setdefault(
                        str(status),
                        {
                            "description": _STATUS_TEXT[status],
                            "content": {"application/json": {"schema": reference}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_health_routes(app: FastAPI, gateway: Gateway) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database and classifiers",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: see the checks."}},
    )
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await run_in_threadpool(gateway.store.ping)
            checks["database"] = "ok"
        except StoreUnavailableError:
            checks["database"] = "unavailable"
        if not gateway.ready.is_set():
            checks["classifiers"] = "loading"
        else:
            checks["classifiers"] = "failed to load" if gateway.load_error else "ok"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        return Response(
            gateway.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )


def _problem(request: Request, status: int, **fields: Any) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(error_body(request_id=request_id, **fields), status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPProblem)
    async def on_problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        response = _problem(
            request,
            exc.status,
            message=exc.message,
            type=exc.type,
            code=exc.code,
            param=exc.param,
            reason=exc.reason,
        )
        if exc.extra:
            body = json.loads(bytes(response.body))
            body.update(exc.extra)
            return JSONResponse(body, status_code=exc.status)
        return response

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            message = "the request body is not valid JSON"
        else:
            parts = []
            for e in errors[:3]:
                where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
                parts.append(f"{where}: {e.get('msg', 'invalid')}")
            message = "; ".join(parts)
        return _problem(request, 400, message=message, type="invalid_request_error")

    @app.exception_handler(ImageError)
    async def on_image(request: Request, exc: ImageError) -> JSONResponse:
        status = 413 if isinstance(exc, ImageTooLargeError) else 400
        return _problem(
            request, status, message=str(exc), type="invalid_request_error", code=exc.code
        )

    @app.exception_handler(InputError)
    async def on_input(request: Request, exc: InputError) -> JSONResponse:
        return _problem(request, 400, message=str(exc), type="invalid_request_error")

    @app.exception_handler(RecordConflictError)
    async def on_conflict(request: Request, exc: RecordConflictError) -> JSONResponse:
        return _problem(request, 409, message=str(exc), type="conflict", code="conflict")

    @app.exception_handler(RecordNotFoundError)
    async def on_missing(request: Request, exc: RecordNotFoundError) -> JSONResponse:
        return _problem(request, 404, message=str(exc), type="not_found", code="not_found")

    @app.exception_handler(StoreUnavailableError)
    async def on_store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.error("request %s: store unavailable: %s", request.state.request_id, exc)
        return _problem(
            request,
            503,
            message="the gateway's database is unavailable, so the request was not completed "
            "(nothing was recorded); retry later",
            type="service_unavailable",
            code="store_unavailable",
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if isinstance(exc.__cause__, RecursionError):
            message = "the JSON body is nested too deeply to read"
        elif exc.__cause__ is not None and exc.status_code == 400:
            message = f"the request body could not be read ({type(exc.__cause__).__name__})"
        return _problem(
            request,
            exc.status_code,
            message=message,
            type="invalid_request_error",
            code=getattr(exc, "code", None),
        )

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", getattr(request.state, "request_id", "?"))
        return _problem(
            request,
            500,
            message="internal error; the operator's log has the details under this request id",
            type="server_error",
        )


class RequestContext:
    """Pure ASGI middleware: a request id, the access log line, request metrics.

    Pure ASGI rather than ``@app.middleware``: it must not buffer streamed responses nor stand
    between the body limits and the routes that read the body.
    """

    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        _read_body_as_json(scope)
        path: str = scope["path"]
        route = path if path in _ROUTES else _route_group(path)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
                elapsed = time.perf_counter() - started
                self.gateway.metrics.requests.labels(route, str(status)).inc()
                self.gateway.metrics.request_latency.labels(route).observe(elapsed)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s %.1f ms id=%s",
                scope["method"],
                path,
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


def _route_group(path: str) -> str:
    """The metrics label of a path that is not one of the named API routes."""
    for group in ("/admin", "/console"):
        if path == group or path.startswith(group + "/"):
            return group
    return "other"


def _read_body_as_json(scope: Scope) -> None:
    """Every body this API takes is JSON: read it as JSON even when the client did not say so.

    ``curl -d '{…}'`` sends ``application/x-www-form-urlencoded``, and some clients send no
    content type at all; refusing those with "Input should be a valid dictionary" helps no one.
    Multipart bodies (file uploads) keep their type.
    """
    if scope["method"] not in ("POST", "PUT", "PATCH") or scope["path"].startswith("/console/"):
        return  # the console's HTML forms are form-encoded, and read as forms
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    declared = dict(scope["headers"]).get(b"content-type", b"")
    if declared and not declared.startswith(b"application/x-www-form-urlencoded"):
        return
    scope["headers"] = [*headers, (b"content-type", b"application/json")]


_ROUTES = frozenset(
    {
        "/v1/chat/completions",
        "/v1/moderations",
        "/v1/models",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/provenance/lookup",
        "/v1/provenance/verify",
        "/healthz",
        "/readyz",
        "/metrics",
    }
)
