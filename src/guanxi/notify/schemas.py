"""JSON shapes of the outbound channels: the outbox (administrators' view), SMS templates,
quiet hours, webhook endpoints and the providers' callbacks."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.notify.outbox import Category, Channel, Delivery, OutboxStatus


class OutboxRead(BaseModel):
    """A queued message; the address is masked (or ``#<customer id>`` when it is resolved
    from the customer at send time), ``last_error`` never contains one."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    key: str
    channel: Channel
    category: Category
    customer_id: int | None
    to: str
    template: str | None
    subject: str
    source: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_id: str | None
    delivery: Delivery
    delivered_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


class OutboxPage(BaseModel):
    """One page of the outbox, newest first; ``next_before`` fetches the next page."""

    items: list[OutboxRead]
    next_before: int | None


class OutboxCounts(BaseModel):
    """Messages per channel and status."""

    counts: dict[str, dict[str, int]]


TemplateCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
ProviderId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]


class SmsTemplateRead(BaseModel):
    """An SMS template: our code, the providers' template ids, the texts."""

    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    category: Category
    sign: str
    aliyun_template: str | None
    tencent_template: str | None
    text_zh: str
    text_en: str
    param_order: list[str]
    active: bool
    builtin: bool
    stored: bool


class SmsTemplateUpdate(BaseModel):
    """A template's new values (``PUT /api/v1/notify/sms-templates/{code}``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    category: Category
    sign: Annotated[str, StringConstraints(max_length=30)] = ""
    aliyun_template: ProviderId | None = None
    tencent_template: ProviderId | None = None
    text_zh: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    text_en: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    param_order: Annotated[
        list[Annotated[str, StringConstraints(max_length=40)]], Field(max_length=20)
    ] = []
    active: bool = True


class QuietHoursRead(BaseModel):
    """The quiet hours in force (local time of ``timezone``); start == end: none."""

    start: time
    end: time
    timezone: str


EventName = Annotated[str, StringConstraints(max_length=60)]


class WebhookCreate(BaseModel):
    """A new webhook endpoint."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    events: Annotated[list[EventName], Field(min_length=1, max_length=20)]


class WebhookRead(BaseModel):
    """An endpoint; ``secret`` is present only in the answer that created or rotated it."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = None


class CallbackAck(BaseModel):
    """What a provider's callback gets back (both providers read these shapes)."""

    model_config = ConfigDict(extra="allow")


class ReportOutcome(BaseModel):
    """How many reports of a callback matched an outbox message."""

    matched: int
    unmatched: int


Provider = Literal["aliyun", "tencent"]
