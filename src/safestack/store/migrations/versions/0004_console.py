"""Web console: account roles, red-team traffic, sessions, campaigns, the review queue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Self-contained like 0001. Columns added to existing tables carry server defaults (or are
nullable) so that rows written before this revision stay valid; SQLite alters tables in batch
mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = 40


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # An item's or an account's audit trail is read by target.
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))
        batch.create_check_constraint(
            "role", "role IS NULL OR role IN ('admin', 'reviewer', 'red_teamer')"
        )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(
            sa.Column("traffic", sa.String(16), nullable=False, server_default="real_world")
        )
        batch.create_check_constraint("traffic", "traffic IN ('real_world', 'red_team')")
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("last_seen_at", _time(), nullable=False),
        sa.Column("revoked_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_console_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_console_sessions_token_hash"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_console_sessions_account_id_accounts"
        ),
    )
    op.create_index("ix_console_sessions_account_id", "console_sessions", ["account_id"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("categories", _json(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("show_internals", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("closed_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_campaigns_status"),
        sa.CheckConstraint("audience IN ('adult', 'under_18')", name="ck_campaigns_audience"),
    )
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", sa.String(_ID), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("added_at", _time(), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "account_id", name="pk_campaign_members"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_members_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_campaign_members_account_id_accounts"
        ),
    )
    op.create_index("ix_campaign_members_account_id", "campaign_members", ["account_id"])
    op.create_table(
        "redteam_conversations",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("campaign_id", sa.String(_ID), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_redteam_conversations"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_redteam_conversations_campaign_id_campaigns",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_redteam_conversations_account_id_accounts"
        ),
    )
    op.create_index(
        "ix_redteam_conversations_campaign_id", "redteam_conversations", ["campaign_id"]
    )
    op.create_table(
        "redteam_exchanges",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(_ID), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("layer", sa.String(32), nullable=True),
        sa.Column("decision", _json(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("image_media_type", sa.String(64), nullable=True),
        sa.Column("upload", sa.LargeBinary(), nullable=True),
        sa.Column("upload_media_type", sa.String(64), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("label_category", sa.String(64), nullable=True),
        sa.Column("label_outcome", sa.String(24), nullable=True),
        sa.Column("label_note", sa.Text(), nullable=True),
        sa.Column("labelled_at", _time(), nullable=True),
        sa.Column("labelled_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_redteam_exchanges"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["redteam_conversations.id"],
            name="fk_redteam_exchanges_conversation_id_redteam_conversations",
        ),
        sa.UniqueConstraint("conversation_id", "turn", name="uq_redteam_exchanges_conversation_id"),
        sa.CheckConstraint("modality IN ('text', 'image')", name="ck_redteam_exchanges_modality"),
        sa.CheckConstraint(
            "label_outcome IS NULL OR label_outcome IN "
            "('jailbreak', 'refused_correctly', 'over_refusal', 'answered_correctly')",
            name="ck_redteam_exchanges_label_outcome",
        ),
    )
    op.create_index(
        "ix_redteam_exchanges_conversation_id", "redteam_exchanges", ["conversation_id"]
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reasons", _json(), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("report_id", sa.String(_ID), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("resolved_at", _time(), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("label", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_review_items_account_id_accounts"
        ),
        sa.CheckConstraint(
            "kind IN ('decision', 'hash_match', 'suspension', 'appeal', 'opt_out_request')",
            name="ck_review_items_kind",
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_review_items_status"),
    )
    op.create_index("ix_review_items_account_id", "review_items", ["account_id"])
    op.create_index("ix_review_items_status_created_at", "review_items", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_review_items_status_created_at", table_name="review_items")
    op.drop_index("ix_review_items_account_id", table_name="review_items")
    op.drop_table("review_items")
    op.drop_index("ix_redteam_exchanges_conversation_id", table_name="redteam_exchanges")
    op.drop_table("redteam_exchanges")
    op.drop_index("ix_redteam_conversations_campaign_id", table_name="redteam_conversations")
    op.drop_table("redteam_conversations")
    op.drop_index("ix_campaign_members_account_id", table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_table("campaigns")
    op.drop_index("ix_console_sessions_account_id", table_name="console_sessions")
    op.drop_table("console_sessions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_constraint("ck_decisions_traffic", type_="check")
        batch.drop_column("traffic")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("ck_accounts_role", type_="check")
        batch.drop_column("role")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
