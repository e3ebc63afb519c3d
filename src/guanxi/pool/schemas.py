"""Pydantic shapes of the customer pool's API: the pool list, claims, releases,
assignments, the history and the daily run's figures."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.customers.enums import CustomerKind
from guanxi.pool.enums import PoolEventKind

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class PoolCustomer(BaseModel):
    """A customer in the pool as a salesperson browses it (phone masked)."""

    id: int
    kind: CustomerKind
    name: str
    phone: str | None
    region: str | None
    industry: str | None
    tags: list[str]
    in_pool_since: datetime
    last_shipment_at: datetime | None


class PoolPage(BaseModel):
    """One page of the pool; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[PoolCustomer]
    next_cursor: str | None


class ClaimsToday(BaseModel):
    """How many customers the user claimed today against the daily cap."""

    day: date
    claimed: int
    cap: int


class ClaimIn(BaseModel):
    """Claim one customer from the pool."""

    model_config = ConfigDict(extra="forbid")
    customer_id: BodyId


class ReleaseIn(BaseModel):
    """Put a customer back in the pool, with a reason for the history."""

    model_config = ConfigDict(extra="forbid")
    customer_id: BodyId
    note: Note | None = None


class AssignIn(BaseModel):
    """Give customers (in the pool or owned) to a salesperson (managers)."""

    model_config = ConfigDict(extra="forbid")
    customer_ids: Annotated[list[BodyId], Field(min_length=1, max_length=200)]
    owner_id: BodyId
    note: Note | None = None


class PoolEventRead(BaseModel):
    """A row of the pool history."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    customer_name: str
    kind: PoolEventKind
    occurred_at: datetime
    actor_id: int | None
    actor_name: str | None
    from_user_id: int | None
    from_user_name: str | None
    to_user_id: int | None
    to_user_name: str | None
    due_on: date | None
    rule: str | None
    note: str | None


class PoolEventPage(BaseModel):
    """One page of the pool history, newest first."""

    items: list[PoolEventRead]
    next_cursor: str | None


class AssignResult(BaseModel):
    """Which customers changed hands (the others already belonged to the assignee or are
    archived)."""

    assigned: list[int]
    unchanged: list[int]


class ReturnRunRead(BaseModel):
    """What one run of the return job did."""

    day: date
    warned: int
    returned_no_follow_up: int
    returned_contract_ended: int
