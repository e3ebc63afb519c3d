"""Read and write shapes of the analytics API."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guanxi.analytics.policy import CLASSES, PROSPECT, RELATIONSHIPS, SEGMENTS


class RunRequest(BaseModel):
    """Which steps to recompute (empty: all)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(default_factory=list, max_length=20)


class StepRead(BaseModel):
    """One step of a run."""

    model_config = ConfigDict(from_attributes=True)

    step: str
    status: str
    rows: int
    seconds: float
    metrics: dict[str, Any]
    error: str | None


class RunRead(BaseModel):
    """A recomputation and its steps."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime
    steps: list[StepRead] = Field(default_factory=list)


class ClassesRead(BaseModel):
    """RFM scores, named segment and the three-way classes, with the figures behind them."""

    model_config = ConfigDict(from_attributes=True)

    r: int
    f: int
    m: int
    segment: str
    relationship: str
    frequency_class: str
    value_tier: str
    recency_days: int | None
    frequency: int
    monetary_fen: int
    last_shipment_at: datetime | None


class ClvRead(BaseModel):
    """BG/NBD and Gamma-Gamma figures for one customer."""

    model_config = ConfigDict(from_attributes=True)

    p_alive: float
    expected_purchases: float
    expected_spend_fen: int
    clv_fen: int


class ChurnRead(BaseModel):
    """Churn risk with its reasons and the suggested action."""

    risk: float
    band: str
    action: str | None
    reasons: list[dict[str, Any]]


class PortraitRead(BaseModel):
    """A customer's portrait (客户画像)."""

    customer_id: int
    as_of: datetime | None
    classes: ClassesRead | None
    why: list[str]
    clv: ClvRead | None
    churn: ChurnRead | None
    service_types: list[tuple[str, int]]
    routes: list[tuple[str, str, int]]
    regions: list[tuple[str, int]]
    rhythm: list[tuple[date, int]]


class SegmentMemberRead(BaseModel):
    """A customer in a segment list."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    name: str
    segment: str
    relationship: str
    frequency_class: str
    value_tier: str
    r: int
    f: int
    m: int
    recency_days: int | None
    frequency: int
    monetary_fen: int


class SegmentPage(BaseModel):
    """A page of a segment list."""

    items: list[SegmentMemberRead]
    next_cursor: str | None


class AlertRead(BaseModel):
    """An early-warning alert."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    dimension: str
    member: str
    day: date
    observed: float
    expected: float
    created_at: datetime
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    evidence: list[int]

    @field_validator("evidence", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


SEGMENT_CHOICES = (*SEGMENTS, PROSPECT)
RELATIONSHIP_CHOICES = RELATIONSHIPS
CLASS_CHOICES = CLASSES


class AtRiskRead(BaseModel):
    """A customer on the at-risk list, with why and the suggested action."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    name: str
    owner_id: int | None
    risk: float
    band: str
    reasons: list[dict[str, Any]]
    action: str | None
