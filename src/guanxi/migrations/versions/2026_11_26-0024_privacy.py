"""data-subject requests and field purposes

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26 10:30:00

Tables of the privacy domain's requests: ``privacy_request`` (data-subject requests with
their verification, due date and answer), ``privacy_anonymisation`` (customers whose
personal information was anonymised: when, by whom, why) and ``privacy_setting`` (the
request policy: working days to answer, days of warning).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the request, anonymisation and policy tables."""
    utc = guanxi.core.types.UTCDateTime(timezone=True)
    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("received_at", utc, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("corrected_fields", sa.Text(), nullable=True),
        sa.Column("exported_at", utc, nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", utc, nullable=True),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_privacy_request_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_privacy_request_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["handled_by"],
            ["app_user.id"],
            name=op.f("fk_privacy_request_handled_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_request")),
    )
    op.create_index(
        "ix_privacy_request_status_due", "privacy_request", ["status", "due_on"], unique=False
    )
    op.create_index(
        "ix_privacy_request_customer", "privacy_request", ["customer_id", "id"], unique=False
    )
    op.create_table(
        "privacy_anonymisation",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("at", utc, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_privacy_anonymisation_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_privacy_anonymisation_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_privacy_anonymisation")),
    )
    op.create_table(
        "privacy_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_privacy_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_privacy_setting")),
    )


def downgrade() -> None:
    """Drop the privacy request tables."""
    op.drop_table("privacy_setting")
    op.drop_table("privacy_anonymisation")
    op.drop_index("ix_privacy_request_customer", table_name="privacy_request")
    op.drop_index("ix_privacy_request_status_due", table_name="privacy_request")
    op.drop_table("privacy_request")
