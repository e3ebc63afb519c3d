"""JSON shapes of customer-care automation: rules, their audience, previews and runs."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from guanxi.care.enums import CareChannel, RuleKind
from guanxi.customers.enums import CustomerKind

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w.-]+$")
]


def local_minutes(value: time) -> time:
    """A send time as a local time of day to the minute; a time with a timezone is refused
    (send times are the site's local time)."""
    if value.tzinfo is not None:
        raise PydanticCustomError("care_send_time", "Give a local time like 10:00")
    return time(value.hour, value.minute)


class Audience(BaseModel):
    """Who a rule may reach, besides its occasion: every non-empty list must match (empty
    lists do not filter). Regions are the customers' region as stored (e.g. 浙江省)."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[CustomerKind] = Field(default_factory=list, max_length=3)
    regions: list[Label] = Field(default_factory=list, max_length=50)
    tags: list[Label] = Field(default_factory=list, max_length=50)
    # Loyalty tier codes (loyalty.service.tier_of_customers).
    tiers: list[Code] = Field(default_factory=list, max_length=20)
    # Analytics: RFM segment names and value tiers of the newest run.
    segments: list[Code] = Field(default_factory=list, max_length=20)
    value_tiers: list[Literal["high", "medium", "low"]] = Field(default_factory=list, max_length=3)

    def is_everyone(self) -> bool:
        """Whether no filter is set."""
        return not any(
            (self.kinds, self.regions, self.tags, self.tiers, self.segments, self.value_tiers)
        )


Subject = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class CareRuleIn(BaseModel):
    """A care rule as an administrator writes it (new, or the whole rule when edited)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    kind: RuleKind
    channel: CareChannel = CareChannel.sms_or_email
    festivals: list[Code] = Field(default_factory=list, max_length=20)
    subject_zh: Subject = ""
    body_zh: Body = ""
    subject_en: Subject = ""
    body_en: Body = ""
    sms_template: Code | None = None
    # Local time of day; None: the policy's default send time.
    send_time: time | None = None
    # Days before the occasion (thanks: days after the complaint closed).
    lead_days: Annotated[int, Field(ge=0, le=30)] = 0
    audience: Audience = Field(default_factory=Audience)
    coupon_template: Code | None = None
    winback_days: Annotated[int, Field(ge=7, le=365)] = 90
    priority: Annotated[int, Field(ge=0, le=100)] = 50

    @field_validator("send_time")
    @classmethod
    def _minutes(cls, value: time | None) -> time | None:
        """Send times are local times of day, to the minute."""
        return None if value is None else local_minutes(value)


class CareRuleUpdate(CareRuleIn):
    """An edit names the version it read (a concurrent edit is refused, not overwritten)."""

    version: Annotated[int, Field(ge=1)]


class CareRuleRead(BaseModel):
    """A care rule."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    enabled: bool
    channel: str
    festivals: list[str]
    subject_zh: str
    body_zh: str
    subject_en: str
    body_en: str
    sms_template: str | None
    send_time: time | None
    lead_days: int
    audience: Audience
    coupon_template: str | None
    winback_days: int
    priority: int
    version: int
    created_at: datetime
    updated_at: datetime

    @field_validator("festivals", mode="before")
    @classmethod
    def _festivals(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("audience", mode="before")
    @classmethod
    def _audience(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value


class RecipientRead(BaseModel):
    """One customer a preview says would be greeted, masked, with the exact message."""

    customer_id: int
    name: str
    address: str
    channel: str
    language: str
    subject: str
    body: str


class PreviewRead(BaseModel):
    """Who a rule would reach on a day and who it would leave out, and why."""

    rule_id: int
    day: date
    occasion: date
    occasion_label: str
    reached: int
    eligible: int
    outside_audience: int
    no_consent: int
    no_contact: int
    capped: int
    already_ran: bool
    sample: list[RecipientRead]


class CareRunRead(BaseModel):
    """One rule's run of one day."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int
    run_date: date
    occasion_date: date
    status: str
    eligible: int
    queued: int
    capped: int
    no_consent: int
    no_contact: int
    outside_audience: int
    started_at: datetime
    finished_at: datetime | None
    seconds: float


class FestivalRead(BaseModel):
    """A festival on a date of the calendar."""

    day: date
    code: str
    name_zh: str
    name_en: str
    lunar: bool


class DayRunRead(BaseModel):
    """What one daily run did, rule by rule (a dry run writes nothing)."""

    day: date
    dry_run: bool
    rules: list[CareRunRead]
    skipped: list[int]
