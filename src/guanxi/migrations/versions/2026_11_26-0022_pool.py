"""the customer pool

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 07:10:00

Tables of the customer pool (公海): the pool policy (``pool_setting``), the history of
customers moving into and out of the pool (``pool_event``) and each salesperson's claims
per local day (``pool_claim_day``, where the daily cap is enforced). No seed rows: without
a saved policy the defaults of ``guanxi.pool.policy.PoolPolicy`` apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the pool tables."""
    op.create_table(
        "pool_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_pool_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pool_setting")),
    )
    op.create_table(
        "pool_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("from_user_id", sa.Integer(), nullable=True),
        sa.Column("to_user_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=True),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_pool_event_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_pool_event_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_user_id"],
            ["app_user.id"],
            name=op.f("fk_pool_event_from_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["to_user_id"],
            ["app_user.id"],
            name=op.f("fk_pool_event_to_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_event")),
    )
    with op.batch_alter_table("pool_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pool_event_customer_time", ["customer_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_pool_event_time", ["occurred_at"], unique=False)
        batch_op.create_index(
            "ix_pool_event_to_user", ["to_user_id", "kind", "occurred_at"], unique=False
        )
    op.create_table(
        "pool_claim_day",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_pool_claim_day_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_pool_claim_day")),
    )


def downgrade() -> None:
    """Drop the pool tables."""
    op.drop_table("pool_claim_day")
    with op.batch_alter_table("pool_event", schema=None) as batch_op:
        batch_op.drop_index("ix_pool_event_to_user")
        batch_op.drop_index("ix_pool_event_time")
        batch_op.drop_index("ix_pool_event_customer_time")
    op.drop_table("pool_event")
    op.drop_table("pool_setting")
