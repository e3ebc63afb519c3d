"""audit anchors and key rotation

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The audit viewer searches by actor, newest first. Anchors live outside the database
    # and key rotation keeps no state, so no table is needed.
    op.create_index("ix_audit_log_actor", "audit_log", ["actor_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
