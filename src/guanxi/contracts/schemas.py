"""JSON shapes of contracts: the contract in and out, amendments, documents, the volume
against the commitment, the monthly report and the contract policy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.contracts.enums import ContractStatus
from guanxi.core.ids import MAX_ID, BodyId

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
# A basis-point discount: 0 (list price) to 10,000 (free); 1,250 = 12.5 %.
DiscountBp = Annotated[int, Field(ge=0, le=10_000)]
# Up to 10 million shipments and 100 million yuan a month: beyond any real customer, and
# well inside the columns.
CommitShipments = Annotated[int, Field(ge=1, le=10_000_000)]
CommitFen = Annotated[int, Field(ge=1, le=10_000_000_000)]
ReminderDays = Annotated[int, Field(ge=1, le=365)]
# Contract days within this century: periods and renewals stay far from date's limits.
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
Version = Annotated[int, Field(ge=1, le=MAX_ID)]


class ContractTerms(BaseModel):
    """What can be changed on a contract: title, pricing terms, period, renewal, notes."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    discount_bp: DiscountBp = 0
    commit_shipments: CommitShipments | None = None
    commit_revenue_fen: CommitFen | None = None
    start_date: Day
    end_date: Day
    auto_renew: bool = False
    reminder_days: ReminderDays | None = None
    notes: Notes | None = None


class ContractCreate(ContractTerms):
    """A new contract (a draft) for an enterprise or public-body customer; ``owner_id``:
    the salesperson responsible (default: whoever creates it)."""

    customer_id: BodyId
    owner_id: BodyId | None = None


class ContractUpdate(ContractTerms):
    """The whole set of terms after the change, the version read, and (once the contract
    is active) the reason, kept in the amendment history."""

    owner_id: BodyId | None = None
    version: Version
    reason: Reason | None = None


class ContractTerminate(BaseModel):
    """End an active contract early: the effective day (default today) and why."""

    model_config = ConfigDict(extra="forbid")

    ended_on: Day | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    version: Version


class ContractRenew(BaseModel):
    """Draft the renewal of a contract: the same terms for a new period, which starts the
    day after the current end unless given, and lasts as long unless given."""

    model_config = ConfigDict(extra="forbid")

    start_date: Day | None = None
    end_date: Day | None = None


class ContractActivate(BaseModel):
    """Put a draft in force: the version read."""

    model_config = ConfigDict(extra="forbid")

    version: Version


class ContractRead(BaseModel):
    """A contract as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    owner_name: str | None
    title: str
    status: ContractStatus
    discount_bp: int
    commit_shipments: int | None
    commit_revenue_fen: int | None
    start_date: date
    end_date: date
    auto_renew: bool
    reminder_days: int | None
    renewal_of_id: int | None
    renewed_by_id: int | None
    notes: str | None
    ended_on: date | None
    created_at: datetime
    activated_at: datetime | None
    updated_at: datetime
    version: int


class ContractPage(BaseModel):
    """A page of contracts, newest first."""

    items: list[ContractRead]
    total: int


class AmendmentRead(BaseModel):
    """One entry of a contract's change history: ``changes`` maps each field to
    ``[before, after]``."""

    id: int
    contract_id: int
    changes: dict[str, list[Any]]
    reason: str
    actor_id: int | None
    actor_name: str
    created_at: datetime


class DocumentRead(BaseModel):
    """An attached file (the storage key stays inside)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: int | None
    uploaded_at: datetime
    download_url: str


class VolumeRead(BaseModel):
    """One contract's month: the customer's actual shipments and revenue against the
    monthly commitment, which is prorated (``due_*``) to the days the contract was in force
    that month (up to today in the current month). Attainment is actual over due as a
    percentage with one decimal; None without that commitment. ``below``: under 100 % on
    either commitment."""

    contract_id: int
    number: str
    customer_id: int
    customer_name: str
    owner_name: str | None
    status: ContractStatus
    month: str
    days_in_force: int
    days_in_month: int
    shipments: int
    revenue_fen: int
    commit_shipments: int | None
    commit_revenue_fen: int | None
    due_shipments: int | None
    due_revenue_fen: int | None
    shipments_pct: float | None
    revenue_pct: float | None
    below: bool


class ContractPolicy(BaseModel):
    """The contract policy: how many days before the end the owner is reminded when a
    contract names no number of its own."""

    model_config = ConfigDict(extra="forbid")

    reminder_days: ReminderDays = 30
