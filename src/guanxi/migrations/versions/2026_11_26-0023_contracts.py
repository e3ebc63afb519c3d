"""enterprise contracts

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 07:10:00

Tables of the contracts domain: ``contract`` (terms, period, status, renewal link),
``contract_amendment`` (append-only change history), ``contract_document`` (attached
files, bytes under ``data_dir/attachments``), ``contract_reminder`` (renewal reminders
sent, one per contract, end date and threshold) and ``contract_setting`` (the policy).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("commit_shipments", sa.Integer(), nullable=True),
        sa.Column("commit_revenue_fen", sa.BigInteger(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("reminder_days", sa.Integer(), nullable=True),
        sa.Column("renewal_of_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_contract_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_contract_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name=op.f("fk_contract_owner_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["renewal_of_id"],
            ["contract.id"],
            name=op.f("fk_contract_renewal_of_id_contract"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract")),
        sa.UniqueConstraint("number", name=op.f("uq_contract_number")),
        sa.UniqueConstraint("renewal_of_id", name=op.f("uq_contract_renewal_of_id")),
    )
    op.create_index(
        "ix_contract_customer_id", "contract", ["customer_id", "end_date"], unique=False
    )
    op.create_index("ix_contract_owner_id", "contract", ["owner_id", "id"], unique=False)
    op.create_index("ix_contract_status_end_date", "contract", ["status", "end_date"], unique=False)
    op.create_table(
        "contract_amendment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=100), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_contract_amendment_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract.id"],
            name=op.f("fk_contract_amendment_contract_id_contract"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_amendment")),
    )
    op.create_index(
        "ix_contract_amendment_contract_id",
        "contract_amendment",
        ["contract_id", "id"],
        unique=False,
    )
    op.create_table(
        "contract_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract.id"],
            name=op.f("fk_contract_document_contract_id_contract"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["app_user.id"],
            name=op.f("fk_contract_document_uploaded_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_document")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_contract_document_storage_key")),
    )
    op.create_index(
        "ix_contract_document_contract_id", "contract_document", ["contract_id", "id"], unique=False
    )
    op.create_table(
        "contract_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract.id"],
            name=op.f("fk_contract_reminder_contract_id_contract"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name=op.f("fk_contract_reminder_owner_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_reminder")),
        sa.UniqueConstraint(
            "contract_id", "end_date", "days_before", name="uq_contract_reminder_once"
        ),
    )
    op.create_table(
        "contract_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_contract_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_contract_setting")),
    )


def downgrade() -> None:
    op.drop_table("contract_setting")
    op.drop_table("contract_reminder")
    op.drop_index("ix_contract_document_contract_id", table_name="contract_document")
    op.drop_table("contract_document")
    op.drop_index("ix_contract_amendment_contract_id", table_name="contract_amendment")
    op.drop_table("contract_amendment")
    op.drop_index("ix_contract_status_end_date", table_name="contract")
    op.drop_index("ix_contract_owner_id", table_name="contract")
    op.drop_index("ix_contract_customer_id", table_name="contract")
    op.drop_table("contract")
