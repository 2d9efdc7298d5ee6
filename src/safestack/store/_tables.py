"""The database schema as SQLAlchemy models: one class per table.

These classes describe the schema the code expects; the migrations in ``migrations/versions``
create it. The migration files never import this module (a migration must keep describing the
schema of its own day), and a test compares the two so that they cannot drift apart.

Portability between SQLite and PostgreSQL is decided here: timestamps go through
:class:`UTCDateTime` (SQLite has no time-zone type), JSON is ``JSONB`` on PostgreSQL and JSON text
on SQLite, and auto-increment ids are ``BIGINT`` on PostgreSQL but ``INTEGER`` on SQLite (the only
type SQLite auto-increments).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = [
    "AccountRow",
    "ApiKeyRow",
    "AuditRow",
    "Base",
    "CampaignMemberRow",
    "CampaignRow",
    "ConsoleSessionRow",
    "ConversationRow",
    "DecisionRow",
    "ExchangeRow",
    "HashBankRow",
    "HashEntryRow",
    "OptOutRow",
    "ProvenanceRow",
    "ReportRow",
    "ReviewItemRow",
    "UTCDateTime",
]

#: Deterministic constraint names, so a later migration can drop or alter a constraint by name on
#: both databases (SQLite's batch mode needs names to rebuild a table).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 40  # "acct_" + 32 hex digits, with room to spare


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz`` and hands back aware values. SQLite has no time-zone type:
    values are stored as naive UTC text, which sorts and compares correctly as text, and are made
    aware again on the way out. A naive datetime is refused on the way in, because guessing its
    zone is how time windows silently shift by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
Serial = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AccountRow(Base):
    """An account. ``unbanned_at`` is the last unban: strikes before it are forgiven."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'banned')", name="status"),
        CheckConstraint("audience IN ('adult', 'under_18')", name="audience"),
        CheckConstraint("role IS NULL OR role IN ('admin', 'reviewer', 'red_teamer')", name="role"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))
    ban_code: Mapped[str | None] = mapped_column(String(64))
    ban_reason: Mapped[str | None] = mapped_column(Text)
    banned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unbanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A console role (admin, reviewer, red_teamer); None for an ordinary API customer.
    role: Mapped[str | None] = mapped_column(String(16))


class ApiKeyRow(Base):
    """An API key: the SHA-256 of the key (unique: the lookup index), never the key itself."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("accounts.id"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DecisionRow(Base):
    """One request's safety decision. Indexed by (account, time) for the strike count."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_account_id_created_at", "account_id", "created_at"),
        CheckConstraint("traffic IN ('real_world', 'red_team')", name="traffic"),
    )

    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("accounts.id"))
    endpoint: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    blocked: Mapped[bool] = mapped_column(Boolean)
    layer: Mapped[str | None] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(JSONDocument)
    severity: Mapped[str | None] = mapped_column(String(32))
    clause: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(32))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Red teamers' traffic is marked so that it never counts as real-world data.
    traffic: Mapped[str] = mapped_column(String(16), server_default="real_world")


class AuditRow(Base):
    """The audit log: append-only, one row per administrative action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(Text, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class ReportRow(Base):
    """A report for review, optionally about an account."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("accounts.id"), index=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Delivery to the configured report receiver (webhook): the row is the outbox, so a report
    # survives a receiver that is down and is retried until delivered.
    delivery_status: Mapped[str] = mapped_column(
        String(16), index=True, server_default="not_configured"
    )
    delivery_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class OptOutRow(Base):
    """An opt-out. ``name_key`` (case- and space-folded name) makes duplicates unique per kind."""

    __tablename__ = "opt_outs"
    __table_args__ = (
        UniqueConstraint("name_key", "kind", name="uq_opt_outs_name_key_kind"),
        CheckConstraint("kind IN ('public_figure', 'artist')", name="kind"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    aliases: Mapped[list[str]] = mapped_column(JSONDocument, server_default="[]")
    # Face descriptors of reference photos (one list of floats per photo), never the photos.
    face_embeddings: Mapped[list[list[float]]] = mapped_column(JSONDocument, server_default="[]")


class HashBankRow(Base):
    """A named hash bank and what a match against it does (reject, report, ban).

    ``updated_at`` moves whenever the bank or its entries change, so a matcher in any replica can
    tell cheaply that its in-memory index is stale.
    """

    __tablename__ = "hash_banks"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action_reject: Mapped[bool] = mapped_column(Boolean, server_default=true())
    action_report: Mapped[bool] = mapped_column(Boolean, server_default=true())
    action_ban: Mapped[bool] = mapped_column(Boolean, server_default=true())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HashEntryRow(Base):
    """One known-bad hash in a bank: ``hash_type`` is sha256, md5 or pdq; ``value`` lower hex."""

    __tablename__ = "hash_entries"
    __table_args__ = (
        UniqueConstraint("bank_id", "hash_type", "value", name="uq_hash_entries_bank_id"),
        CheckConstraint("hash_type IN ('sha256', 'md5', 'pdq')", name="type"),
        Index("ix_hash_entries_hash_type_value", "hash_type", "value"),
    )

    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    bank_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("hash_banks.id", ondelete="CASCADE")
    )
    hash_type: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProvenanceRow(Base):
    """One image this deployment released: what "did we make this image?" is answered from.

    ``seq`` orders records for the in-memory indexes (a replica reads the rows after the last
    ``seq`` it has seen); ``id`` is the public record id written into the C2PA manifest. The
    prompt is kept as its SHA-256 only, unless the operator configured otherwise. A sidecar
    manifest (for formats C2PA cannot embed into) is kept here so it can be served again.
    """

    __tablename__ = "provenance_records"
    __table_args__ = (
        CheckConstraint("action IN ('created', 'edited')", name="action"),
        Index("ix_provenance_records_sha256", "sha256"),
        Index("ix_provenance_records_manifest_label", "manifest_label"),
    )

    seq: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    account_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    request_id: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(16))
    prompt_sha256: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    watermark_method: Mapped[str | None] = mapped_column(String(16))
    watermark_payload: Mapped[str | None] = mapped_column(String(32))
    manifest_label: Mapped[str | None] = mapped_column(String(200))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    manifest_embedded: Mapped[bool] = mapped_column(Boolean)
    sidecar_manifest: Mapped[bytes | None] = mapped_column(LargeBinary)
    signer_fingerprint: Mapped[str | None] = mapped_column(String(64))


class ConsoleSessionRow(Base):
    """A signed-in console user: the SHA-256 of the session token (never the token itself).

    ``account_id`` is None for a session opened with the admin key. ``role`` is the role at
    sign-in; an account session is only honoured while the account still has that role.
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("accounts.id"), index=True
    )
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignRow(Base):
    """A manual red-teaming campaign: which served model, which categories, which instructions."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("audience IN ('adult', 'under_18')", name="audience"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(256))
    categories: Mapped[list[str]] = mapped_column(JSONDocument)
    instructions: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(16))
    show_internals: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignMemberRow(Base):
    """A red teamer invited to a campaign."""

    __tablename__ = "campaign_members"

    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("accounts.id"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(Text)


class ConversationRow(Base):
    """One red teamer's conversation with the stack under test, within a campaign."""

    __tablename__ = "redteam_conversations"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExchangeRow(Base):
    """One turn of a red-team conversation: the prompt, what the stack answered, and the label.

    ``decision`` is the stack's full decision trace (shown only where the campaign allows it).
    An image turn keeps the released image (``image``) and any upload (``upload``) so that the
    label can be checked later against what the red teamer saw.
    """

    __tablename__ = "redteam_exchanges"
    __table_args__ = (
        UniqueConstraint("conversation_id", "turn", name="uq_redteam_exchanges_conversation_id"),
        CheckConstraint("modality IN ('text', 'image')", name="modality"),
        CheckConstraint(
            "label_outcome IS NULL OR label_outcome IN "
            "('jailbreak', 'refused_correctly', 'over_refusal', 'answered_correctly')",
            name="label_outcome",
        ),
    )

    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("redteam_conversations.id"), index=True
    )
    turn: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(8))
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    blocked: Mapped[bool] = mapped_column(Boolean)
    layer: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    image: Mapped[bytes | None] = mapped_column(LargeBinary)
    image_media_type: Mapped[str | None] = mapped_column(String(64))
    upload: Mapped[bytes | None] = mapped_column(LargeBinary)
    upload_media_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    label_category: Mapped[str | None] = mapped_column(String(64))
    label_outcome: Mapped[str | None] = mapped_column(String(24))
    label_note: Mapped[str | None] = mapped_column(Text)
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    labelled_by: Mapped[str | None] = mapped_column(Text)


class ReviewItemRow(Base):
    """Something for a person to look at, and what they decided.

    ``status`` moves from ``open`` to ``resolved`` exactly once: the update is conditional on
    ``open``, so of two reviewers acting on the same item at once, one wins and the other is told.
    """

    __tablename__ = "review_items"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('decision', 'hash_match', 'suspension', 'appeal', 'opt_out_request')",
            name="kind",
        ),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index("ix_review_items_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSONDocument)
    account_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("accounts.id"), index=True
    )
    request_id: Mapped[str | None] = mapped_column(String(128))
    report_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    label: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
