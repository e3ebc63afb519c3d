"""loyalty membership, points ledger and coupons

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 01:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "coupon_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_off_fen", sa.BigInteger(), nullable=True),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("free_service", sa.String(length=30), nullable=True),
        sa.Column("min_spend_fen", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column("eligible_tiers", sa.String(length=200), nullable=True),
        sa.Column("points_price", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "total_limit IS NULL OR issued_count <= total_limit",
            name=op.f("ck_coupon_template_within_limit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_template")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_template_code")),
    )
    op.create_table(
        "loyalty_accrual_state",
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_loyalty_accrual_state")),
    )
    op.create_table(
        "loyalty_points",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=False),
        sa.Column("occurred_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shipment_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_loyalty_points_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_points")),
        sa.UniqueConstraint("source_key", name=op.f("uq_loyalty_points_source_key")),
    )
    op.create_index(
        "ix_loyalty_points_customer_id", "loyalty_points", ["customer_id", "id"], unique=False
    )
    op.create_table(
        "loyalty_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_loyalty_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_loyalty_setting")),
    )
    op.create_table(
        "coupon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_from", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_ref", sa.String(length=80), nullable=True),
        sa.Column("redeemed_by", sa.Integer(), nullable=True),
        sa.Column("discount_fen", sa.BigInteger(), nullable=True),
        sa.Column("voided_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=300), nullable=True),
        sa.Column("voided_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_coupon_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"],
            ["app_user.id"],
            name=op.f("fk_coupon_issued_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["redeemed_by"],
            ["app_user.id"],
            name=op.f("fk_coupon_redeemed_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_template.id"],
            name=op.f("fk_coupon_template_id_coupon_template"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["voided_by"],
            ["app_user.id"],
            name=op.f("fk_coupon_voided_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_code")),
        sa.UniqueConstraint("template_id", "customer_id", "source_key", name="uq_coupon_issue"),
    )
    op.create_index("ix_coupon_customer_status", "coupon", ["customer_id", "status"], unique=False)
    op.create_index(
        "ix_coupon_status_valid_until", "coupon", ["status", "valid_until"], unique=False
    )
    op.create_table(
        "loyalty_member",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("tier_since", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("joined_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("downgrade_due_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_points", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_via", sa.String(length=10), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_loyalty_member_balance_not_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_loyalty_member_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_member")),
    )
    op.create_index(
        "ix_loyalty_member_downgrade_due_at", "loyalty_member", ["downgrade_due_at"], unique=False
    )
    op.create_index("ix_loyalty_member_tier", "loyalty_member", ["tier"], unique=False)
    op.create_table(
        "loyalty_tier_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("from_tier", sa.String(length=20), nullable=True),
        sa.Column("to_tier", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("spend_fen", sa.BigInteger(), nullable=False),
        sa.Column("shipments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["loyalty_member.customer_id"],
            name=op.f("fk_loyalty_tier_change_customer_id_loyalty_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_tier_change")),
    )
    op.create_index("ix_loyalty_tier_change_at", "loyalty_tier_change", ["at"], unique=False)
    op.create_index(
        "ix_loyalty_tier_change_customer",
        "loyalty_tier_change",
        ["customer_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_loyalty_tier_change_customer", table_name="loyalty_tier_change")
    op.drop_index("ix_loyalty_tier_change_at", table_name="loyalty_tier_change")
    op.drop_table("loyalty_tier_change")
    op.drop_index("ix_loyalty_member_tier", table_name="loyalty_member")
    op.drop_index("ix_loyalty_member_downgrade_due_at", table_name="loyalty_member")
    op.drop_table("loyalty_member")
    op.drop_index("ix_coupon_status_valid_until", table_name="coupon")
    op.drop_index("ix_coupon_customer_status", table_name="coupon")
    op.drop_table("coupon")
    op.drop_table("loyalty_setting")
    op.drop_index("ix_loyalty_points_customer_id", table_name="loyalty_points")
    op.drop_table("loyalty_points")
    op.drop_table("loyalty_accrual_state")
    op.drop_table("coupon_template")
