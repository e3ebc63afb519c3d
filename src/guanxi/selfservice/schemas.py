"""Shapes of the self-service page: what a customer types and what they may see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from guanxi.customers.schemas import Email

WaybillIn = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=6,
        max_length=40,
        pattern=r"^[A-Za-z0-9\-]+$",
    ),
]
Last4 = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{4}$")]


class TrackIn(BaseModel):
    """A lookup: the waybill number and the last four digits of the sender's or the
    receiver's phone."""

    model_config = ConfigDict(extra="forbid")

    waybill_no: WaybillIn
    phone_last4: Last4


class TrackEventRead(BaseModel):
    """One step of the public timeline: when, what, where (staff notes are not shown)."""

    occurred_at: datetime
    status: str
    location: str | None


class TrackRead(BaseModel):
    """A shipment as its public tracking shows it: names masked, the receiver's phone as its
    last four digits, places as province and city only, no fees or values."""

    waybill_no: str
    status: str
    service_type: str | None
    origin: str | None
    destination: str | None
    sender: str | None
    receiver: str | None
    receiver_phone: str | None
    created_at: datetime
    promised_at: datetime | None
    delivered_at: datetime | None
    events: list[TrackEventRead]


class PublicTicketType(StrEnum):
    """What a customer may file themselves (claims go through an agent)."""

    complaint = "complaint"
    service_request = "service_request"
    inquiry = "inquiry"


Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=5, max_length=5000)
]


class PublicTicketCreate(BaseModel):
    """The filing form: what kind of case, its category, what happened, and an optional
    address to receive the private link."""

    model_config = ConfigDict(extra="forbid")

    type: PublicTicketType
    category: Annotated[str, StringConstraints(max_length=50)] | None = None
    description: Description
    email: Email | None = None


MessageText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]


class PublicReply(BaseModel):
    """A message on the private page: the customer's own or a reply from customer service."""

    occurred_at: datetime
    from_customer: bool
    text: str


class PublicTicketRead(BaseModel):
    """A ticket as its customer sees it through the private link (no internal notes, no
    staff names, the waybill masked)."""

    id: int
    type: str
    status: str
    waybill: str | None
    created_at: datetime
    description: str | None
    replies: list[PublicReply]
    satisfaction: int | None
    may_rate: bool
    may_message: bool
