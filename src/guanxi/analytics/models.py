"""The analytics' own tables: runs, their steps, and the results each step produced.

Every result row carries the id of the run that wrote it. A step's results become visible
when its step row is marked ``succeeded`` (readers take the newest succeeded step), so a
failed or interrupted run never shows half its rows, and older runs are purged only after
a newer one has succeeded. No table here has a foreign key into a domain table: results
describe customers and tickets but never hold up a merge or a deletion of them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class AnalyticsRun(Base):
    """One recomputation: when, up to which moment the data were read, by whom, and how it
    ended."""

    __tablename__ = "analytics_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The cut-off: every step sees the domain tables as of this moment.
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="running")
    trigger: Mapped[str] = mapped_column(String(12), default="cli")
    requested: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text)


class AnalyticsStep(Base):
    """One step of a run (``rfm``, ``clv``, ``churn`` ...) with the fingerprint of what it
    read, so the next run can skip it when nothing it depends on has changed."""

    __tablename__ = "analytics_step"
    __table_args__ = (
        UniqueConstraint("run_id", "step", name="uq_analytics_step_run_step"),
        Index("ix_analytics_step_step_status", "step", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="running")
    input_key: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # JSON: model quality (AUC, MAPE, accuracy ...) and fitted parameters.
    metrics: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str | None] = mapped_column(Text)


class AnalyticsSetting(Base):
    """One piece of analytics configuration as JSON (RFM bins and segment rules, class
    thresholds, CLV horizon), validated by its pydantic model."""

    __tablename__ = "analytics_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class CustomerClass(Base):
    """A customer's RFM scores, named segment, shipping-frequency class, value tier and
    relationship segment, with the figures they came from (step ``rfm``)."""

    __tablename__ = "analytics_customer_class"
    __table_args__ = (Index("ix_analytics_customer_class_customer", "customer_id", "run_id"),)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_shipment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    # Shipments and revenue within the RFM window (12 months by default).
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    r: Mapped[int] = mapped_column(Integer, default=0)
    f: Mapped[int] = mapped_column(Integer, default=0)
    m: Mapped[int] = mapped_column(Integer, default=0)
    segment: Mapped[str] = mapped_column(String(20))
    frequency_class: Mapped[str] = mapped_column(String(8))
    value_tier: Mapped[str] = mapped_column(String(8))
    relationship: Mapped[str] = mapped_column(String(10))


class CustomerClv(Base):
    """A customer's BG/NBD and Gamma-Gamma figures: P(alive), expected shipments and value
    over the configured horizon (step ``clv``)."""

    __tablename__ = "analytics_customer_clv"
    __table_args__ = (Index("ix_analytics_customer_clv_customer", "customer_id", "run_id"),)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    frequency: Mapped[float] = mapped_column(Float)
    recency: Mapped[float] = mapped_column(Float)
    age: Mapped[float] = mapped_column(Float)
    p_alive: Mapped[float] = mapped_column(Float)
    expected_purchases: Mapped[float] = mapped_column(Float)
    expected_spend_fen: Mapped[int] = mapped_column(BigInteger)
    clv_fen: Mapped[int] = mapped_column(BigInteger)


class CustomerChurn(Base):
    """A customer's churn risk with its top reasons and the suggested action (step
    ``churn``)."""

    __tablename__ = "analytics_customer_churn"
    __table_args__ = (
        Index("ix_analytics_customer_churn_customer", "customer_id", "run_id"),
        Index("ix_analytics_customer_churn_risk", "run_id", "risk"),
    )

    run_id: Mapped[int] = mapped_column(
        ForeignKey("analytics_run.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    risk: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(8))
    # JSON list of {"feature", "value", "effect"}: the largest contributions to the risk.
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    action: Mapped[str | None] = mapped_column(String(20))


class ForecastPoint(Base):
    """Expected shipments (and tickets) for one day, region and service type, with the
    prediction band (step ``forecast``)."""

    __tablename__ = "analytics_forecast"
    __table_args__ = (Index("ix_analytics_forecast_series", "run_id", "region", "service_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(String(30))
    service_type: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    expected: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    expected_tickets: Mapped[float] = mapped_column(Float, default=0.0)


class TrainedModel(Base):
    """A fitted model kept for use between runs (the complaint-text classifier that
    suggests a category and priority for new tickets)."""

    __tablename__ = "analytics_model"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_analytics_model_run_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[str] = mapped_column(Text, default="{}")


class TermWeek(Base):
    """A term's count and share in one week's complaints, and whether it is emerging
    (step ``text``)."""

    __tablename__ = "analytics_term_week"
    __table_args__ = (Index("ix_analytics_term_week_week", "run_id", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    week: Mapped[date] = mapped_column(Date)
    term: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)
    ratio: Mapped[float | None] = mapped_column(Float)
    emerging: Mapped[bool] = mapped_column(default=False)


class KpiValue(Base):
    """One KPI for one period and one slice (all, a region, a segment, a service type),
    with the numerator and denominator it was computed from (step ``kpi``)."""

    __tablename__ = "analytics_kpi"
    __table_args__ = (
        Index("ix_analytics_kpi_lookup", "run_id", "metric", "period", "dimension", "member"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    # day, week, month, quarter or year; period_start is its first day (local calendar).
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    # all, region, segment, service_type ...; member is the slice's value ('' for all).
    dimension: Mapped[str] = mapped_column(String(20))
    member: Mapped[str] = mapped_column(String(40), default="")
    metric: Mapped[str] = mapped_column(String(30))
    value: Mapped[float | None] = mapped_column(Float)
    numerator: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)


class Alert(Base):
    """An early warning (危机预警): a count of complaints, delays or damage in a slice
    clearly above its expected level, with the tickets behind it (step ``warning``)."""

    __tablename__ = "analytics_alert"
    __table_args__ = (
        UniqueConstraint("kind", "dimension", "member", "day", name="uq_analytics_alert_slice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_run.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # complaints, delays or damage; dimension region / category / origin ...
    kind: Mapped[str] = mapped_column(String(20))
    dimension: Mapped[str] = mapped_column(String(20))
    member: Mapped[str] = mapped_column(String(60))
    day: Mapped[date] = mapped_column(Date)
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    # JSON list of ticket ids (or shipment ids for delays / damage) behind the count.
    evidence: Mapped[str] = mapped_column(Text, default="[]")
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
