"""Tables of customer-care automation: the rules, their daily runs, and the care policy."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class CareRule(Base):
    """A care rule (关怀规则): which occasion, whom (audience), what (zh / en templates),
    how (channel, SMS template code), when (send time, days ahead), and whether it is on.

    Templates are Jinja2 text rendered in a sandbox with the rule kind's declared variables;
    they are validated when the rule is saved. ``audience`` and ``festivals`` are JSON.
    """

    __tablename__ = "care_rule"
    __table_args__ = (Index("ix_care_rule_enabled_kind", "enabled", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(16))
    # JSON list of festival codes (care/calendar.py) for festival greetings, else "[]".
    festivals: Mapped[str] = mapped_column(Text, default="[]")
    subject_zh: Mapped[str] = mapped_column(String(200), default="")
    body_zh: Mapped[str] = mapped_column(Text)
    subject_en: Mapped[str] = mapped_column(String(200), default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    # The gateway template of the SMS (care_greeting, care_birthday, care_winback, care_thanks).
    sms_template: Mapped[str | None] = mapped_column(String(40))
    # Local time of day the messages go out; None: the care policy's default send time.
    send_time: Mapped[time | None] = mapped_column(Time)
    # Occasions: send this many days before the day; thanks: this many days after closing.
    lead_days: Mapped[int] = mapped_column(Integer, default=0)
    # JSON of guanxi.care.schemas.Audience (customer kinds, regions, tags, tiers, segments).
    audience: Mapped[str] = mapped_column(Text, default="{}")
    # A loyalty coupon template issued with the message (birthday, anniversary, win-back).
    coupon_template: Mapped[str | None] = mapped_column(String(40))
    # Win-back: a customer gets this rule's message at most once in this many days.
    winback_days: Mapped[int] = mapped_column(Integer, default=90)
    # Rules of one day run highest priority first: they take the frequency cap first.
    priority: Mapped[int] = mapped_column(Integer, default=50)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # Optimistic concurrency: an edit names the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)


class CareRun(Base):
    """One rule's run of one day: who was eligible and what became of them.

    The row is the run's claim (unique per rule and day): a second worker, or the same job
    again, finds it and does nothing. Thanks after a complaint add to the row of the day
    the complaint closed, one customer at a time.
    """

    __tablename__ = "care_run"
    __table_args__ = (
        UniqueConstraint("rule_id", "run_date", name="uq_care_run_rule_day"),
        Index("ix_care_run_run_date", "run_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("care_rule.id", ondelete="CASCADE"))
    # The local day the run belongs to, and the occasion it greeted (run day + lead days).
    run_date: Mapped[date] = mapped_column(Date)
    occasion_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="running")
    # Customers with the occasion inside the audience, and what became of them.
    eligible: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    capped: Mapped[int] = mapped_column(Integer, default=0)
    no_consent: Mapped[int] = mapped_column(Integer, default=0)
    no_contact: Mapped[int] = mapped_column(Integer, default=0)
    # Customers with the occasion whom the audience filters left out.
    outside_audience: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class CareSetting(Base):
    """The care policy as JSON (frequency cap, default send time, company name), validated
    by :class:`guanxi.care.policy.CarePolicy`."""

    __tablename__ = "care_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
