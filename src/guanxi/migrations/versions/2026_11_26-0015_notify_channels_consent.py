"""outbound channels (SMS, webhooks) in one outbox; the consent ledger

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 01:10:00

The e-mail outbox (``outbox_email``) becomes the one outbox of every channel
(``outbox_message``): its rows are copied over as e-mails of category transactional, so
mails queued before the upgrade are still sent, and the old table is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMAIL_COLUMNS = (
    "id, key, to_enc, subject, body, status, attempts, next_attempt_at, last_error, "
    "created_at, sent_at"
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("to_enc", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=40), nullable=True),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("delivery", sa.String(length=12), nullable=False),
        sa.Column("delivered_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_outbox_message_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_message_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_message_caps",
            ["customer_id", "source", "created_at", "status"],
            unique=False,
        )
        batch_op.create_index("ix_outbox_message_provider_id", ["provider_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_message_status_next", ["status", "next_attempt_at"], unique=False
        )

    # Every queued, sent or failed mail keeps its id, key, state and times.
    op.execute(
        f"INSERT INTO outbox_message ({_EMAIL_COLUMNS}, channel, category, delivery) "  # noqa: S608
        f"SELECT {_EMAIL_COLUMNS}, 'email', 'transactional', 'unknown' FROM outbox_email"
    )
    if op.get_bind().dialect.name == "postgresql":
        # Rows were copied with their ids: move the new table's sequence past them.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('outbox_message', 'id'), "
            "COALESCE((SELECT MAX(id) FROM outbox_message), 0) + 1, false)"
        )
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_email_status_next")
    op.drop_table("outbox_email")

    op.create_table(
        "outbox_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_outbox_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_outbox_setting")),
    )
    op.create_table(
        "sms_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("sign", sa.String(length=30), nullable=False),
        sa.Column("aliyun_template", sa.String(length=40), nullable=True),
        sa.Column("tencent_template", sa.String(length=40), nullable=True),
        sa.Column("text_zh", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("param_order", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_template")),
        sa.UniqueConstraint("code", name=op.f("uq_sms_template_code")),
    )
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_webhook_endpoint_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )

    op.create_table(
        "customer_consent",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_consent_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "purpose", name=op.f("pk_customer_consent")),
    )
    with op.batch_alter_table("customer_consent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_consent_purpose", ["purpose", "granted", "customer_id"], unique=False
        )
    op.create_table(
        "customer_consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("legal_basis", sa.String(length=20), nullable=False),
        sa.Column("notice_version", sa.String(length=30), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_customer_consent_event_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_consent_event_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_consent_event")),
    )
    with op.batch_alter_table("customer_consent_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_consent_event_customer", ["customer_id", "id"], unique=False
        )

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=5), nullable=True))


def downgrade() -> None:
    """Revert this revision (SMS and webhook deliveries are dropped; e-mails go back)."""
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("language")

    with op.batch_alter_table("customer_consent_event", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_consent_event_customer")
    op.drop_table("customer_consent_event")
    with op.batch_alter_table("customer_consent", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_consent_purpose")
    op.drop_table("customer_consent")
    op.drop_table("webhook_endpoint")
    op.drop_table("sms_template")
    op.drop_table("outbox_setting")

    op.create_table(
        "outbox_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("to_enc", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_email")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_email_key")),
    )
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_email_status_next", ["status", "next_attempt_at"], unique=False
        )
    # Mails with an explicit address go back (customer-addressed ones have none stored);
    # the old table knows no "cancelled": such mails count as given up on.
    back = _EMAIL_COLUMNS.replace(
        "status,", "CASE WHEN status = 'cancelled' THEN 'failed' ELSE status END,"
    )
    op.execute(
        f"INSERT INTO outbox_email ({_EMAIL_COLUMNS}) SELECT {back} "  # noqa: S608
        "FROM outbox_message WHERE channel = 'email' AND to_enc IS NOT NULL"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('outbox_email', 'id'), "
            "COALESCE((SELECT MAX(id) FROM outbox_email), 0) + 1, false)"
        )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_status_next")
        batch_op.drop_index("ix_outbox_message_provider_id")
        batch_op.drop_index("ix_outbox_message_caps")
    op.drop_table("outbox_message")
