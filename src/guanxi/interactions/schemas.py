"""JSON shapes of the contact log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.interactions.enums import InteractionKind


class ActionItemIn(BaseModel):
    """A follow-up agreed in a contact."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    due_on: date
    owner_id: BodyId | None = None


class InteractionCreate(BaseModel):
    """A contact with a customer as the person who had it records it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: BodyId
    kind: InteractionKind
    occurred_at: AwareDatetime | None = None
    participants: Annotated[str, StringConstraints(max_length=300)] | None = None
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    outcome: Annotated[str, StringConstraints(max_length=300)] | None = None
    ticket_id: BodyId | None = None
    opportunity_id: BodyId | None = None
    action_items: list[ActionItemIn] = Field(default_factory=list, max_length=20)


class CadenceRuleIn(BaseModel):
    """Contact customers with ``tag`` (or everyone, without a tag) every ``every_days``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    tag: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None
    ) = None
    every_days: Annotated[int, Field(ge=1, le=3650)]


class InteractionRead(BaseModel):
    """A recorded contact."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: str
    occurred_at: datetime
    user_id: int | None
    participants: str | None
    summary: str
    outcome: str | None
    ticket_id: int | None
    opportunity_id: int | None = None


class ActionItemRead(BaseModel):
    """A follow-up."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    ticket_id: int | None
    owner_id: int | None
    title: str
    due_on: date
    done_at: datetime | None


class DueContactRead(BaseModel):
    """A customer due for contact."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    name: str
    last_contact: datetime | None
    every_days: int
    due_on: date
    overdue_days: int
    churn_risk: float | None = None


class DueList(BaseModel):
    """What an account owner should do: customers due for contact and follow-ups due."""

    contacts: list[DueContactRead]
    items: list[ActionItemRead]
