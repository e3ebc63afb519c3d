"""sales teams, leads and opportunities

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 07:10:00

Tables of the sales pipeline (``sales_team``, ``sales_team_member``, ``sales_lost_reason``,
``opportunity``, ``opportunity_stage_change``), the interaction log's link to the
opportunity a contact was about, and the usual reasons an opportunity is lost (the sales
managers edit the list).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (code, Chinese label, English label)
LOST_REASONS = [
    ("price", "价格没有竞争力", "Price not competitive"),
    ("competitor", "选择了竞争对手", "Chose a competitor"),
    ("service_area", "服务网点不覆盖", "Outside our service area"),
    ("timing", "时效不满足要求", "Delivery times do not fit"),
    ("no_budget", "客户无预算", "No budget"),
    ("no_response", "客户失去联系", "Customer stopped responding"),
    ("other", "其他原因", "Other"),
]


def upgrade() -> None:
    """Create the sales tables, link interactions to opportunities, seed the lost reasons."""
    utc = guanxi.core.types.UTCDateTime(timezone=True)
    op.create_table(
        "sales_team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["app_user.id"],
            name=op.f("fk_sales_team_manager_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_team")),
        sa.UniqueConstraint("name", name=op.f("uq_sales_team_name")),
    )
    op.create_index(op.f("ix_sales_team_manager_id"), "sales_team", ["manager_id"], unique=False)
    op.create_table(
        "sales_team_member",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["sales_team.id"],
            name=op.f("fk_sales_team_member_team_id_sales_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_sales_team_member_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_sales_team_member")),
        sa.UniqueConstraint("user_id", name=op.f("uq_sales_team_member_user_id")),
    )
    reasons = op.create_table(
        "sales_lost_reason",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_sales_lost_reason")),
    )
    op.create_table(
        "opportunity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("expected_revenue", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=True),
        sa.Column("expected_close", sa.Date(), nullable=True),
        sa.Column("next_step", sa.String(length=200), nullable=True),
        sa.Column("next_step_due", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("lost_reason", sa.String(length=40), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("contact_name_enc", sa.Text(), nullable=True),
        sa.Column("contact_company_enc", sa.Text(), nullable=True),
        sa.Column("contact_phone_enc", sa.Text(), nullable=True),
        sa.Column("contact_phone_bidx", sa.String(length=32), nullable=True),
        sa.Column("contact_email_enc", sa.Text(), nullable=True),
        sa.Column("contact_email_bidx", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("closed_at", utc, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_opportunity_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name=op.f("fk_opportunity_owner_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_opportunity_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lost_reason"],
            ["sales_lost_reason.code"],
            name=op.f("fk_opportunity_lost_reason_sales_lost_reason"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity")),
        sa.UniqueConstraint("campaign_id", "customer_id", name="uq_opportunity_campaign_customer"),
    )
    op.create_index("ix_opportunity_owner_stage", "opportunity", ["owner_id", "stage"])
    op.create_index("ix_opportunity_stage_close", "opportunity", ["stage", "expected_close"])
    op.create_index("ix_opportunity_customer_id", "opportunity", ["customer_id"])
    op.create_index(
        op.f("ix_opportunity_contact_phone_bidx"), "opportunity", ["contact_phone_bidx"]
    )
    op.create_index(
        op.f("ix_opportunity_contact_email_bidx"), "opportunity", ["contact_email_bidx"]
    )
    op.create_table(
        "opportunity_stage_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opportunity_id", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", utc, nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["opportunity_id"],
            ["opportunity.id"],
            name=op.f("fk_opportunity_stage_change_opportunity_id_opportunity"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_opportunity_stage_change_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_stage_change")),
    )
    op.create_index(
        "ix_opportunity_stage_change_opp",
        "opportunity_stage_change",
        ["opportunity_id", "changed_at"],
    )
    op.create_index("ix_opportunity_stage_change_at", "opportunity_stage_change", ["changed_at"])
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opportunity_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_interaction_opportunity_id_opportunity"),
            "opportunity",
            ["opportunity_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_opportunity_id"), ["opportunity_id"], unique=False
        )
    op.bulk_insert(
        reasons,
        [
            {"code": code, "label_zh": zh, "label_en": en, "active": True, "position": n}
            for n, (code, zh, en) in enumerate(LOST_REASONS)
        ],
    )


def downgrade() -> None:
    """Drop the sales tables and the interaction log's link."""
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_opportunity_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_interaction_opportunity_id_opportunity"), type_="foreignkey"
        )
        batch_op.drop_column("opportunity_id")
    op.drop_table("opportunity_stage_change")
    op.drop_table("opportunity")
    op.drop_table("sales_lost_reason")
    op.drop_table("sales_team_member")
    op.drop_table("sales_team")
