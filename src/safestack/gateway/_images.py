"""``/v1/images``: generations and edits (OpenAI's shapes) with the image safety checks.

A refusal is what OpenAI's images API returns for one: HTTP 400 with ``code:
"content_policy_violation"``, so existing clients raise their usual ``BadRequestError``; the
body also carries the ``safestack`` decision (layer, categories, request id). A known-bad media
match is enforced (report, ban, per the bank's actions) before the answer is sent, so a crash
after answering cannot lose a report.

Every image let out is first stamped (watermark, C2PA manifest, registry record; see
:mod:`safestack.provenance`), and its record named in ``safestack.provenance``; an image that
cannot be stamped is not released: the answer is 503 ``provenance_unavailable``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from safestack.errors import ImageTooLargeError, SafestackError, StoreError
from safestack.gateway._auth import Caller, GatewayDep, HTTPProblem
from safestack.gateway._state import Gateway
from safestack.gateway._v1 import (
    _extension,
    _record,
    _served,
    _server_timing,
    _upstream_problem,
    cut,
)
from safestack.http_endpoint import describe_validation_error
from safestack.provenance import Provenance, StampedImage
from safestack.stack import ImageResult, ImageSafetyStack
from safestack.store import Account

__all__ = ["ImageProvenance", "read_upload_form", "router"]

log = logging.getLogger("safestack.gateway")
router = APIRouter(prefix="/v1/images", tags=["OpenAI-compatible"])

_MAX_PROMPT_CHARS = 32_000


class _ImageOptions(BaseModel):
    """Fields both image endpoints share. OpenAI options that change nothing here (quality,
    style, background, output format, moderation) are accepted and ignored, so clients that
    send them keep working; unknown fields are refused, so a misspelt one is not silently lost.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=_MAX_PROMPT_CHARS)
    model: str | None = Field(default=None, description="Default: the first image model served.")
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = Field(default=None, max_length=32)
    response_format: Literal["b64_json", "url"] = Field(
        default="b64_json",
        description="'b64_json' (default: the bytes in the answer) or 'url' (a signed link that "
        "needs no key and expires after image_url_ttl_s).",
    )
    user: str | None = Field(default=None, max_length=256)
    quality: str | None = Field(default=None, max_length=32)
    style: str | None = Field(default=None, max_length=32)
    background: str | None = Field(default=None, max_length=32)
    moderation: str | None = Field(default=None, max_length=32)
    output_format: str | None = Field(default=None, max_length=16)
    output_compression: int | None = Field(default=None, ge=0, le=100)
    input_fidelity: str | None = Field(default=None, max_length=16)


class ImageGenerationRequest(_ImageOptions):
    """``POST /v1/images/generations``."""


def _image_stack(gateway: Gateway, model: str | None) -> tuple[str, ImageSafetyStack]:
    if model is None:
        name = next(iter(gateway.image_stacks))
        return name, gateway.image_stacks[name]
    return model, _served(gateway.image_stacks, model, what="image model")


@router.post("/generations", summary="Create images from a prompt")
async def generations(
    body: ImageGenerationRequest, gateway: GatewayDep, account: Caller, request: Request
) -> Any:
    name, stack = _image_stack(gateway, body.model)
    started = time.perf_counter()

    def run() -> ImageResult:
        gateway.refresh_opt_outs()
        return stack.generate(body.prompt, audience=account.audience, n=body.n, size=body.size)

    result = await anyio.to_thread.run_sync(run, limiter=gateway.limiter)
    return await _answer(
        gateway, account, request, "images.generations", name, body, result, started
    )


_EDIT_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "prompt"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "mask": {"type": "string", "format": "binary"},
                        "prompt": {"type": "string", "minLength": 1},
                        "model": {"type": "string"},
                        "n": {"type": "integer", "minimum": 1, "maximum": 10},
                        "size": {"type": "string"},
                        "response_format": {"type": "string", "enum": ["b64_json", "url"]},
                        "user": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/edits",
    summary="Edit an uploaded image by a prompt",
    openapi_extra=_EDIT_FORM_SCHEMA,
    description="Multipart form: one `image` (PNG, JPEG, WebP or GIF; every frame of an "
    "animation is checked) and an optional `mask`, each up to max_upload_bytes, plus the "
    "generation fields. Uploads are checked against known-bad hash banks and the image "
    "classifiers before the prompt; edits of photorealistic minors are refused.",
)
async def edits(gateway: GatewayDep, account: Caller, request: Request) -> Any:
    image, mask, fields = await _read_edit_form(request, gateway.config.max_upload_bytes)
    try:
        options = _ImageOptions.model_validate(fields)
    except ValidationError as exc:
        raise HTTPProblem(400, describe_validation_error(exc)) from None
    name, stack = _image_stack(gateway, options.model)
    started = time.perf_counter()

    def run() -> ImageResult:
        gateway.refresh_opt_outs()
        return stack.edit(
            image,
            options.prompt,
            audience=account.audience,
            mask=mask,
            n=options.n,
            size=options.size,
        )

    result = await anyio.to_thread.run_sync(run, limiter=gateway.limiter)
    return await _answer(
        gateway, account, request, "images.edits", name, options, result, started, parent=image
    )


async def _read_edit_form(
    request: Request, max_upload_bytes: int
) -> tuple[bytes, bytes | None, dict[str, str]]:
    """The upload, the mask and the text fields of a multipart edit request."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPProblem(
            400,
            "image edits take multipart/form-data with an 'image' file and a 'prompt' field",
            param="image",
        )
    uploads, fields = await read_upload_form(
        request, max_upload_bytes, files={"image": "image", "image[]": "image", "mask": "mask"}
    )
    if "image" not in uploads:
        raise HTTPProblem(400, "an 'image' file is required", param="image")
    return uploads["image"], uploads.get("mask"), fields


async def read_upload_form(
    request: Request, max_upload_bytes: int, *, files: Mapping[str, str]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The files (by their canonical names) and the text fields of a multipart upload.

    ``files`` maps each accepted file field to its canonical name (OpenAI's SDKs may send
    ``image[]`` for ``image``). Every upload route reads its form here, so they all refuse the
    same things the same way: a file over ``max_upload_bytes`` (413, read no further than one
    byte past the limit), an unexpected file field, a file or field given twice (400).
    """
    try:
        form = await request.form(max_files=len(set(files.values())), max_fields=32)
    except Exception as exc:  # starlette raises several kinds for a malformed body
        raise HTTPProblem(400, f"the multipart body cannot be read: {exc}") from None
    uploads: dict[str, bytes] = {}
    fields: dict[str, str] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(max_upload_bytes + 1)
                if len(data) > max_upload_bytes:
                    raise ImageTooLargeError(
                        f"the uploaded {key!r} is larger than {max_upload_bytes:,} bytes "
                        "(max_upload_bytes)"
                    )
                name = files.get(key)
                if name is None:
                    raise HTTPProblem(400, f"unexpected file field {key!r}", param=key)
                if name in uploads:
                    raise HTTPProblem(400, f"send one {name!r} file", param=name)
                uploads[name] = data
            else:
                if key in fields:
                    raise HTTPProblem(400, f"field {key!r} is given twice", param=key)
                fields[key] = value
    finally:
        await form.close()
    return uploads, fields


async def _answer(
    gateway: Gateway,
    account: Account,
    request: Request,
    endpoint: str,
    model: str,
    options: _ImageOptions,
    result: ImageResult,
    started: float,
    *,
    parent: bytes | None = None,
) -> Any:
    request_id: str = request.state.request_id
    decision = result.decision
    gateway.metrics.observe_decision(decision)
    if result.hash_match is not None:
        await run_in_threadpool(_enforce, gateway, account, request_id, endpoint, result)
    latency_ms = (time.perf_counter() - started) * 1000
    details = partial(_image_review_details, options, result, parent)
    await run_in_threadpool(
        _record, gateway, account, request_id, endpoint, model, decision, latency_ms, details
    )
    if decision.status == "error":
        raise _upstream_problem(model, decision)
    extension = _extension(request_id, decision)
    if decision.blocked:
        raise HTTPProblem(
            400,
            result.refusal or "the request was refused by the safety system",
            code="content_policy_violation",
            extra={"safestack": extension},
        )
    images = list(result.images)
    if gateway.provenance is not None:
        stamped = await _stamp(
            gateway.provenance, gateway, account, request_id, model, options.prompt, parent, images
        )
        images = [item.data for item in stamped]
        extension["provenance"] = [_provenance_tag(item, request) for item in stamped]
    data: list[dict[str, Any]] = []
    for image in images:
        if options.response_format == "url":
            link = await run_in_threadpool(gateway.image_files.put, image)
            data.append({"url": str(request.base_url).rstrip("/") + link})
        else:
            data.append({"b64_json": base64.b64encode(image).decode("ascii")})
    body = {"created": int(time.time()), "data": data, "safestack": extension}
    return JSONResponse(body, headers={"Server-Timing": _server_timing(decision)})


def _image_review_details(
    options: _ImageOptions, result: ImageResult, upload: bytes | None, limit: int
) -> dict[str, Any]:
    """What a reviewer needs of an image request: the prompt and the refusal, never images.

    An upload is named by its SHA-256 (and a known-bad match by its bank), so that a reviewer
    can tie the item to a report or to the user's own copy without the bytes being kept in the
    queue.
    """
    prompt, prompt_cut = cut(options.prompt, limit)
    refusal, refusal_cut = cut(result.refusal, limit)
    details: dict[str, Any] = {
        "prompt": prompt,
        "n": options.n,
        "size": options.size,
        "refusal": refusal,
        "images_allowed": len(result.images),
        "upload_sha256": None if upload is None else hashlib.sha256(upload).hexdigest(),
        "truncated": {"prompt": prompt_cut, "refusal": refusal_cut},
    }
    if result.hash_match is not None:
        details["hash_match_bank"] = result.hash_match.bank
    return details


class ImageProvenance(BaseModel):
    """One entry of ``safestack.provenance`` in an image response, in the order of ``data``."""

    record_id: str = Field(description="The registry record (POST /v1/provenance/lookup).")
    manifest: Literal["embedded", "sidecar"] = Field(
        description="'embedded': the C2PA manifest is inside the image; 'sidecar': the format "
        "cannot carry one, fetch it from manifest_url and publish it beside the image."
    )
    watermark: str | None = Field(
        description="The invisible watermark method, or null (image too small, animated, or "
        "too flat for the mark to take)."
    )
    manifest_url: str | None = Field(default=None, description="Only for sidecar manifests.")


async def _stamp(
    provenance: Provenance,
    gateway: Gateway,
    account: Account,
    request_id: str,
    model: str,
    prompt: str,
    parent: bytes | None,
    images: list[bytes],
) -> list[StampedImage]:
    """Watermark, sign and register every image, or answer 503 and release none of them.

    Runs in a worker thread (the watermark is a few hundred milliseconds of numpy per image).
    Records already written for a request that then fails stay in the registry: an image
    registered but never released is harmless, one released but not registered is what
    provenance exists to prevent.
    """

    def run() -> list[StampedImage]:
        return [
            provenance.stamp(
                image,
                model=model,
                prompt=prompt,
                account_id=account.id,
                request_id=request_id,
                parent=parent,
            )
            for image in images
        ]

    try:
        stamped = await anyio.to_thread.run_sync(run, limiter=gateway.limiter)
    except Exception as exc:
        reason = (
            "store"
            if isinstance(exc, StoreError)
            else "provenance"
            if isinstance(exc, SafestackError)
            else "internal"
        )
        gateway.metrics.provenance_failures.labels(reason).inc()
        if reason == "internal":
            log.exception("request %s: image(s) held back: stamping failed", request_id)
        else:  # safestack's messages carry no secret (store URLs are redacted)
            log.error("request %s: image(s) held back: stamping failed: %s", request_id, exc)
        raise HTTPProblem(
            503,
            "the image was not released because it could not be registered for provenance "
            "(C2PA manifest, watermark, registry record); retry later",
            type="service_unavailable",
            code="provenance_unavailable",
        ) from None
    for item in stamped:
        gateway.metrics.provenance_stamped.labels(item.record.watermark_method or "none").inc()
    return stamped


def _provenance_tag(stamped: StampedImage, request: Request) -> dict[str, Any]:
    """The image's :class:`ImageProvenance`; ``manifest_url`` only when there is a sidecar."""
    record = stamped.record
    sidecar = stamped.sidecar_manifest is not None
    tag = ImageProvenance(
        record_id=record.id,
        manifest="sidecar" if sidecar else "embedded",
        watermark=record.watermark_method,
        manifest_url=str(request.url_for("provenance_manifest", record_id=record.id))
        if sidecar
        else None,
    )
    return tag.model_dump(exclude={"manifest_url"} if not sidecar else None)


def _enforce(
    gateway: Gateway, account: Account, request_id: str, endpoint: str, result: ImageResult
) -> None:
    """Report and ban per the matched bank's actions; runs before the answer is sent."""
    assert result.hash_match is not None and result.matched_hashes is not None
    enforcement = gateway.enforcer.apply(
        result.hash_match,
        account_id=account.id,
        request_id=request_id,
        endpoint=endpoint,
        hashes=result.matched_hashes,
        audience=account.audience,
    )
    gateway.metrics.hash_matches.labels(result.hash_match.bank).inc()
    if enforcement.banned:
        gateway.metrics.suspensions.inc()
        log.warning("account %s banned after a known-bad media match", account.id)


@router.get(
    "/files/{name}",
    summary="An image handed out as a URL (signed link, no key needed)",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
        404: {"description": "no such image"},
    },
)
async def image_file(
    name: str,
    gateway: GatewayDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
) -> Response:
    found = await run_in_threadpool(gateway.image_files.get, name, expires, signature)
    if found is None:
        raise HTTPProblem(404, "no such image, or the link expired", code="not_found")
    data, media_type = found
    return Response(data, media_type=media_type, headers={"Cache-Control": "private"})
