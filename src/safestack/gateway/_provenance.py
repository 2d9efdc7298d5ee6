"""``/v1/provenance``: did this gateway make an image? Lookups, manifest checks, sidecars.

The image routes stamp every image they release (see :mod:`safestack.gateway._images`); these
routes read the stamps back for anyone holding an API key: a trust-and-safety desk, a platform
that received an upload, a journalist's tool. They take the image as a multipart upload (the
way ``/v1/images/edits`` takes one) or as base64 in JSON, never a URL: the gateway fetches
nothing on a client's behalf.

A lookup names the record that matched but shows the releasing account and request only to that
account itself: "we made this" is the answer anyone may have, "who asked for it" is not.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from safestack.errors import (
    ImageTooLargeError,
    ProvenanceError,
    StoreError,
    StoreUnavailableError,
)
from safestack.gateway._auth import Caller, GatewayDep, HTTPProblem
from safestack.gateway._images import read_upload_form
from safestack.gateway._state import Gateway
from safestack.http_endpoint import describe_validation_error
from safestack.provenance import LookupResult, ManifestReport, Provenance

__all__ = ["ProvenanceQuery", "router"]

_T = TypeVar("_T")

log = logging.getLogger("safestack.gateway")
router = APIRouter(prefix="/v1/provenance", tags=["provenance"])

#: The longest record id the registry issues (``img_`` and 32 hex digits; the column allows 40).
_MAX_RECORD_ID = 40


class ProvenanceQuery(BaseModel):
    """The JSON form of a lookup or verify request (the other is a multipart upload)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        min_length=1,
        description="The image file, base64 (a 'data:image/...;base64,' prefix is accepted): "
        "PNG, JPEG, WebP, GIF, BMP or TIFF, up to max_upload_bytes.",
    )
    manifest: str | None = Field(
        default=None,
        description="Its sidecar C2PA manifest (.c2pa), base64, for an image published with one.",
    )


_QUERY_DESCRIPTION = (
    "The image as a multipart upload (an `image` file and optionally a sidecar `manifest` "
    'file), or as JSON `{"image": base64, "manifest": base64 or null}`; each up to '
    "max_upload_bytes (413 beyond). What is not an image at all is a 400 with the reason's code "
    "(image_unsupported, image_too_many_pixels, image_too_many_frames); a damaged image of a "
    "known format is answered from what can still be read (its bytes, its manifest). 404 "
    "(provenance_disabled) when the gateway runs without provenance."
)
_QUERY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "manifest": {"type": "string", "format": "binary"},
                    },
                    "additionalProperties": False,
                }
            },
            "application/json": {"schema": ProvenanceQuery.model_json_schema()},
        },
    }
}


def _enabled(gateway: Gateway) -> Provenance:
    if gateway.provenance is None:
        raise HTTPProblem(
            404,
            "provenance is disabled on this gateway (provenance.enabled: false): the images it "
            "releases are neither signed nor registered, so there is nothing to look up",
            code="provenance_disabled",
        )
    return gateway.provenance


@router.post(
    "/lookup",
    summary="Did this gateway make this image?",
    response_model=LookupResult,
    openapi_extra=_QUERY_SCHEMA,
    description="Checks every signal and answers with the strongest that matched: the exact "
    "bytes (sha256), this gateway's C2PA manifest (manifest), the invisible watermark after "
    "metadata was stripped or the image re-encoded (watermark), the perceptual hash after "
    "resizing or rotation (pdq); a crop is found by the rivaGan watermark only. `made_by_us` "
    "is false when none matched. The "
    "record's account and request ids are shown to the account that made the image only. "
    + _QUERY_DESCRIPTION,
)
async def lookup(gateway: GatewayDep, account: Caller, request: Request) -> LookupResult:
    provenance = _enabled(gateway)
    max_bytes = gateway.config.max_upload_bytes
    image, manifest = await _read_query(request, max_bytes)

    def run() -> LookupResult:
        return provenance.lookup(image, sidecar=manifest)

    result = await _registry_call(run, gateway, request)
    if result.record is not None and result.record.account_id != account.id:
        hidden = result.record.model_copy(update={"account_id": None, "request_id": None})
        result = result.model_copy(update={"record": hidden})
    return result


@router.post(
    "/verify",
    summary="Check an image's C2PA manifest",
    response_model=ManifestReport,
    openapi_extra=_QUERY_SCHEMA,
    description="Reads the manifest (embedded, or the sidecar sent beside the image) and checks "
    "it against this gateway's trust anchors: `valid` (signed, unchanged, trusted signer), "
    "`untrusted` (signed and unchanged, signer not trusted here), `invalid` (the image or the "
    "manifest changed after signing), `none` (no manifest). " + _QUERY_DESCRIPTION,
)
async def verify(gateway: GatewayDep, account: Caller, request: Request) -> ManifestReport:
    provenance = _enabled(gateway)
    max_bytes = gateway.config.max_upload_bytes
    image, manifest = await _read_query(request, max_bytes)

    def run() -> ManifestReport:
        return provenance.verify(image, sidecar=manifest)

    return await _registry_call(run, gateway, request)


@router.get(
    "/manifests/{record_id}",
    name="provenance_manifest",
    summary="The sidecar C2PA manifest of a released image",
    response_class=Response,
    responses={
        200: {
            "content": {"application/c2pa": {}},
            "description": "The manifest store, to publish beside the image as IMAGE.c2pa.",
        },
    },
    description="Only images in formats that cannot carry a manifest have one (their response "
    "names it in `safestack.provenance[].manifest_url`); 404 for any other record.",
)
async def manifest(
    record_id: Annotated[str, Path(min_length=1, max_length=_MAX_RECORD_ID)],
    gateway: GatewayDep,
    account: Caller,
    request: Request,
) -> Response:
    provenance = _enabled(gateway)
    record = await _registry_call(
        lambda: provenance.registry.by_id(record_id), gateway, request, limited=False
    )
    if record is None:
        raise HTTPProblem(404, "no provenance record has this id", code="not_found")
    if record.sidecar_manifest is None:
        raise HTTPProblem(
            404,
            "this image's manifest is embedded in the image itself: it has no sidecar",
            code="not_found",
        )
    return Response(
        record.sidecar_manifest,
        media_type="application/c2pa",
        headers={"Content-Disposition": f'attachment; filename="{record.id}.c2pa"'},
    )


async def _registry_call(
    function: Callable[[], _T], gateway: Gateway, request: Request, *, limited: bool = True
) -> _T:
    """``function`` in a worker thread, a failing registry translated to a 503.

    ``limited`` work (decoding, watermark reading, hashing) counts against ``workers`` like
    classifier inference; a single indexed query does not.
    """
    try:
        if limited:
            return await anyio.to_thread.run_sync(function, limiter=gateway.limiter)
        return await run_in_threadpool(function)
    except StoreUnavailableError:
        raise  # the app's 503 store_unavailable, as on every route
    except (StoreError, ProvenanceError) as exc:
        log.error("request %s: provenance failed: %s", request.state.request_id, exc)
        raise HTTPProblem(
            503,
            "the provenance registry cannot answer now; retry later",
            type="service_unavailable",
            code="provenance_unavailable",
        ) from None


async def _read_query(request: Request, max_upload_bytes: int) -> tuple[bytes, bytes | None]:
    """The image and the optional sidecar manifest of a lookup or verify request."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        uploads, fields = await read_upload_form(
            request, max_upload_bytes, files={"image": "image", "manifest": "manifest"}
        )
        if fields:
            name = next(iter(fields))
            raise HTTPProblem(
                400,
                f"unexpected field {name!r}: send an 'image' file and optionally a 'manifest' file",
                param=name,
            )
        if not uploads.get("image"):
            raise HTTPProblem(400, "a non-empty 'image' file is required", param="image")
        return uploads["image"], uploads.get("manifest")
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise HTTPProblem(
            400,
            "send JSON {\"image\": base64} or a multipart form with an 'image' file",
            param="image",
        ) from None
    try:
        query = ProvenanceQuery.model_validate(body)
    except ValidationError as exc:
        raise HTTPProblem(400, describe_validation_error(exc)) from None
    image = _base64(query.image, "image", max_upload_bytes)
    sidecar = (
        None if query.manifest is None else _base64(query.manifest, "manifest", max_upload_bytes)
    )
    return image, sidecar


def _base64(text: str, field: str, max_bytes: int) -> bytes:
    if text.startswith("data:") and ";base64," in text[:100]:
        text = text.split(",", 1)[1]
    if len(text) > 4 * (max_bytes // 3 + 1) + 4:  # refuse before decoding it
        raise ImageTooLargeError(
            f"the {field!r} is larger than {max_bytes:,} bytes (max_upload_bytes)"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPProblem(400, f"{field!r} is not valid base64", param=field) from None
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"the {field!r} is larger than {max_bytes:,} bytes (max_upload_bytes)"
        )
    return data
