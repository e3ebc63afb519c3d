"""JSON shapes of sales: opportunities and their stage moves, teams, lost reasons, the web
form's lead and the forecast."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.customers.schemas import Email, Phone, ShortText
from guanxi.sales.enums import LeadSource, Stage

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Step = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w-]+$")
]
# Up to 10 000 000 000 fen (100 million yuan): beyond that a figure is a typing error.
Fen = Annotated[int, Field(ge=0, le=10_000_000_000)]
Percent = Annotated[int, Field(ge=0, le=100)]


class OpportunityFields(BaseModel):
    """What the owner edits on an opportunity."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    expected_revenue: Fen = 0
    # None: the stage's default chance of winning.
    probability: Percent | None = None
    expected_close: date | None = None
    next_step: Step | None = None
    next_step_due: date | None = None
    notes: Notes | None = None


class OpportunityCreate(OpportunityFields):
    """A new opportunity entered by hand (a lead, or straight into a later open stage)."""

    customer_id: BodyId | None = None
    stage: Stage = Stage.lead
    # None: the person entering it (a manager may give it to a member or leave it unowned).
    owner_id: BodyId | None = None
    unowned: bool = False
    source: LeadSource = LeadSource.manual
    campaign_id: BodyId | None = None


class OpportunityUpdate(OpportunityFields):
    """A change of the editable fields, naming the version read."""

    version: Annotated[int, Field(ge=1)]


class StageMove(BaseModel):
    """Move to another stage (the board's drag, the card's select): name the version read;
    lost needs a reason from the list."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    version: Annotated[int, Field(ge=1)]
    lost_reason: Code | None = None
    note: Reason | None = None


class Reopen(BaseModel):
    """A manager reopens a closed opportunity, saying why."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    version: Annotated[int, Field(ge=1)]


class Assign(BaseModel):
    """A manager gives an opportunity to someone (None: back to the pool)."""

    model_config = ConfigDict(extra="forbid")

    owner_id: BodyId | None
    version: Annotated[int, Field(ge=1)]


class Convert(BaseModel):
    """Turn a web lead into a customer: an existing one, or a new enterprise from the
    lead's contact."""

    model_config = ConfigDict(extra="forbid")

    customer_id: BodyId | None = None
    # The new customer's region (a salesperson scoped to several regions names one).
    region: ShortText | None = None


class ContactRead(BaseModel):
    """A web lead's contact, masked."""

    name: str | None
    company: str | None
    phone: str | None
    email: str | None


class OpportunityRead(BaseModel):
    """An opportunity as the API returns it (the contact masked)."""

    id: int
    customer_id: int | None
    customer_name: str | None = None
    title: str
    stage: str
    owner_id: int | None
    owner_name: str | None = None
    expected_revenue: int
    probability: int
    probability_set: bool
    weighted_revenue: int
    expected_close: date | None
    next_step: str | None
    next_step_due: date | None
    source: str
    campaign_id: int | None
    lost_reason: str | None
    notes: str | None
    contact: ContactRead | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int


class StageChangeRead(BaseModel):
    """One move between stages."""

    model_config = ConfigDict(from_attributes=True)

    from_stage: str | None
    to_stage: str
    user_id: int | None
    changed_at: datetime
    reason: str | None


class TeamIn(BaseModel):
    """A sales team: its name, manager and members."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    manager_id: BodyId | None = None
    member_ids: list[BodyId] = Field(default_factory=list, max_length=200)


class TeamRead(BaseModel):
    """A sales team with its members."""

    id: int
    name: str
    manager_id: int | None
    member_ids: list[int]


class LostReasonIn(BaseModel):
    """A reason in the lost list (a new code, or new labels for an existing one)."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    label_zh: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    label_en: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    active: bool = True


class LostReasonRead(BaseModel):
    """A reason in the lost list."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label_zh: str
    label_en: str
    active: bool


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class WebLeadIn(BaseModel):
    """What a prospect types into the public web form (phone and e-mail checked and
    normalised like a customer's)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    company: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    phone: Phone
    email: Email | None = None
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class ForecastRow(BaseModel):
    """One month and owner of the weighted forecast (amounts in fen)."""

    month: str
    owner_id: int | None
    owner_name: str
    opportunities: int
    expected_revenue: int
    weighted_revenue: int


class Forecast(BaseModel):
    """The weighted forecast by month (expected close) and owner."""

    rows: list[ForecastRow]
    total_expected: int
    total_weighted: int
