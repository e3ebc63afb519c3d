"""Tables of marketing campaigns: saved audiences, campaigns with their variants, cost
lines and recipients (the audience's snapshot at send time, each in a variant or the
control group), tracked links and their clicks, and attributed conversions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime

# ---------------------------------------------------------------------------- audiences


class Audience(Base):
    """A saved audience (目标客群): a named set of filters over customers, evaluated when
    counted or when a campaign snapshots its members, so it follows the data.

    ``definition`` is the JSON of ``campaigns.schemas.AudienceDefinition``. Archived
    audiences are kept (campaigns name them) but no longer offered for new campaigns.
    """

    __tablename__ = "campaign_audience"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[str] = mapped_column(Text, default="{}")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic concurrency: an edit may name the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)


# ---------------------------------------------------------------------------- campaigns


class Campaign(Base):
    """A marketing campaign (营销活动): its goal, the audience it goes to, the channel and
    offer, when it goes out, its budget, the share kept back as a control group and the
    throttle of its sending.

    Life: ``draft`` -> ``scheduled`` (a send time) -> ``launching`` (members snapshot into
    recipients, messages queued chunk by chunk) -> ``launched``; ``stopped`` from any of
    them (pending messages cancelled). ``seed`` makes the control / variant split of the
    snapshot reproducible. Outbox rows carry the source ``campaign:<id>``.
    """

    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_send_at", "status", "send_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    goal: Mapped[str] = mapped_column(Text, default="")
    audience_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_audience.id", ondelete="RESTRICT"), index=True
    )
    # sms | email
    channel: Mapped[str] = mapped_column(String(10))
    # Where a tracked link (/c/<code>) sends the customer.
    target_url: Mapped[str] = mapped_column(String(500), default="")
    # A loyalty coupon template issued to each treated recipient at launch.
    coupon_template: Mapped[str | None] = mapped_column(String(40))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    budget_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Percentage of the audience held back (no message) to measure the campaign against.
    control_pct: Mapped[int] = mapped_column(Integer, default=10)
    seed: Mapped[int] = mapped_column(BigInteger)
    # Messages queued per hour at most (None: as fast as notify sends).
    rate_per_hour: Mapped[int | None] = mapped_column(Integer)
    # Shipments within this many days of the send count as conversions.
    attribution_days: Mapped[int] = mapped_column(Integer, default=14)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    # Figures of the launch: recipients snapshot, held back by the frequency cap, queued.
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    capped: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conversions_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # Optimistic concurrency: an edit names the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)

    variants: Mapped[list[CampaignVariant]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="CampaignVariant.code",
    )
    costs: Mapped[list[CampaignCost]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="CampaignCost.id",
    )

    @property
    def source(self) -> str:
        """The outbox source of this campaign's messages (reports and caps)."""
        return f"campaign:{self.id}"


class CampaignVariant(Base):
    """One version of the message (A, B, ...): the treated recipients are split between
    the variants by ``weight``. The texts use ``{name}``, ``{company}``, ``{link}``,
    ``{coupon_name}`` and ``{coupon_code}``; an SMS names the gateway template."""

    __tablename__ = "campaign_variant"
    __table_args__ = (UniqueConstraint("campaign_id", "code", name="uq_campaign_variant_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(4))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    sms_template: Mapped[str | None] = mapped_column(String(40))
    subject_zh: Mapped[str] = mapped_column(String(200), default="")
    body_zh: Mapped[str] = mapped_column(Text)
    subject_en: Mapped[str] = mapped_column(String(200), default="")
    body_en: Mapped[str] = mapped_column(Text, default="")

    campaign: Mapped[Campaign] = relationship(back_populates="variants")


class CampaignCost(Base):
    """A cost line of a campaign (SMS fees, coupon face value, design ...), integer fen."""

    __tablename__ = "campaign_cost"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    campaign: Mapped[Campaign] = relationship(back_populates="costs")


class CampaignRecipient(Base):
    """A member of the audience at launch: in the control group (``variant`` is
    ``control``: no message) or treated with a variant. A treated recipient has a tracked
    link ``code`` (unguessable, unique); clicks and attributed conversions (shipments within
    the attribution window after the send, their fees as revenue) are kept here."""

    __tablename__ = "campaign_recipient"

    # The key is the campaign and customer (one index to maintain: a launch writes half a
    # million rows); the code has the other, for the tracked link.
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    # A variant code, or "control".
    variant: Mapped[str] = mapped_column(String(8))
    code: Mapped[str | None] = mapped_column(String(24), unique=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conversions: Mapped[int] = mapped_column(Integer, default=0)
    revenue_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class CampaignSetting(Base):
    """The campaign policy as JSON (the campaigns' own frequency cap), validated by
    :class:`guanxi.campaigns.policy.CampaignPolicy`."""

    __tablename__ = "campaign_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
