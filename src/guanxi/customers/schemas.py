"""API shapes of customers: ``CustomerCreate / CustomerUpdate / CustomerRead / CustomerPage``.

Identifiers are normalised while parsing (phones to E.164, ID numbers upper-case), so a bad
value is a 422 naming the field before any service code runs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from guanxi.core import clock
from guanxi.core.ids import MAX_ID, BodyId
from guanxi.customers import validation
from guanxi.customers.enums import (
    CreditRating,
    CustomerKind,
    CustomerStatus,
    LifecycleStage,
    PhoneKind,
    SourceChannel,
)


def _wrap(fn: Any) -> Any:
    def check(value: str) -> str:
        try:
            return fn(value)  # type: ignore[no-any-return]
        except validation.InvalidValue as exc:
            raise PydanticCustomError(exc.code, exc.message) from None

    return check


Phone = Annotated[
    str, StringConstraints(max_length=40), AfterValidator(_wrap(validation.normalize_phone))
]
Email = Annotated[
    str, StringConstraints(max_length=254), AfterValidator(_wrap(validation.normalize_email))
]
ResidentId = Annotated[
    str, StringConstraints(max_length=30), AfterValidator(_wrap(validation.normalize_resident_id))
]
CreditCode = Annotated[
    str, StringConstraints(max_length=30), AfterValidator(_wrap(validation.normalize_credit_code))
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


def _not_future(value: date | None) -> date | None:
    if value is not None and value > clock.now().date():
        raise PydanticCustomError("birthday_future", "The birthday cannot be in the future")
    return value


Birthday = Annotated[date, AfterValidator(_not_future)]


class AddressIn(BaseModel):
    """An address: a free-text line (parsed into divisions) or structured parts."""

    model_config = ConfigDict(extra="forbid")
    line: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    province: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    district: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    detail: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None

    @model_validator(mode="after")
    def _some_content(self) -> AddressIn:
        if not self.line and not self.detail:
            raise PydanticCustomError(
                "address_empty", "Give an address line or a province and detail"
            )
        return self


class ContactIn(BaseModel):
    """A contact person at an enterprise customer."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_primary: bool = False


ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _CustomerFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The customer's number in the system it came from (客户编号); unique.
    external_id: ExternalId | None = None
    phones: Annotated[list[Phone], Field(max_length=10)] | None = None
    email: Email | None = None
    id_number: ResidentId | None = None
    credit_code: CreditCode | None = None
    addresses: Annotated[list[AddressIn], Field(max_length=20)] | None = None
    contacts: Annotated[list[ContactIn], Field(max_length=50)] | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    owner_id: BodyId | None = None
    tags: Annotated[list[TagName], Field(max_length=30)] | None = None
    birthday: Birthday | None = None
    credit_rating: CreditRating | None = None
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    # The language messages to the customer are written in (None: the default, zh_CN).
    language: Literal["zh_CN", "en"] | None = None


class CustomerCreate(_CustomerFields):
    """A new customer (``POST /api/v1/customers``)."""

    kind: CustomerKind = CustomerKind.individual
    name: Name
    source: SourceChannel = SourceChannel.other
    lifecycle_stage: LifecycleStage = LifecycleStage.new

    @model_validator(mode="after")
    def _identifier_fits_kind(self) -> CustomerCreate:
        _check_kind(self.kind, self.id_number, self.credit_code)
        return self


class CustomerUpdate(_CustomerFields):
    """A partial update; lists given replace the stored lists. ``version`` guards races.

    Required facts (kind, name, source, lifecycle stage) may be left out but not emptied.
    """

    kind: CustomerKind | None = None
    name: Name | None = None
    source: SourceChannel | None = None
    lifecycle_stage: LifecycleStage | None = None
    version: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None

    @field_validator("kind", "name", "source", "lifecycle_stage", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null_not_allowed", "This field cannot be emptied")
        return value


def _check_kind(kind: CustomerKind | None, id_number: str | None, credit_code: str | None) -> None:
    if kind is CustomerKind.individual and credit_code:
        raise PydanticCustomError(
            "credit_code_individual", "Only enterprises and government bodies have a credit code"
        )
    if kind in (CustomerKind.enterprise, CustomerKind.government) and id_number:
        raise PydanticCustomError(
            "id_number_organisation", "Only individual customers have a resident ID number"
        )


class PhoneRead(BaseModel):
    """A phone number as shown: masked unless revealed."""

    id: int
    kind: PhoneKind
    number: str


class AddressRead(BaseModel):
    """A stored address."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    label: str | None
    province: str | None
    city: str | None
    district: str | None
    detail: str
    division_code: str | None


class ContactRead(BaseModel):
    """A contact person, phone and e-mail masked."""

    id: int
    name: str
    title: str | None
    phone: str | None
    email: str | None
    is_primary: bool


class OwnerRead(BaseModel):
    """The account manager who owns the customer."""

    id: int
    display_name: str


class CustomerSummary(BaseModel):
    """A row of the customer list."""

    id: int
    kind: CustomerKind
    name: str
    phone: str | None
    region: str | None
    industry: str | None
    source: SourceChannel
    lifecycle_stage: LifecycleStage
    owner: OwnerRead | None
    tags: list[str]
    status: CustomerStatus
    created_at: datetime


class CustomerRead(CustomerSummary):
    """The full customer record (personal identifiers masked)."""

    external_id: str | None
    phones: list[PhoneRead]
    email: str | None
    id_number: str | None
    credit_code: str | None
    addresses: list[AddressRead]
    contacts: list[ContactRead]
    birthday: date | None
    credit_rating: CreditRating | None
    notes: str | None
    language: str | None = None
    updated_at: datetime
    archived_at: datetime | None
    version: int


class CustomerPage(BaseModel):
    """One page of customers; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[CustomerSummary]
    next_cursor: str | None


class RevealRequest(BaseModel):
    """Which personal field to show in clear (the reveal is audited)."""

    model_config = ConfigDict(extra="forbid")
    field: Annotated[str, Field(pattern=r"^(phones|email|id_number|credit_code|contacts)$")]


class RevealRead(BaseModel):
    """Clear values of one field."""

    field: str
    values: list[str]


class ConsentRead(BaseModel):
    """A customer's standing for one purpose: ``granted`` true / false, or null when never
    asked; ``allowed`` says whether that permits contact."""

    purpose: str
    granted: bool | None
    allowed: bool
    source: str | None
    updated_at: datetime | None


class ConsentEventRead(BaseModel):
    """One consent given or withdrawn (the evidence)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    purpose: str
    granted: bool
    legal_basis: str
    notice_version: str | None
    source: str
    actor_name: str
    at: datetime


class ConsentsRead(BaseModel):
    """The customer's consents: the standing per purpose and the history, newest first."""

    items: list[ConsentRead]
    history: list[ConsentEventRead]


class ConsentUpdate(BaseModel):
    """One consent given or withdrawn (``PUT /api/v1/customers/{id}/consents``)."""

    model_config = ConfigDict(extra="forbid")
    purpose: Literal["marketing_sms", "marketing_email", "survey", "third_party", "cross_border"]
    granted: bool
    source: Literal["web", "api", "agent", "import"] = "api"
    legal_basis: Literal["consent", "contract", "legal_obligation"] = "consent"
    notice_version: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None
    ) = None
