"""In-app notifications and the outbound channels: one outbox for e-mail, SMS and webhooks,
the SMS template registry, webhook endpoints and the channels' settings (quiet hours)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class Notification(Base):
    """A message to one user (assignment, near breach, breach, escalation, hand-over).

    ``key`` makes sending idempotent: the same event notifies a user once, however often
    the job that found it runs.
    """

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at", "id"),
        Index("uq_notification_user_key", "user_id", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """One outbound message (e-mail, SMS or webhook delivery), written in the same
    transaction as the change it reports and sent by the worker after commit, retried with
    back-off until it goes or gives up (see ``notify/outbox.py`` for its life).

    ``key`` makes queuing idempotent and is the idempotency token at the provider (the
    Message-ID of a mail, Aliyun's ``OutId``, Tencent's ``SessionContext``, the webhook's
    ``X-Guanxi-Delivery``). A customer's address is not copied here: it is resolved from
    the customer at send time (a changed number is used, a withdrawn consent is honoured);
    an explicit address (``to_enc``) is encrypted.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        # The sender's scan: open rows whose time has come.
        Index("ix_outbox_message_status_next", "status", "next_attempt_at"),
        # Frequency caps (sent_counts): per customer and source since a moment; status
        # makes it covering, so a whole-outbox count reads the index only.
        Index("ix_outbox_message_caps", "customer_id", "source", "created_at", "status"),
        # Delivery reports name the gateway's message id.
        Index("ix_outbox_message_provider_id", "provider_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    to_enc: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(40))
    # Template parameters as a JSON object (SMS); never personal identifiers.
    params: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str | None] = mapped_column(String(120))
    # pending -> sending (claimed, with a lease) -> sent | pending (retry) | failed;
    # pending -> cancelled (consent withdrawn, no address, cancelled by an administrator).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_error: Mapped[str | None] = mapped_column(String(300))
    # The gateway's id of the message (Aliyun BizId, Tencent SerialNo).
    provider_id: Mapped[str | None] = mapped_column(String(64))
    # unknown until a delivery report arrives: delivered | undelivered.
    delivery: Mapped[str] = mapped_column(String(12), default="unknown")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The e-mail outbox became the one outbox; older code and tests name it by its old name.
OutboxEmail = OutboxMessage


class OutboxSetting(Base):
    """One piece of the outbound channels' configuration as JSON (the quiet hours),
    validated by its pydantic model and saved with ``audit.service.save_setting``."""

    __tablename__ = "outbox_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class SmsTemplate(Base):
    """An SMS template: our code (``survey_invite``) mapped to each provider's approved
    template, with the text in Chinese and English for the file / console gateways and for
    previews. Chinese carriers only deliver texts from approved templates with an approved
    signature, so the gateways send the provider's template id and the parameters."""

    __tablename__ = "sms_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16))
    # Signature (签名) shown in 【】 before the text; empty: the configured default.
    sign: Mapped[str] = mapped_column(String(30), default="")
    aliyun_template: Mapped[str | None] = mapped_column(String(40))
    tencent_template: Mapped[str | None] = mapped_column(String(40))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    # Parameter names in the order of Tencent's {1}, {2}, ... placeholders (JSON list).
    param_order: Mapped[str] = mapped_column(Text, default="[]")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class WebhookEndpoint(Base):
    """A receiver of signed event notifications (``POST`` of JSON) in another system."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    # The signing secret, encrypted; shown once, when created or rotated.
    secret_enc: Mapped[str] = mapped_column(Text)
    # Subscribed events as a JSON list ("survey.answered", ...; "*" for all).
    events: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why an endpoint was switched off (by an administrator, or the receiver said 410 Gone).
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
