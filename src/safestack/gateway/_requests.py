"""``/v1/appeals`` and ``/v1/opt-out-requests``: what users ask of the operator's reviewers.

Both land in the review queue (``store.review``), where a reviewer answers them in the console.
An appeal is the one thing a suspended account can still do with its key: the routes for it take
:data:`~safestack.gateway._auth.AppealingCaller`, which authenticates like every ``/v1`` route
but lets a banned account through. A user sees the outcome of their appeal, never who decided it
or the reviewer's notes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from safestack.errors import RecordConflictError, RecordNotFoundError
from safestack.gateway._auth import AppealingCaller, Caller, GatewayDep, HTTPProblem
from safestack.gateway._wire import TEXT_PATTERN, ErrorBody
from safestack.store import Resolution, ReviewItem

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Requests to the operator"])

_ERROR_TEXT = {
    400: "Invalid request (not JSON, a missing or unknown field, a value out of bounds).",
    401: "No API key, or an unknown or revoked one.",
    403: "The account is suspended (code account_banned); it may still appeal.",
    404: "No appeal of the caller's with this id.",
    408: "The request body stopped arriving.",
    409: "The account has an open appeal already (code appeal_open).",
    413: "The request body is larger than max_body_bytes.",
    500: "Internal error; the operator's log has the details under the request id.",
    503: "The database is unavailable; nothing was written.",
}
_WITH_BODY = (400, 401, 408, 413, 500, 503)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's error answers for the OpenAPI document, all in OpenAI's error shape."""
    return {
        status: {"model": ErrorBody, "description": _ERROR_TEXT[status]}
        for status in sorted(statuses)
    }


#: An opt-out alias: a name the prompt rules match as well.
Alias = Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)]


class _Body(BaseModel):
    # Python's regular expressions, as the fuzzers that read the schema use: what the schema
    # allows is exactly what the route accepts.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, regex_engine="python-re")


class NewAppeal(_Body):
    """An appeal against a suspension or against one decision (``request_id``)."""

    message: str = Field(
        min_length=1, max_length=5_000, pattern=TEXT_PATTERN, description="What the reviewer reads."
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=TEXT_PATTERN,
        description="The request appealed (its 'safestack.request_id'); none for a suspension.",
    )


class AppealCreated(BaseModel):
    id: str
    status: Literal["open", "resolved"]
    created_at: datetime


class AppealStatus(AppealCreated):
    """An appeal as its author sees it. ``resolution``: ``overturned`` (granted: a suspension
    is lifted) or ``confirmed`` (refused); null while it is open."""

    resolution: Resolution | None
    resolved_at: datetime | None


class NewOptOutRequest(_Body):
    """A public figure or living artist who asks not to be depicted or imitated."""

    name: str = Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)
    kind: Literal["public_figure", "artist"]
    aliases: list[Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)]] = (
        Field(
            default_factory=list,
            max_length=50,
            description="Other names the prompt rules should match too (a stage name, a surname).",
        )
    )
    note: str | None = Field(default=None, max_length=2_000, pattern=TEXT_PATTERN)
    contact: str | None = Field(
        default=None,
        max_length=500,
        pattern=TEXT_PATTERN,
        description="How the reviewers can reach the requester.",
    )


class OptOutRequestCreated(BaseModel):
    id: str
    status: Literal["open", "resolved"]


@router.post(
    "/appeals",
    response_model=AppealCreated,
    status_code=201,
    responses=_errors(*_WITH_BODY, 409),
)
async def create_appeal(body: NewAppeal, gateway: GatewayDep, account: AppealingCaller) -> Any:
    """Appeal to a person: a suspended account may call this (it is who appeals).

    One open appeal per account: another while it is open is 409 ``appeal_open``, naming it.
    """

    def appeal() -> ReviewItem:
        return gateway.store.review.appeal(
            account.id, message=body.message, request_id=body.request_id
        )

    try:
        item = await run_in_threadpool(appeal)
    except RecordConflictError as exc:
        raise HTTPProblem(409, str(exc), type="conflict", code="appeal_open") from None
    return AppealCreated(id=item.id, status=item.status, created_at=item.created_at)


@router.get(
    "/appeals/{appeal_id}",
    response_model=AppealStatus,
    responses=_errors(401, 404, 500, 503),
)
async def get_appeal(appeal_id: str, gateway: GatewayDep, account: AppealingCaller) -> Any:
    """The caller's own appeal; anyone else's is 404, as if it did not exist."""
    try:
        item = await run_in_threadpool(gateway.store.review.get, appeal_id)
    except RecordNotFoundError:
        item = None
    if item is None or item.kind != "appeal" or item.account_id != account.id:
        raise HTTPProblem(404, f"no appeal {appeal_id!r} of yours", code="not_found")
    return AppealStatus(
        id=item.id,
        status=item.status,
        created_at=item.created_at,
        resolution=item.resolution,
        resolved_at=item.resolved_at,
    )


@router.post(
    "/opt-out-requests",
    response_model=OptOutRequestCreated,
    status_code=201,
    responses=_errors(*_WITH_BODY, 403),
)
async def create_opt_out_request(
    body: NewOptOutRequest, gateway: GatewayDep, account: Caller
) -> Any:
    """Ask for an opt-out; a reviewer who approves it adds it, and every replica enforces it."""

    def add() -> ReviewItem:
        return gateway.store.review.add(
            "opt_out_request",
            reasons=["opt_out_request"],
            account_id=account.id,
            details={**body.model_dump(), "requested_by": account.id},
        )

    item = await run_in_threadpool(add)
    return OptOutRequestCreated(id=item.id, status=item.status)
