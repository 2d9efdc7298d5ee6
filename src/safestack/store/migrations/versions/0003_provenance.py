"""Provenance registry: one row per image the deployment released.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Self-contained like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = 40


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provenance_records",
        sa.Column("seq", _serial(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column("watermark_method", sa.String(16), nullable=True),
        sa.Column("watermark_payload", sa.String(32), nullable=True),
        sa.Column("manifest_label", sa.String(200), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("manifest_embedded", sa.Boolean(), nullable=False),
        sa.Column("sidecar_manifest", sa.LargeBinary(), nullable=True),
        sa.Column("signer_fingerprint", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_provenance_records"),
        sa.UniqueConstraint("id", name="uq_provenance_records_id"),
        sa.CheckConstraint(
            "action IN ('created', 'edited')", name="ck_provenance_records_action"
        ),
    )
    op.create_index("ix_provenance_records_sha256", "provenance_records", ["sha256"])
    op.create_index(
        "ix_provenance_records_manifest_label", "provenance_records", ["manifest_label"]
    )


def downgrade() -> None:
    op.drop_index("ix_provenance_records_manifest_label", table_name="provenance_records")
    op.drop_index("ix_provenance_records_sha256", table_name="provenance_records")
    op.drop_table("provenance_records")
