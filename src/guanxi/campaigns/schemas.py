"""Pydantic shapes of audiences and campaigns (in and out)."""

from __future__ import annotations

# ---------------------------------------------------------------------------- audiences
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from guanxi.care.schemas import Code, Label
from guanxi.core.ids import BodyId
from guanxi.customers.consent import Purpose
from guanxi.customers.enums import CustomerKind, LifecycleStage, SourceChannel

Band = Literal["high", "medium", "low"]
Days = Annotated[int, Field(ge=1, le=3650)]
Fen = Annotated[int, Field(ge=0, le=10**13)]
Points = Annotated[int, Field(ge=0, le=10**12)]


class AudienceDefinition(BaseModel):
    """Who belongs to an audience: every filter that is set must hold (AND); an empty
    list or None does not filter. Within one list any value matches (OR).

    Analytics filters (segments, relationship classes, value tiers, frequency classes,
    CLV, churn bands) read the newest successful run of their step; before the first run
    they match nobody. Regions are the customers' region as stored (e.g. 浙江省).
    """

    model_config = ConfigDict(extra="forbid")

    # Profile.
    kinds: list[CustomerKind] = Field(default_factory=list, max_length=3)
    sources: list[SourceChannel] = Field(default_factory=list, max_length=20)
    industries: list[Label] = Field(default_factory=list, max_length=50)
    lifecycle_stages: list[LifecycleStage] = Field(default_factory=list, max_length=5)
    # zh_CN / en as recorded; a customer without one is written to in the site's default.
    languages: list[Literal["zh_CN", "en"]] = Field(default_factory=list, max_length=2)
    regions: list[Label] = Field(default_factory=list, max_length=50)
    # Tags: at least one of ``tags_any``; none of ``tags_none``.
    tags_any: list[Label] = Field(default_factory=list, max_length=50)
    tags_none: list[Label] = Field(default_factory=list, max_length=50)
    # Analytics (newest run): RFM segment, relationship class, value tier, frequency class.
    segments: list[Code] = Field(default_factory=list, max_length=20)
    relationships: list[Literal["loyal", "potential", "at_risk"]] = Field(
        default_factory=list, max_length=3
    )
    value_tiers: list[Band] = Field(default_factory=list, max_length=3)
    frequency_classes: list[Band] = Field(default_factory=list, max_length=3)
    # Customer lifetime value (fen), bounds included.
    clv_min_fen: Fen | None = None
    clv_max_fen: Fen | None = None
    churn_bands: list[Band] = Field(default_factory=list, max_length=3)
    # Last shipment: at least one in the last N days / shipped before but none in the
    # last N days (customers who never shipped are the segment "prospect").
    shipped_within_days: Days | None = None
    no_shipment_for_days: Days | None = None
    # Loyalty: points balance range (bounds included) and tier codes.
    points_min: Points | None = None
    points_max: Points | None = None
    tiers: list[Code] = Field(default_factory=list, max_length=20)
    # May be contacted for every one of these purposes (customers.consent).
    consents: list[Purpose] = Field(default_factory=list, max_length=5)
    # Owner: customers without an owner (the pool), and / or owned by these users.
    unowned: bool = False
    owner_ids: list[BodyId] = Field(default_factory=list, max_length=100)

    def is_everyone(self) -> bool:
        """Whether no filter is set (every active customer)."""
        return self == AudienceDefinition()


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AudienceIn(BaseModel):
    """A saved audience as its author writes it (new, or the whole audience when edited;
    an edit may name the ``version`` it read, and is refused if someone saved since)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""
    definition: AudienceDefinition = Field(default_factory=AudienceDefinition)
    version: BodyId | None = None


class AudienceRead(BaseModel):
    """A saved audience."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    definition: AudienceDefinition
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    version: int

    @field_validator("definition", mode="before")
    @classmethod
    def _definition(cls, value: object) -> object:
        return AudienceDefinition.model_validate_json(value) if isinstance(value, str) else value


class AudienceCount(BaseModel):
    """How many active customers an audience holds right now."""

    count: int


class AudienceMember(BaseModel):
    """One customer of an audience's sample, masked (name and mobile)."""

    id: int
    name: str
    kind: str
    region: str | None
    phone: str | None


# ---------------------------------------------------------------------------- campaigns


class CampaignChannel(StrEnum):
    """How a campaign reaches its treated recipients."""

    sms = "sms"
    email = "email"


class CampaignStatus(StrEnum):
    """Where a campaign is in its life (see :class:`guanxi.campaigns.models.Campaign`)."""

    draft = "draft"
    scheduled = "scheduled"
    launching = "launching"
    launched = "launched"
    stopped = "stopped"


CONTROL = "control"
Subject = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
TemplateCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w.-]+$")
]


class VariantIn(BaseModel):
    """One version of the message; the treated are split between variants by weight."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z]$")] = "A"
    weight: Annotated[int, Field(ge=1, le=100)] = 1
    sms_template: TemplateCode | None = None
    subject_zh: Subject = ""
    body_zh: Body = ""
    subject_en: Subject = ""
    body_en: Body = ""


class CampaignIn(BaseModel):
    """A campaign as a marketer writes it (new, or the whole campaign when edited)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    goal: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""
    audience_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    channel: CampaignChannel = CampaignChannel.sms
    target_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    coupon_template: TemplateCode | None = None
    # When it goes out (UTC-aware); None: launched by hand.
    send_at: datetime | None = None
    budget_fen: Fen = 0
    control_pct: Annotated[int, Field(ge=0, le=50)] = 10
    rate_per_hour: Annotated[int, Field(ge=60, le=10_000_000)] | None = None
    attribution_days: Annotated[int, Field(ge=1, le=90)] = 14
    variants: Annotated[list[VariantIn], Field(min_length=1, max_length=5)] = Field(
        default_factory=lambda: [VariantIn()]
    )

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A send time names its timezone (stored as UTC)."""
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError("campaign_send_at_naive", "Give the time with its timezone")
        return value


class CampaignUpdate(CampaignIn):
    """An edit names the version it read (a concurrent edit is refused, not overwritten)."""

    version: Annotated[int, Field(ge=1)]


class CostIn(BaseModel):
    """A cost line of a campaign."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    amount_fen: Annotated[int, Field(ge=1, le=10**12)]


class VariantRead(BaseModel):
    """A variant of a campaign."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    weight: int
    sms_template: str | None
    subject_zh: str
    body_zh: str
    subject_en: str
    body_en: str


class CostRead(BaseModel):
    """A cost line."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    label: str
    amount_fen: int
    created_at: datetime


class CampaignRead(BaseModel):
    """A campaign with its variants, cost lines and launch figures."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    goal: str
    audience_id: int
    channel: str
    target_url: str
    coupon_template: str | None
    send_at: datetime | None
    budget_fen: int
    control_pct: int
    seed: int
    rate_per_hour: int | None
    attribution_days: int
    status: str
    recipients: int
    capped: int
    queued: int
    launched_at: datetime | None
    finished_at: datetime | None
    stopped_at: datetime | None
    created_at: datetime
    version: int
    variants: list[VariantRead]
    costs: list[CostRead]


class GroupFigures(BaseModel):
    """The funnel of one group (a variant, all treated, or the control group)."""

    group: str
    recipients: int
    sent: int
    delivered: int
    clicked: int
    converted: int
    revenue_fen: int


class Interval(BaseModel):
    """An estimate with its confidence interval (``level``, e.g. 0.95)."""

    estimate: float
    low: float
    high: float
    level: float


class Satisfaction(BaseModel):
    """Mean CSAT of the treated recipients' survey answers in a window, and how many."""

    responses: int
    mean_csat: float | None


class CampaignReport(BaseModel):
    """What a campaign achieved: the funnel per group, ROI with its interval, the uplift
    of the conversion rate, and satisfaction before and after."""

    campaign_id: int
    status: str
    groups: list[GroupFigures]
    cost_fen: int
    # Incremental revenue in fen: (treated − control per capita) × treated recipients.
    incremental_revenue_fen: Interval | None
    # Incremental revenue minus cost, in fen.
    net_fen: Interval | None
    # Net over cost (None without costs).
    roi: Interval | None
    # Conversion rate of the treated minus the control group's (a share, 0.05 = 5 points).
    conversion_uplift: Interval | None
    satisfaction_before: Satisfaction
    satisfaction_after: Satisfaction


class CampaignPolicyRead(BaseModel):
    """The campaigns' frequency cap."""

    cap_count: int
    cap_days: int
