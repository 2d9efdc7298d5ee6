"""Manual red-teaming campaigns: who is invited, what they said to the stack, how they labelled it.

The store keeps every turn exactly as the red teamer saw it (the prompt, the stack's answer, its
decision trace, any image) and the label they gave it, so that a labelled turn can become an
evaluation sample that is re-run against later stack configurations (see
:mod:`safestack.evals.labelled`). Access is checked here as well as in the console: a red teamer
can add turns to and label only their own conversations, in campaigns they were invited to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from safestack.errors import InputError, RecordNotFoundError
from safestack.policy import Audience
from safestack.store._records import (
    Campaign,
    Conversation,
    Exchange,
    ExchangeLabel,
    NewCampaign,
    NewExchange,
)
from safestack.store._tables import (
    CampaignMemberRow,
    CampaignRow,
    ConversationRow,
    ExchangeRow,
)
from safestack.store._values import json_object, new_id, required, utc_now

if TYPE_CHECKING:
    from safestack.store._store import Store

__all__ = ["Campaigns"]


def _campaign(row: CampaignRow, members: list[str]) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        model=row.model,
        categories=list(row.categories),
        instructions=row.instructions,
        audience=Audience(row.audience),
        show_internals=row.show_internals,
        status=cast(Any, row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        closed_at=row.closed_at,
        members=members,
    )


def _exchange(row: ExchangeRow, *, with_media: bool) -> Exchange:
    label = None
    if row.label_outcome is not None:
        label = ExchangeLabel(
            outcome=cast(Any, row.label_outcome),
            category=row.label_category,
            note=row.label_note,
        )
    return Exchange(
        id=row.id,
        conversation_id=row.conversation_id,
        turn=row.turn,
        modality=cast(Any, row.modality),
        prompt=row.prompt,
        response=row.response,
        request_id=row.request_id,
        status=row.status,
        blocked=row.blocked,
        layer=row.layer,
        decision=dict(row.decision),
        image=row.image if with_media else None,
        image_media_type=row.image_media_type,
        upload=row.upload if with_media else None,
        upload_media_type=row.upload_media_type,
        created_at=row.created_at,
        label=label,
        labelled_at=row.labelled_at,
        labelled_by=row.labelled_by,
    )


def _conversation(row: ConversationRow, exchanges: list[Exchange]) -> Conversation:
    return Conversation(
        id=row.id,
        campaign_id=row.campaign_id,
        account_id=row.account_id,
        created_at=row.created_at,
        exchanges=exchanges,
    )


class Campaigns:
    """The red-teaming campaigns of one store (``store.campaigns``).

    Methods that read exchanges leave the image bytes out unless ``with_media`` is set (a
    dashboard over thousands of turns must not load every image); ``image_media_type`` still
    says whether a turn has one.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- campaigns ----------------------------------------------------------------------------

    def create(self, campaign: NewCampaign, *, actor: str) -> Campaign:
        required(actor, "actor")
        categories = list(
            dict.fromkeys(required(c, "category", max_length=64) for c in campaign.categories)
        )
        row = CampaignRow(
            id=new_id("camp"),
            name=required(campaign.name, "campaign name", max_length=200),
            model=required(campaign.model, "model", max_length=256),
            categories=categories,
            instructions=campaign.instructions,
            audience=Audience(campaign.audience).value,
            show_internals=campaign.show_internals,
            status="open",
            created_by=actor,
            created_at=utc_now(),
        )
        with self._store._transaction(write=True) as session:
            session.add(row)
            self._store._write_audit(
                session,
                actor=actor,
                action="campaign.create",
                target=row.id,
                details={"name": row.name, "model": row.model, "categories": categories},
            )
            return _campaign(row, [])

    @staticmethod
    def _members(session: Session, campaign_id: str) -> list[str]:
        return list(
            session.scalars(
                select(CampaignMemberRow.account_id)
                .where(CampaignMemberRow.campaign_id == campaign_id)
                .order_by(CampaignMemberRow.added_at, CampaignMemberRow.account_id)
            )
        )

    @staticmethod
    def _row(session: Session, campaign_id: str) -> CampaignRow:
        row = session.get(CampaignRow, campaign_id)
        if row is None:
            raise RecordNotFoundError(f"no campaign with id {campaign_id!r}")
        return row

    def get(self, campaign_id: str) -> Campaign:
        with self._store._transaction(write=False) as session:
            row = self._row(session, campaign_id)
            return _campaign(row, self._members(session, campaign_id))

    def find(self, *, member: str | None = None) -> list[Campaign]:
        """Every campaign, newest first; with ``member``, only those that account was invited to."""
        query = select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id)
        if member is not None:
            query = query.join(
                CampaignMemberRow, CampaignMemberRow.campaign_id == CampaignRow.id
            ).where(CampaignMemberRow.account_id == member)
        with self._store._transaction(write=False) as session:
            return [
                _campaign(row, self._members(session, row.id)) for row in session.scalars(query)
            ]

    def invite(self, campaign_id: str, account_id: str, *, actor: str) -> Campaign:
        """Invite a red teamer (an account with the ``red_teamer`` role); idempotent."""
        required(actor, "actor")
        with self._store._transaction(write=True) as session:
            row = self._row(session, campaign_id)
            account = self._store._get_account(session, account_id)
            if account.role != "red_teamer":
                raise InputError(
                    f"account {account_id} has role {account.role or 'none'}; only accounts with "
                    "the red_teamer role can be invited to a campaign"
                )
            if session.get(CampaignMemberRow, (campaign_id, account_id)) is None:
                session.add(
                    CampaignMemberRow(
                        campaign_id=campaign_id,
                        account_id=account_id,
                        added_at=utc_now(),
                        added_by=actor,
                    )
                )
                session.flush()
                self._store._write_audit(
                    session,
                    actor=actor,
                    action="campaign.invite",
                    target=campaign_id,
                    details={"account_id": account_id},
                )
            return _campaign(row, self._members(session, campaign_id))

    def set_status(self, campaign_id: str, status: str, *, actor: str) -> Campaign:
        """Close a campaign (no new turns; labels and exports still work) or reopen it."""
        if status not in ("open", "closed"):
            raise InputError(f"campaign status is open or closed, not {status!r}")
        with self._store._transaction(write=True) as session:
            row = self._row(session, campaign_id)
            if row.status != status:
                row.status = status
                row.closed_at = utc_now() if status == "closed" else None
                self._store._write_audit(
                    session, actor=actor, action=f"campaign.{status}", target=campaign_id
                )
            return _campaign(row, self._members(session, campaign_id))

    # -- conversations ------------------------------------------------------------------------

    def _check_member(self, session: Session, campaign: CampaignRow, account_id: str) -> None:
        if session.get(CampaignMemberRow, (campaign.id, account_id)) is None:
            raise RecordNotFoundError(f"no campaign with id {campaign.id!r} for this account")

    def start_conversation(self, campaign_id: str, account_id: str) -> Conversation:
        """A new, empty conversation of an invited red teamer in an open campaign."""
        with self._store._transaction(write=True) as session:
            campaign = self._row(session, campaign_id)
            self._check_member(session, campaign, account_id)
            if campaign.status != "open":
                raise InputError(f"campaign {campaign.name!r} is closed")
            row = ConversationRow(
                id=new_id("conv"),
                campaign_id=campaign_id,
                account_id=account_id,
                created_at=utc_now(),
            )
            session.add(row)
            return _conversation(row, [])

    def _owned(
        self, session: Session, conversation_id: str, account_id: str | None
    ) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or (account_id is not None and row.account_id != account_id):
            raise RecordNotFoundError(f"no conversation with id {conversation_id!r}")
        return row

    def add_exchange(
        self, conversation_id: str, exchange: NewExchange, *, account_id: str
    ) -> Exchange:
        """Append a turn to the red teamer's own conversation (its campaign must be open)."""
        with self._store._transaction(write=True) as session:
            conversation = self._owned(session, conversation_id, account_id)
            campaign = self._row(session, conversation.campaign_id)
            if campaign.status != "open":
                raise InputError(f"campaign {campaign.name!r} is closed")
            # The conversation row is locked so that two tabs of the same red teamer number
            # their turns one after the other (SQLite writers are serialised anyway).
            session.execute(
                select(ConversationRow.id)
                .where(ConversationRow.id == conversation_id)
                .with_for_update()
            )
            last = session.scalar(
                select(func.max(ExchangeRow.turn)).where(
                    ExchangeRow.conversation_id == conversation_id
                )
            )
            row = ExchangeRow(
                conversation_id=conversation_id,
                turn=(last or 0) + 1,
                modality=exchange.modality,
                prompt=exchange.prompt,
                response=exchange.response,
                request_id=exchange.request_id,
                status=exchange.status,
                blocked=exchange.blocked,
                layer=exchange.layer,
                decision=json_object(exchange.decision, "decision"),
                image=exchange.image,
                image_media_type=exchange.image_media_type,
                upload=exchange.upload,
                upload_media_type=exchange.upload_media_type,
                created_at=utc_now(),
            )
            session.add(row)
            session.flush()
            return _exchange(row, with_media=False)

    def conversation(
        self, conversation_id: str, *, account_id: str | None = None, with_media: bool = False
    ) -> Conversation:
        """One conversation with its turns; with ``account_id``, only if it is theirs."""
        with self._store._transaction(write=False) as session:
            row = self._owned(session, conversation_id, account_id)
            return _conversation(row, self._exchanges(session, [row.id], with_media)[row.id])

    def conversations(
        self, campaign_id: str, *, account_id: str | None = None
    ) -> list[Conversation]:
        """A campaign's conversations (one red teamer's, with ``account_id``), oldest first."""
        query = (
            select(ConversationRow)
            .where(ConversationRow.campaign_id == campaign_id)
            .order_by(ConversationRow.created_at, ConversationRow.id)
        )
        if account_id is not None:
            query = query.where(ConversationRow.account_id == account_id)
        with self._store._transaction(write=False) as session:
            self._row(session, campaign_id)
            rows = list(session.scalars(query))
            turns = self._exchanges(session, [r.id for r in rows], with_media=False)
            return [_conversation(r, turns[r.id]) for r in rows]

    @staticmethod
    def _exchanges(
        session: Session, conversation_ids: list[str], with_media: bool
    ) -> dict[str, list[Exchange]]:
        out: dict[str, list[Exchange]] = {cid: [] for cid in conversation_ids}
        if not conversation_ids:
            return out
        query = (
            select(ExchangeRow)
            .where(ExchangeRow.conversation_id.in_(conversation_ids))
            .order_by(ExchangeRow.conversation_id, ExchangeRow.turn)
        )
        if not with_media:
            query = query.options(defer(ExchangeRow.image), defer(ExchangeRow.upload))
        for row in session.scalars(query):
            out[row.conversation_id].append(_exchange(row, with_media=with_media))
        return out

    def exchange(self, exchange_id: int, *, account_id: str | None = None) -> Exchange:
        """One turn with its media (for showing an image); with ``account_id``, only theirs."""
        with self._store._transaction(write=False) as session:
            row = session.get(ExchangeRow, exchange_id)
            if row is None:
                raise RecordNotFoundError(f"no exchange with id {exchange_id!r}")
            self._owned(session, row.conversation_id, account_id)
            return _exchange(row, with_media=True)

    def label(
        self,
        exchange_id: int,
        label: ExchangeLabel,
        *,
        actor: str,
        account_id: str | None,
        categories: frozenset[str] | None = None,
    ) -> Exchange:
        """Label a turn (again, if need be: the latest label counts, and the audit log keeps all).

        An attack outcome needs the ``category`` attempted; with ``categories`` (the policy's
        ids) an unknown one is refused. With ``account_id`` only the red teamer's own turns can be
        labelled.
        """
        required(actor, "actor")
        if label.is_attack and not label.category:
            raise InputError(f"a {label.outcome} label needs the category that was attempted")
        if categories is not None and label.category and label.category not in categories:
            raise InputError(
                f"unknown category {label.category!r}; the policy's categories: "
                f"{', '.join(sorted(categories))}"
            )
        with self._store._transaction(write=True) as session:
            row = session.get(ExchangeRow, exchange_id)
            if row is None:
                raise RecordNotFoundError(f"no exchange with id {exchange_id!r}")
            self._owned(session, row.conversation_id, account_id)
            row.label_outcome = label.outcome
            row.label_category = label.category
            row.label_note = label.note
            row.labelled_at = utc_now()
            row.labelled_by = actor
            self._store._write_audit(
                session,
                actor=actor,
                action="campaign.label",
                target=str(exchange_id),
                details=label.model_dump(),
            )
            return _exchange(row, with_media=False)
