"""row-level scope of users

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-26 11:30:00

``user_scope``: the optional regions and desk teams a user is limited to (no rows: the
role's whole reach); ``app_user.scoped`` says whether a user has any, so the per-request
token lookup knows without reading them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scoped", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "user_scope",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_user_scope_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_scope")),
        sa.UniqueConstraint("user_id", "kind", "value", name=op.f("uq_user_scope_user_id")),
    )
    with op.batch_alter_table("user_scope", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_scope_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_scope", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_scope_user_id"))
    op.drop_table("user_scope")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("scoped")
