"""The trust-and-safety review queue: what the stack flagged, and people's decisions on it.

A reviewer works the queue oldest first, opens an item, reads everything the decision needs on
one page (the conversation and the answers, the scores against their thresholds, the match, the
appeal, the account and its other open items) and resolves it with buttons that say in words
what each choice means. The store does the rest in one transaction (an unban, a new opt-out, the
audit entry) and lets exactly one of two reviewers win; the other gets a page naming who decided.

A resolved decision carries a label — the ground truth it yields as a ``real_world`` evaluation
sample (:func:`safestack.evals.labelled.review_samples`), exported from the queue as JSON Lines.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from safestack.console._auth import (
    ConsoleError,
    ConsoleUser,
    Submission,
    gateway_of,
    require,
    submit,
)
from safestack.console._pages import SECURITY_HEADERS, render, see_other
from safestack.console._pages import excerpt as shorten
from safestack.errors import RecordConflictError
from safestack.evals import write_samples_jsonl
from safestack.evals.labelled import review_samples
from safestack.hashing._reports import cybertipline_report
from safestack.policy import Audience, Policy
from safestack.store import Account, AuditEntry, Report, ReviewItem, ReviewKind, Store

__all__ = ["decision_label", "router"]

router = APIRouter()

Reviewer = Annotated[ConsoleUser, Depends(require("admin", "reviewer"))]
Posted = Annotated[Submission, Depends(submit("admin", "reviewer"))]

_KINDS: tuple[str, ...] = get_args(ReviewKind)
_STATUSES = ("open", "resolved", "all")
_PAGE_SIZE = 50
_EXCERPT_CHARS = 160
#: The store's largest page: exports read the queue in pages of this size.
_STORE_PAGE = 1000
_KIND_TITLES = {
    "decision": "Stack decision",
    "hash_match": "Known-bad media match",
    "suspension": "Automatic suspension",
    "appeal": "Appeal",
    "opt_out_request": "Opt-out request",
}


@dataclass(frozen=True)
class Choice:
    """One resolve button: the store's resolution and what it means, in words."""

    resolution: str
    words: str
    danger: bool = False


def _blocked(item: ReviewItem) -> bool:
    decision = item.details.get("decision") or {}
    return bool(decision.get("blocked"))


def choices(item: ReviewItem) -> list[Choice]:
    """The resolutions of ``item``'s kind, worded for what they do to this item."""
    if item.kind == "decision":
        if _blocked(item):
            return [
                Choice("confirmed", "Confirm: the block was right"),
                Choice("overturned", "Overturn: should have been allowed", danger=True),
            ]
        return [
            Choice("confirmed", "Confirm: the answer was fine"),
            Choice("overturned", "Overturn: this answer is a violation (a miss)", danger=True),
        ]
    if item.kind in ("suspension", "hash_match"):
        return [Choice("confirmed", "Keep the ban"), Choice("overturned", "Overturn and unban")]
    if item.kind == "appeal":
        return [
            Choice("confirmed", "Uphold the suspension"),
            Choice("overturned", "Grant the appeal and unban"),
        ]
    return [
        Choice("approved", "Approve (enforce from now on)"),
        Choice("rejected", "Reject", danger=True),
    ]


def decision_label(
    item: ReviewItem, resolution: str, category: str | None, policy: Policy
) -> dict[str, Any]:
    """The ground truth a reviewed decision yields, for :func:`review_samples`.

    A confirmed block says the request should be refused (in the category the stack named); an
    overturned block that it should have been answered (an over-refusal); a confirmed answer
    that answering was right; an overturned answer that it was a miss, in the category the
    reviewer chose (which the stack, having answered, did not name, so the reviewer must).
    """
    decision = item.details.get("decision") or {}
    named = [c for c in decision.get("categories") or [] if c in policy.category_ids]
    if _blocked(item):
        if resolution == "confirmed":
            return {"expected": "should_refuse", "category": named[0] if named else None}
        return {"expected": "should_comply", "category": None}
    if resolution == "confirmed":
        return {"expected": "should_comply", "category": None}
    if not category:
        raise ConsoleError(
            400, "choose the policy category the answer violates before overturning it"
        )
    if category not in policy.category_ids:
        raise ConsoleError(
            400,
            f"{category!r} is not a category of the policy; "
            f"choose one of: {', '.join(policy.category_ids)}",
        )
    return {"expected": "should_refuse", "category": category}


def _shorten(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return shorten(" ".join(value.split()), _EXCERPT_CHARS)


def excerpt(item: ReviewItem) -> str:
    """A line of the item for the queue's table: what a reviewer recognises it by."""
    details = item.details
    if item.kind == "decision":
        users = [
            m.get("content")
            for m in details.get("messages") or []
            if isinstance(m, dict) and m.get("role") == "user"
        ]
        return _shorten(users[-1] if users else details.get("prompt"))
    if item.kind == "appeal":
        return _shorten(details.get("message"))
    if item.kind == "opt_out_request":
        return _shorten(details.get("name"))
    if item.kind == "suspension":
        return _shorten(details.get("reason"))
    match = details.get("match") or {}
    return _shorten(f"bank {match.get('bank')!r}, request {details.get('request_id')}")


def _actor_names(store: Store, actors: list[str | None]) -> dict[str, str]:
    """Audit actors as a person reads them: a console account's name, with the actor (one
    query for all of a page's actors)."""
    accounts = {a.removeprefix("console:") for a in actors if a and a.startswith("console:")}
    names = store.account_names(accounts)
    shown = {f"console:{i}": f"{name} (console:{i})" for i, name in names.items() if name != i}
    return {actor: shown.get(actor, actor) for actor in actors if actor is not None}


def _item_audit(store: Store, item: ReviewItem) -> list[AuditEntry]:
    """The audit entries about this item and its account (its resolution, bans, unbans)."""
    targets = {item.id} | ({item.account_id} if item.account_id else set())
    return store.list_audit(limit=_STORE_PAGE, targets=targets)


@dataclass(frozen=True)
class ScoreRow:
    category: str
    score: float
    threshold: float | None

    @property
    def over(self) -> bool:
        return self.threshold is not None and self.score >= self.threshold


def _score_rows(item: ReviewItem, policy: Policy, account: Account | None) -> list[ScoreRow]:
    decision = item.details.get("decision") or {}
    audience: Audience | str = decision.get("audience") or (
        account.audience if account is not None else Audience.ADULT
    )
    try:
        thresholds = policy.thresholds(Audience(audience))
    except ValueError:
        thresholds = policy.thresholds(Audience.ADULT)
    scores = decision.get("scores") or {}
    rows = [
        ScoreRow(category=str(c), score=float(s), threshold=thresholds.get(str(c)))
        for c, s in scores.items()
        if isinstance(s, int | float)
    ]
    return sorted(rows, key=lambda row: -row.score)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


# -- the queue ----------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
async def queue(
    request: Request,
    user: Reviewer,
    status: str = "open",
    kind: str = "",
    offset: int = 0,
) -> HTMLResponse:
    if status not in _STATUSES:
        raise ConsoleError(400, f"unknown status {status!r}; choose one of {', '.join(_STATUSES)}")
    if kind and kind not in _KINDS:
        raise ConsoleError(400, f"unknown kind {kind!r}; choose one of {', '.join(_KINDS)}")
    if offset < 0:
        raise ConsoleError(400, "the offset must be 0 or more")
    store = gateway_of(request).store

    def read() -> tuple[list[ReviewItem], dict[str, int]]:
        found = store.review.items(
            status=None if status == "all" else status,
            kind=kind or None,
            limit=_PAGE_SIZE + 1,
            offset=offset,
        )
        return found, store.review.counts()

    found, counts = await run_in_threadpool(read)
    query = f"status={status}&kind={kind}"
    return render(
        request,
        "review.html.j2",
        user=user,
        title="Review queue",
        items=[(item, excerpt(item)) for item in found[:_PAGE_SIZE]],
        counts=counts,
        kinds=_KINDS,
        kind_titles=_KIND_TITLES,
        statuses=_STATUSES,
        status_filter=status,
        kind=kind,
        offset=offset,
        previous_link=(
            f"/console/review?{query}&offset={max(0, offset - _PAGE_SIZE)}" if offset else None
        ),
        next_link=(
            f"/console/review?{query}&offset={offset + _PAGE_SIZE}"
            if len(found) > _PAGE_SIZE
            else None
        ),
    )


@router.get("/review/samples.jsonl")
async def samples(request: Request, user: Reviewer) -> Response:
    """Every reviewed decision with a label, as evaluation samples ``safestack eval run`` reads."""
    store = gateway_of(request).store

    def export() -> str | None:
        items: list[ReviewItem] = []
        while True:
            batch = store.review.items(
                status="resolved", kind="decision", limit=_STORE_PAGE, offset=len(items)
            )
            items.extend(batch)
            if len(batch) < _STORE_PAGE:
                break
        found = review_samples(items)
        if not found:
            return None
        buffer = io.StringIO()
        write_samples_jsonl(found, buffer)
        return buffer.getvalue()

    body = await run_in_threadpool(export)
    if body is None:
        raise ConsoleError(404, "no reviewed decision has a label yet; nothing to export")
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": 'attachment; filename="review.jsonl"',
        },
    )


# -- one item -----------------------------------------------------------------------------------


@router.get("/review/{item_id}", response_class=HTMLResponse)
async def item_page(item_id: str, request: Request, user: Reviewer) -> HTMLResponse:
    gateway = gateway_of(request)
    store, policy = gateway.store, gateway.policy

    def read() -> dict[str, Any]:
        item = store.review.get(item_id)
        account = others = None
        if item.account_id is not None:
            account = store.get_account(item.account_id)
            others = [
                other
                for other in store.review.items(account_id=item.account_id, limit=_PAGE_SIZE)
                if other.id != item.id
            ]
        report: Report | None = None
        if item.report_id is not None:
            report = store.get_report(item.report_id)
        decision = item.details.get("decision") or {}
        named = [c for c in decision.get("categories") or [] if c in policy.category_ids]
        audit = _item_audit(store, item)
        names = _actor_names(store, [item.resolved_by, *(entry.actor for entry in audit)])
        return {
            "item": item,
            "account": account,
            "other_items": [(other, excerpt(other)) for other in others or []],
            "report": report,
            "decision": decision,
            "blocked": _blocked(item),
            "score_rows": _score_rows(item, policy, account),
            "choices": choices(item),
            "categories": policy.category_ids,
            "default_category": named[0] if named else "",
            "resolved_by": names.get(item.resolved_by or "", item.resolved_by),
            "audit": [(entry, names[entry.actor]) for entry in audit],
            "pretty": _pretty,
        }

    context = await run_in_threadpool(read)
    item: ReviewItem = context["item"]
    return render(
        request,
        "review_item.html.j2",
        user=user,
        title=f"{_KIND_TITLES[item.kind]} {item.id}",
        kind_titles=_KIND_TITLES,
        **context,
    )


def _back_to(item_id: str) -> RedirectResponse:
    return see_other(f"/console/review/{item_id}")


@router.post("/review/{item_id}/resolve")
async def resolve(item_id: str, request: Request, posted: Posted) -> Response:
    """Resolve the item; a reviewer who came second gets a page naming who decided first."""
    gateway = gateway_of(request)
    store, user = gateway.store, posted.user
    resolution = posted.text("resolution")
    note = posted.text("note").strip() or None
    category = posted.text("category").strip() or None

    def act() -> None:
        item = store.review.get(item_id)
        allowed = [choice.resolution for choice in choices(item)]
        if resolution not in allowed:
            raise ConsoleError(
                400, f"a {item.kind} item is resolved as {' or '.join(allowed)}, not {resolution!r}"
            )
        label = None
        if item.kind == "decision":
            label = decision_label(item, resolution, category, gateway.policy)
        store.review.resolve(item_id, resolution, actor=user.actor, note=note, label=label)

    try:
        await run_in_threadpool(act)
    except RecordConflictError as conflict:
        item = await run_in_threadpool(store.review.get, item_id)
        names = await run_in_threadpool(_actor_names, store, [item.resolved_by])
        first = names.get(item.resolved_by or "", item.resolved_by)
        return render(
            request,
            "review_conflict.html.j2",
            user=user,
            status=409,
            title="Someone decided first",
            item=item,
            message=str(conflict),
            first=first,
        )
    return _back_to(item_id)


@router.post("/review/{item_id}/ban")
async def ban(item_id: str, request: Request, posted: Posted) -> Response:
    """Ban the item's account (the item stays open: banning is not deciding the item)."""
    store = gateway_of(request).store
    reason = posted.text("reason").strip()
    if not reason:
        raise ConsoleError(400, "give the reason for the ban; the account's owner is told it")

    def act() -> None:
        item = store.review.get(item_id)
        if item.account_id is None:
            raise ConsoleError(400, "this item is about no account; there is nobody to ban")
        store.ban(
            item.account_id,
            reason=reason,
            code="review_ban",
            actor=posted.user.actor,
            evidence={"review_item": item.id},
        )

    await run_in_threadpool(act)
    return _back_to(item_id)


@router.post("/review/{item_id}/unban")
async def unban(item_id: str, request: Request, posted: Posted) -> Response:
    store = gateway_of(request).store

    def act() -> None:
        item = store.review.get(item_id)
        if item.account_id is None:
            raise ConsoleError(400, "this item is about no account; there is nobody to unban")
        store.unban(item.account_id, actor=posted.user.actor)

    await run_in_threadpool(act)
    return _back_to(item_id)


@router.get("/review/{item_id}/report.json")
async def report_export(item_id: str, request: Request, user: Reviewer) -> Response:
    """A match's hotline report as the admin API exports it; any other item as a JSON record."""
    gateway = gateway_of(request)
    store = gateway.store

    def export() -> tuple[str, dict[str, Any]]:
        item = store.review.get(item_id)
        if item.kind == "hash_match" and item.report_id is not None:
            report = store.get_report(item.report_id)
            receiver = gateway.config.reports
            return report.id, cybertipline_report(
                report, None if receiver is None else receiver.reporter
            )
        account = None if item.account_id is None else store.get_account(item.account_id)
        dumped = item.model_dump(mode="json")
        resolution = None
        if item.status == "resolved":
            resolution = {
                "resolution": item.resolution,
                "resolved_by": item.resolved_by,
                "resolved_at": dumped["resolved_at"],
                "note": item.resolution_note,
                "label": item.label,
            }
        document = {
            **{
                key: dumped[key]
                for key in ("id", "kind", "status", "reasons", "created_at", "request_id")
            },
            "report_id": item.report_id,
            "details": item.details,
            "account": None if account is None else account.model_dump(mode="json"),
            "resolution": resolution,
            "audit": [entry.model_dump(mode="json") for entry in _item_audit(store, item)],
        }
        return item.id, document

    name, document = await run_in_threadpool(export)
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{name}.json"',
        },
    )
