"""JSON shapes of tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.customers.schemas import Email
from guanxi.tickets.enums import ClaimReason, Severity, TicketAction, TicketChannel, TicketType

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TicketCreate(BaseModel):
    """A new ticket as an agent (or the API) records it."""

    model_config = ConfigDict(extra="forbid")

    type: TicketType
    channel: TicketChannel
    customer_id: BodyId | None = None
    waybill_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-]{6,40}$")] | None = None
    category: Annotated[str, StringConstraints(max_length=50)] | None = None
    severity: Severity = Severity.minor
    subject: Text200
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    # Province the case is about, for routing; taken from the waybill's destination when
    # not given.
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=12)] | None = None
    tags: list[
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    ] = Field(default_factory=list, max_length=10)
    # Money at stake (fen) and whether the media are involved: either makes it major.
    amount_fen: Annotated[int, Field(ge=0)] | None = None
    media: bool = False
    # Where the customer wants the answer for this case (kept encrypted).
    contact_email: Email | None = None


class TicketActionIn(BaseModel):
    """A step of the workflow, with the reply or note that goes with it."""

    model_config = ConfigDict(extra="forbid")

    action: TicketAction
    note: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    # True: a reply the customer sees; False: an internal note.
    reply: bool = False
    version: BodyId
    # On resolve: what was done (e.g. refund, redelivery) and why it happened.
    resolution_code: Annotated[str, StringConstraints(max_length=30)] | None = None
    root_cause: Annotated[str, StringConstraints(max_length=50)] | None = None


class SatisfactionIn(BaseModel):
    """The customer's answer to "are you satisfied with how we handled it?" (1-10, the
    survey's CSAT scale)."""

    model_config = ConfigDict(extra="forbid")

    score: Annotated[int, Field(ge=1, le=10)]
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None


class HandOverIn(BaseModel):
    """A formal hand-over (首问负责制): to whom, and why."""

    model_config = ConfigDict(extra="forbid")

    to_user_id: BodyId
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class SlaRead(BaseModel):
    """One service-level target of a ticket: when it falls due and whether it was met."""

    target: str
    hours: float
    business_hours: bool
    due_at: datetime | None
    met_at: datetime | None
    breached: bool
    paused: bool


class TicketEventRead(BaseModel):
    """One step on the ticket's timeline."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_id: int | None
    action: str
    from_status: str | None
    to_status: str
    to_user_id: int | None
    note: str | None
    internal: bool


class TicketRead(BaseModel):
    """A ticket with its service levels and timeline."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    channel: str
    customer_id: int | None
    waybill_no: str | None
    category: str | None
    region: str | None
    tags: str | None
    team_id: int | None
    severity: str
    priority: str
    subject: str
    description: str | None
    status: str
    owner_id: int | None
    first_owner_id: int | None
    # The nearest unmet due time (None while paused or done).
    sla_due_at: datetime | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    is_repeat: bool
    is_major: bool
    resolution_code: str | None
    root_cause: str | None
    satisfaction: int | None
    version: int
    sla: list[SlaRead] = []
    events: list[TicketEventRead] = []


class ClaimCreate(BaseModel):
    """A compensation claim for one waybill."""

    model_config = ConfigDict(extra="forbid")

    waybill_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-]{6,40}$")]
    reason: ClaimReason
    requested_fen: Annotated[int, Field(gt=0, le=10**12)]
    ticket_id: BodyId | None = None
    evidence: Annotated[str, StringConstraints(max_length=5000)] | None = None


class ClaimDecision(BaseModel):
    """Approve (the standard amount or less) or reject."""

    model_config = ConfigDict(extra="forbid")

    approve: bool
    amount_fen: Annotated[int, Field(gt=0, le=10**12)] | None = None
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ClaimPayout(BaseModel):
    """The payout of an approved claim."""

    model_config = ConfigDict(extra="forbid")

    payout_ref: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60)
    ]


class ClaimRead(BaseModel):
    """A claim with the standard it was judged by."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int | None
    shipment_id: int
    customer_id: int
    reason: str
    insured: bool
    declared_value_fen: int
    fee_fen: int
    requested_fen: int
    standard_fen: int
    approved_fen: int | None
    status: str
    decision_note: str | None
    payout_ref: str | None
    created_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    paid_at: datetime | None


# --------------------------------------------------------------------------- desk settings

Code50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Name100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
List200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class CategoryIn(BaseModel):
    """A new node of the category tree."""

    model_config = ConfigDict(extra="forbid")

    code: Code50
    parent_code: Code50 | None = None
    name_zh: Name100
    name_en: Name100
    skill: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0


class CategoryPatch(BaseModel):
    """Changes to a node (absent fields stay)."""

    model_config = ConfigDict(extra="forbid")

    name_zh: Name100 | None = None
    name_en: Name100 | None = None
    skill: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    active: bool | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None


class CategoryRead(BaseModel):
    """A node of the tree with its depth."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    parent_id: int | None
    name_zh: str
    name_en: str
    skill: str | None
    active: bool
    depth: int


class TeamIn(BaseModel):
    """A service team and its working hours."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    name: Name100
    work_hours: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = (
        "09:00-12:00,13:00-18:00"
    )
    active: bool = True


class TeamRead(BaseModel):
    """A team."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    work_hours: str
    active: bool


class MemberIn(BaseModel):
    """An agent's place in a team: skills and regions (comma lists; empty: any)."""

    model_config = ConfigDict(extra="forbid")

    skills: List200 | None = None
    regions: List200 | None = None
    is_lead: bool = False
    accepting: bool = True


class MemberRead(BaseModel):
    """A team member."""

    model_config = ConfigDict(from_attributes=True)

    team_id: int
    user_id: int
    skills: str | None
    regions: str | None
    is_lead: bool
    accepting: bool


class RuleIn(BaseModel):
    """A routing rule: conditions (absent: any) and where matching tickets go."""

    model_config = ConfigDict(extra="forbid")

    name: Name100
    team_id: BodyId
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    ticket_type: TicketType | None = None
    category: Code50 | None = None
    channel: TicketChannel | None = None
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=12)] | None = None
    skill: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    strategy: Literal["least_loaded", "round_robin", "queue"] = "least_loaded"
    active: bool = True


class RuleRead(BaseModel):
    """A routing rule."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    name: str
    ticket_type: str | None
    category: str | None
    channel: str | None
    region: str | None
    team_id: int
    skill: str | None
    strategy: str
    active: bool
