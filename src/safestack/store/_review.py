"""The trust-and-safety review queue: what the stack flagged, and what people decided about it.

Items arrive from the gateway (decisions worth a human look, users' appeals and opt-out
requests) and from the store itself, in the transaction that acted (an automatic suspension, a
known-bad media match). A reviewer resolves an item once: the resolution, any action it implies
(an unban, a new opt-out) and its audit entry are one transaction, and the update only succeeds
while the item is still open — of two reviewers acting at once, one wins and the other gets a
:class:`~safestack.errors.RecordConflictError` that names who decided first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast, get_args

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from safestack.errors import InputError, RecordConflictError, RecordNotFoundError
from safestack.store._records import Resolution, ReviewItem, ReviewKind
from safestack.store._tables import ReviewItemRow
from safestack.store._values import json_object, new_id, page, required, utc_now

if TYPE_CHECKING:
    from safestack.store._store import Store

__all__ = ["RESOLUTIONS", "ReviewQueue"]

_KINDS: tuple[str, ...] = get_args(ReviewKind)
#: Which resolutions each kind of item takes.
RESOLUTIONS: dict[str, tuple[Resolution, ...]] = {
    "decision": ("confirmed", "overturned"),
    "hash_match": ("confirmed", "overturned"),
    "suspension": ("confirmed", "overturned"),
    "appeal": ("confirmed", "overturned"),
    "opt_out_request": ("approved", "rejected"),
}
#: Kinds whose ``overturned`` resolution lifts the account's ban.
_OVERTURN_UNBANS = frozenset({"hash_match", "suspension", "appeal"})
_MAX_NOTE_CHARS = 5_000


def _item(row: ReviewItemRow) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        kind=cast(ReviewKind, row.kind),
        status=cast(Any, row.status),
        reasons=list(row.reasons),
        account_id=row.account_id,
        request_id=row.request_id,
        report_id=row.report_id,
        details=dict(row.details),
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=cast(Resolution | None, row.resolution),
        resolution_note=row.resolution_note,
        label=None if row.label is None else dict(row.label),
    )


class ReviewQueue:
    """The review queue of one store (``store.review``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _add(
        self,
        session: Session,
        *,
        kind: str,
        reasons: list[str],
        details: dict[str, Any],
        account_id: str | None = None,
        request_id: str | None = None,
        report_id: str | None = None,
    ) -> ReviewItemRow:
        """A new open item, in the caller's transaction (so it exists exactly if the act does)."""
        if kind not in _KINDS:
            raise InputError(f"unknown review item kind {kind!r}; allowed: {', '.join(_KINDS)}")
        row = ReviewItemRow(
            id=new_id("rev"),
            kind=kind,
            status="open",
            reasons=[required(r, "review reason", max_length=64) for r in reasons],
            account_id=account_id,
            request_id=request_id,
            report_id=report_id,
            details=json_object(details, "review item details"),
            created_at=utc_now(),
        )
        session.add(row)
        session.flush()
        return row

    def add(
        self,
        kind: ReviewKind,
        *,
        reasons: list[str],
        details: dict[str, Any],
        account_id: str | None = None,
        request_id: str | None = None,
    ) -> ReviewItem:
        """Put an item in the queue (the gateway's flagged decisions, opt-out requests)."""
        with self._store._transaction(write=True) as session:
            if account_id is not None:
                self._store._get_account(session, account_id)
            row = self._add(
                session,
                kind=kind,
                reasons=reasons,
                details=details,
                account_id=account_id,
                request_id=request_id,
            )
            return _item(row)

    def appeal(self, account_id: str, *, message: str, request_id: str | None = None) -> ReviewItem:
        """A user's appeal against their suspension or a decision; one open appeal at a time.

        A second appeal while the first is open is a :class:`RecordConflictError` naming it: a
        user who appeals again and again does not push others down the queue.
        """
        message = required(message, "appeal message", max_length=_MAX_NOTE_CHARS)
        with self._store._transaction(write=True) as session:
            account = self._store._get_account(session, account_id, lock=True)
            open_appeal = session.scalars(
                select(ReviewItemRow.id).where(
                    ReviewItemRow.kind == "appeal",
                    ReviewItemRow.account_id == account_id,
                    ReviewItemRow.status == "open",
                )
            ).first()
            if open_appeal is not None:
                raise RecordConflictError(
                    f"account {account_id} already has an open appeal ({open_appeal}); "
                    "a reviewer will answer it"
                )
            row = self._add(
                session,
                kind="appeal",
                reasons=["appeal"],
                account_id=account_id,
                request_id=request_id,
                details={
                    "message": message,
                    "account_status": account.status,
                    "ban_code": account.ban_code,
                    "ban_reason": account.ban_reason,
                },
            )
            return _item(row)

    def get(self, item_id: str) -> ReviewItem:
        with self._store._transaction(write=False) as session:
            row = session.get(ReviewItemRow, item_id)
            if row is None:
                raise RecordNotFoundError(f"no review item with id {item_id!r}")
            return _item(row)

    def items(
        self,
        *,
        status: str | None = "open",
        kind: str | None = None,
        account_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ReviewItem]:
        """Items oldest first when open (work the queue in order), newest first otherwise."""
        limit, offset = page(limit, offset)
        query = select(ReviewItemRow)
        if status is not None:
            query = query.where(ReviewItemRow.status == status)
        if kind is not None:
            query = query.where(ReviewItemRow.kind == kind)
        if account_id is not None:
            query = query.where(ReviewItemRow.account_id == account_id)
        order = (
            ReviewItemRow.created_at.asc() if status == "open" else ReviewItemRow.created_at.desc()
        )
        query = query.order_by(order, ReviewItemRow.id).limit(limit).offset(offset)
        with self._store._transaction(write=False) as session:
            return [_item(row) for row in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        """Open items per kind (every kind present, zero included)."""
        query = (
            select(ReviewItemRow.kind, func.count(ReviewItemRow.id))
            .where(ReviewItemRow.status == "open")
            .group_by(ReviewItemRow.kind)
        )
        with self._store._transaction(write=False) as session:
            found = {kind: int(n) for kind, n in session.execute(query).all()}
        return {kind: found.get(kind, 0) for kind in _KINDS}

    def resolve(
        self,
        item_id: str,
        resolution: Resolution | str,
        *,
        actor: str,
        note: str | None = None,
        label: dict[str, Any] | None = None,
    ) -> ReviewItem:
        """Decide an open item, and do what the decision implies, in one transaction.

        ``overturned`` on a known-bad media match, a suspension or an appeal lifts the account's
        ban; ``approved`` on an opt-out request adds the opt-out (enforced by every replica
        within seconds). ``label`` is the ground truth a decision item yields for evaluations.
        An item that is no longer open is a :class:`RecordConflictError` saying who decided it.
        """
        required(actor, "actor")
        if note is not None:
            note = note.strip() or None
            if note is not None and len(note) > _MAX_NOTE_CHARS:
                raise InputError(f"the note is {len(note)} characters; at most {_MAX_NOTE_CHARS}")
        store = self._store
        with store._transaction(write=True) as session:
            row = session.get(ReviewItemRow, item_id)
            if row is None:
                raise RecordNotFoundError(f"no review item with id {item_id!r}")
            allowed = RESOLUTIONS[row.kind]
            if resolution not in allowed:
                raise InputError(
                    f"a {row.kind} item is resolved as {' or '.join(allowed)}, not {resolution!r}"
                )
            now = utc_now()
            # Conditional on 'open': the row-level guarantee that one reviewer wins, on both
            # databases, whatever isolation level the transaction runs at.
            won = session.execute(  # type: ignore[attr-defined]  # a CursorResult
                update(ReviewItemRow)
                .where(ReviewItemRow.id == item_id, ReviewItemRow.status == "open")
                .values(
                    status="resolved",
                    resolution=resolution,
                    resolved_at=now,
                    resolved_by=actor,
                    resolution_note=note,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if won != 1:
                session.refresh(row)
                raise RecordConflictError(_already_decided(row))
            session.refresh(row)
            outcome: dict[str, Any] = dict(label or {})
            if (
                row.kind in _OVERTURN_UNBANS
                and resolution == "overturned"
                and row.account_id is not None
            ):
                account = store._get_account(session, row.account_id, lock=True)
                if account.status == "banned":
                    store._unban(session, account, actor=actor, details={"review_item": row.id})
                    outcome["unbanned"] = True
            if row.kind == "opt_out_request" and resolution == "approved":
                request = row.details
                opt_out = store._add_opt_out(
                    session,
                    name=str(request.get("name", "")),
                    kind=str(request.get("kind", "")),
                    note=request.get("note"),
                    aliases=list(request.get("aliases") or []),
                    actor=actor,
                )
                outcome["opt_out_id"] = opt_out.id
            row.label = json_object(outcome, "review label") if outcome else None
            store._write_audit(
                session,
                actor=actor,
                action="review.resolve",
                target=row.id,
                details={
                    "kind": row.kind,
                    "resolution": resolution,
                    "account_id": row.account_id,
                    "note": note,
                    **({"label": row.label} if row.label else {}),
                },
            )
            return _item(row)


def _already_decided(row: ReviewItemRow) -> str:
    when: datetime | None = row.resolved_at
    at = f" at {when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else ""
    return f"review item {row.id} was already {row.resolution} by {row.resolved_by}{at}"
