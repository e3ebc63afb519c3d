"""campaigns, recipients, tracked links, conversions

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 07:10:00

Tables of marketing campaigns: ``campaign`` (goal, audience, channel, offer, schedule,
budget, control share, throttle, launch figures), its A/B ``campaign_variant`` rows and
``campaign_cost`` lines, ``campaign_recipient`` (the audience's snapshot at launch, each
in a variant or the control group, with its tracked-link code, clicks and attributed
conversions) and ``campaign_setting`` (the campaign policy: the campaigns' frequency cap).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the campaign tables."""
    op.create_table(
        "campaign_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_campaign_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_campaign_setting")),
    )
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("target_url", sa.String(length=500), nullable=False),
        sa.Column("coupon_template", sa.String(length=40), nullable=True),
        sa.Column("send_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("control_pct", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("rate_per_hour", sa.Integer(), nullable=True),
        sa.Column("attribution_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("capped", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("launched_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("conversions_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audience_id"],
            ["campaign_audience.id"],
            name=op.f("fk_campaign_audience_id_campaign_audience"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_campaign_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_campaign_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    op.create_index(op.f("ix_campaign_audience_id"), "campaign", ["audience_id"], unique=False)
    op.create_index("ix_campaign_status_send_at", "campaign", ["status", "send_at"], unique=False)
    op.create_table(
        "campaign_cost",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_cost_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_campaign_cost_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_cost")),
    )
    op.create_index(
        op.f("ix_campaign_cost_campaign_id"), "campaign_cost", ["campaign_id"], unique=False
    )
    op.create_table(
        "campaign_recipient",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_click_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("revenue_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_recipient_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_campaign_recipient_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id", name=op.f("pk_campaign_recipient")),
        sa.UniqueConstraint("code", name=op.f("uq_campaign_recipient_code")),
    )
    op.create_table(
        "campaign_variant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("sms_template", sa.String(length=40), nullable=True),
        sa.Column("subject_zh", sa.String(length=200), nullable=False),
        sa.Column("body_zh", sa.Text(), nullable=False),
        sa.Column("subject_en", sa.String(length=200), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_variant_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_variant")),
        sa.UniqueConstraint("campaign_id", "code", name="uq_campaign_variant_code"),
    )


def downgrade() -> None:
    """Drop the campaign tables."""
    op.drop_table("campaign_variant")
    op.drop_table("campaign_recipient")
    op.drop_index(op.f("ix_campaign_cost_campaign_id"), table_name="campaign_cost")
    op.drop_table("campaign_cost")
    op.drop_index("ix_campaign_status_send_at", table_name="campaign")
    op.drop_index(op.f("ix_campaign_audience_id"), table_name="campaign")
    op.drop_table("campaign")
    op.drop_table("campaign_setting")
