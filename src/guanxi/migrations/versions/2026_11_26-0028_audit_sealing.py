"""audit sealing keys

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-26 11:30:00

``audit_subject_key``: one data key per audit subject (a customer) that seals its
personal values in the audit log; anonymisation deletes it (crypto-shredding, see
``guanxi.audit.sealing``). The key is stored encrypted with the field cipher.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the subject key table."""
    op.create_table(
        "audit_subject_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("audit_subject_key_enc", sa.Text(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_subject_key")),
        sa.UniqueConstraint("subject_type", "subject_id", name="uq_audit_subject_key_subject"),
    )


def downgrade() -> None:
    """Drop the subject key table (sealed values in the log become unreadable)."""
    op.drop_table("audit_subject_key")
