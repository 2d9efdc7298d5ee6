"""Image safety: hash entries, per-bank actions, report delivery, opt-out aliases and
reference face embeddings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Self-contained like 0001. Columns added to existing tables carry server defaults so that rows
written before this revision stay valid; SQLite alters tables in batch mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
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
    with op.batch_alter_table("hash_banks") as batch:
        batch.add_column(
            sa.Column("action_reject", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("action_report", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("action_ban", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("updated_at", _time(), nullable=True))
    op.create_table(
        "hash_entries",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("bank_id", sa.String(_ID), nullable=False),
        sa.Column("hash_type", sa.String(8), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hash_entries"),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["hash_banks.id"],
            name="fk_hash_entries_bank_id_hash_banks",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("bank_id", "hash_type", "value", name="uq_hash_entries_bank_id"),
        sa.CheckConstraint("hash_type IN ('sha256', 'md5', 'pdq')", name="ck_hash_entries_type"),
    )
    op.create_index("ix_hash_entries_hash_type_value", "hash_entries", ["hash_type", "value"])
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column(
                "delivery_status",
                sa.String(16),
                nullable=False,
                server_default="not_configured",
            )
        )
        batch.add_column(
            sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("next_attempt_at", _time(), nullable=True))
        batch.add_column(sa.Column("delivered_at", _time(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index("ix_reports_delivery_status", "reports", ["delivery_status"])
    with op.batch_alter_table("opt_outs") as batch:
        batch.add_column(sa.Column("aliases", _json(), nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("face_embeddings", _json(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("opt_outs") as batch:
        batch.drop_column("face_embeddings")
        batch.drop_column("aliases")
    op.drop_index("ix_reports_delivery_status", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        for column in (
            "last_error",
            "delivered_at",
            "next_attempt_at",
            "delivery_attempts",
            "delivery_status",
        ):
            batch.drop_column(column)
    op.drop_index("ix_hash_entries_hash_type_value", table_name="hash_entries")
    op.drop_table("hash_entries")
    with op.batch_alter_table("hash_banks") as batch:
        for column in ("updated_at", "action_ban", "action_report", "action_reject"):
            batch.drop_column(column)
