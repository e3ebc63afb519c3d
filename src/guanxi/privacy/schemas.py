"""JSON shapes of data-subject requests: the request in and out, its actions, the page of
requests and the request policy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import MAX_ID, BodyId
from guanxi.customers.schemas import CustomerUpdate
from guanxi.privacy.enums import RequestChannel, RequestKind, RequestStatus, Verification

Details = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Version = Annotated[int, Field(ge=1, le=MAX_ID)]


class RequestCreate(BaseModel):
    """A request registered for a customer: what is asked, how it reached us and how the
    requester's identity was verified. ``details`` must not repeat identifiers (they are
    in the customer record)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: BodyId
    kind: RequestKind
    channel: RequestChannel
    verification: Verification
    details: Details | None = None


class RequestReject(BaseModel):
    """A rejection and its reason (told to the requester; PIPL art. 50)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    version: Version


class RequestComplete(BaseModel):
    """The request is answered; ``note``: what was done. A deletion request is carried out
    (the customer anonymised) when it is completed."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None
    version: Version


class RequestStart(BaseModel):
    """The privacy officer takes the request on."""

    model_config = ConfigDict(extra="forbid")

    version: Version


class RequestCorrection(BaseModel):
    """A correction request's changes to the customer record, applied through the
    customers service (its validation and audit); the request keeps the field names."""

    model_config = ConfigDict(extra="forbid")

    changes: CustomerUpdate
    version: Version


class RequestRead(BaseModel):
    """A request as the privacy officer sees it (no identifiers)."""

    id: int
    customer_id: int
    customer_name: str
    kind: RequestKind
    status: RequestStatus
    channel: RequestChannel
    verification: Verification
    details: str | None
    received_at: datetime
    due_on: date
    overdue: bool
    working_days_left: int
    resolution: str | None
    corrected_fields: list[str]
    exported_at: datetime | None
    created_by: int | None
    handled_by: int | None
    closed_at: datetime | None
    version: int


class RequestPage(BaseModel):
    """One page of requests and how many match the filters."""

    items: list[RequestRead]
    total: int


class RequestPolicy(BaseModel):
    """How long requests may take: working days to answer (15 by default, GB/T
    35273-2020 §8.7) and how many working days before the due date the privacy officers
    are warned."""

    model_config = ConfigDict(extra="forbid")

    due_working_days: Annotated[int, Field(ge=1, le=60)] = 15
    warn_working_days: Annotated[int, Field(ge=0, le=30)] = 3
