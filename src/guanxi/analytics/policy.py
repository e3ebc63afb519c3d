"""The analytics' rules an administrator may change: RFM window and bins, the named
segments, the frequency and value classes, the relationship segments, CLV's horizon.

Stored as JSON in ``analytics_setting`` and validated as a whole; the defaults are the
usual RFM grid and the manuals' three-way classes (高频/中频/低频, 高/中/低价值,
忠诚/潜在/风险).
"""

from __future__ import annotations

import json
from typing import Self

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.models import AnalyticsSetting

SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)
# Customers who never shipped: outside the RFM grid.
PROSPECT = "prospect"
RELATIONSHIPS = ("loyal", "potential", "at_risk")
CLASSES = ("high", "medium", "low")


class SegmentRule(BaseModel):
    """A named segment: the R score range and the FM score range (the rounded mean of the
    F and M scores) it covers. The first rule that matches names the customer."""

    name: str
    r: tuple[int, int]
    fm: tuple[int, int]


def _default_rules() -> list[SegmentRule]:
    return [
        SegmentRule(name="champions", r=(4, 5), fm=(4, 5)),
        SegmentRule(name="new", r=(5, 5), fm=(1, 1)),
        SegmentRule(name="potential_loyalist", r=(4, 5), fm=(1, 3)),
        SegmentRule(name="loyal", r=(3, 3), fm=(3, 5)),
        SegmentRule(name="cant_lose", r=(1, 2), fm=(5, 5)),
        SegmentRule(name="at_risk", r=(1, 2), fm=(3, 4)),
        SegmentRule(name="hibernating", r=(2, 3), fm=(1, 2)),
        SegmentRule(name="lost", r=(1, 1), fm=(1, 2)),
    ]


class RfmPolicy(BaseModel):
    """How R, F and M are scored: over which window, in how many quantile bins."""

    window_days: int = Field(default=365, ge=30, le=3 * 365)
    bins: int = Field(default=5, ge=3, le=10)
    rules: list[SegmentRule] = Field(default_factory=_default_rules)

    @model_validator(mode="after")
    def _covers_grid(self) -> Self:
        for rule in self.rules:
            if rule.name not in SEGMENTS:
                raise ValueError(f"rules: unknown segment {rule.name!r}")
            for lo, hi in (rule.r, rule.fm):
                if not 1 <= lo <= hi <= self.bins:
                    raise ValueError(f"rules.{rule.name}: scores run from 1 to {self.bins}")
        missing = [
            (r, fm)
            for r in range(1, self.bins + 1)
            for fm in range(1, self.bins + 1)
            if self.segment(r, fm) is None
        ]
        if missing:
            r, fm = missing[0]
            raise ValueError(f"rules: no segment for R {r}, FM {fm}")
        return self

    def segment(self, r: int, fm: int) -> str | None:
        """The first rule's name covering the scores."""
        for rule in self.rules:
            if rule.r[0] <= r <= rule.r[1] and rule.fm[0] <= fm <= rule.fm[1]:
                return rule.name
        return None


class ClassPolicy(BaseModel):
    """The three-way classes of the manuals.

    Frequency: shipments within the RFM window at or above ``frequency_high`` are high,
    at or above ``frequency_medium`` medium. Value: the top ``value_high_share`` of
    shipping customers by revenue are high value, the next ``value_medium_share`` medium.
    """

    frequency_high: int = Field(default=24, ge=1)
    frequency_medium: int = Field(default=6, ge=1)
    value_high_share: float = Field(default=0.2, gt=0, lt=1)
    value_medium_share: float = Field(default=0.3, gt=0, lt=1)
    loyal_segments: list[str] = Field(default_factory=lambda: ["champions", "loyal"])
    at_risk_segments: list[str] = Field(
        default_factory=lambda: ["at_risk", "cant_lose", "hibernating", "lost"]
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.frequency_medium > self.frequency_high:
            raise ValueError("frequency_medium: must not exceed frequency_high")
        if self.value_high_share + self.value_medium_share > 1:
            raise ValueError("value_medium_share: high and medium shares exceed 1")
        for name in (*self.loyal_segments, *self.at_risk_segments):
            if name not in SEGMENTS:
                raise ValueError(f"loyal_segments: unknown segment {name!r}")
        return self

    def relationship(self, segment: str) -> str:
        """忠诚 / 潜在 / 风险 for a named segment."""
        if segment in self.loyal_segments:
            return "loyal"
        if segment in self.at_risk_segments:
            return "at_risk"
        return "potential"


class ClvPolicy(BaseModel):
    """CLV's horizon, discount rate and the period its times are measured in."""

    horizon_months: int = Field(default=12, ge=1, le=60)
    monthly_discount: float = Field(default=0.01, ge=0, lt=1)
    period: str = Field(default="week", pattern="^(day|week|month)$")


class ForecastPolicy(BaseModel):
    """The volume forecast: how far ahead, how it is backtested, the prediction band, and
    over how many weeks the tickets-per-shipment rate for staffing is measured."""

    horizon_days: int = Field(default=30, ge=7, le=90)
    backtest_origins: int = Field(default=4, ge=1, le=12)
    backtest_step_days: int = Field(default=14, ge=1, le=91)
    band: float = Field(default=0.8, gt=0.5, lt=1)
    ticket_rate_weeks: int = Field(default=8, ge=1, le=52)
    # Tickets a series needs within those weeks for a rate of its own.
    min_tickets: int = Field(default=30, ge=1)
    seed: int = Field(default=0, ge=0)


class AnalyticsPolicy(BaseModel):
    """Every analytics rule, validated together."""

    rfm: RfmPolicy = Field(default_factory=RfmPolicy)
    classes: ClassPolicy = Field(default_factory=ClassPolicy)
    clv: ClvPolicy = Field(default_factory=ClvPolicy)
    forecast: ForecastPolicy = Field(default_factory=ForecastPolicy)


POLICY_KEY = "policy"


def load_policy(session: Session) -> AnalyticsPolicy:
    """The stored policy, or the defaults when none was saved."""
    raw = session.scalar(select(AnalyticsSetting.value).where(AnalyticsSetting.key == POLICY_KEY))
    if raw is None:
        return AnalyticsPolicy()
    return AnalyticsPolicy.model_validate(json.loads(raw))
