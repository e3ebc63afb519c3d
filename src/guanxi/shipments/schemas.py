"""API shapes of shipments, bookings and orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.customers.schemas import Phone
from guanxi.shipments.enums import ServiceType, ShipmentKind, ShipmentStatus

Fen = Annotated[int, Field(ge=0, le=10**12)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)]


def _upper(value: str) -> str:
    return value.strip().upper()


WaybillNo = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=6, max_length=40, pattern=r"^[A-Za-z0-9\-]+$"
    ),
    AfterValidator(_upper),
]


class ShipmentCreate(BaseModel):
    """A new waybill, booking or order; money in fen, weight in grams."""

    model_config = ConfigDict(extra="forbid")
    kind: ShipmentKind = ShipmentKind.waybill
    waybill_no: WaybillNo
    customer_id: BodyId
    service_type: ServiceType | None = None
    status: ShipmentStatus = ShipmentStatus.created
    receiver_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None
    ) = None
    receiver_phone: Phone | None = None
    origin_province: Region | None = None
    origin_city: Region | None = None
    dest_province: Region | None = None
    dest_city: Region | None = None
    dest_district: Region | None = None
    weight_g: int | None = Field(default=None, ge=0, le=10**8)
    fee_fen: Fen = 0
    insured_value_fen: Fen = 0
    cod_amount_fen: Fen = 0
    door_delivery: bool = False
    signed_receipt_return: bool = False
    created_at: AwareDatetime | None = None
    promised_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    is_damaged: bool = False
    is_lost: bool = False
    destination: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = (
        None
    )
    departure_date: date | None = None
    return_date: date | None = None
    party_size: int | None = Field(default=None, ge=1, le=10000)
    product_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None
    ) = None
    quantity: int | None = Field(default=None, ge=1, le=10**9)


class ShipmentEventCreate(BaseModel):
    """A status step to append to a shipment's timeline."""

    model_config = ConfigDict(extra="forbid")
    status: ShipmentStatus
    occurred_at: AwareDatetime | None = None
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


class ShipmentEventRead(BaseModel):
    """One timeline step."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    occurred_at: datetime
    status: ShipmentStatus
    location: str | None
    note: str | None


class ShipmentSummary(BaseModel):
    """A row of the shipment list."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: ShipmentKind
    waybill_no: str
    customer_id: int
    service_type: ServiceType | None
    status: ShipmentStatus
    dest_province: str | None
    dest_city: str | None
    fee_fen: int
    created_at: datetime
    promised_at: datetime | None
    delivered_at: datetime | None
    is_damaged: bool
    is_lost: bool
    is_late: bool


class ShipmentRead(ShipmentSummary):
    """The whole shipment with its timeline; the receiver's phone masked."""

    receiver_name: str | None
    receiver_phone: str | None
    origin_province: str | None
    origin_city: str | None
    dest_district: str | None
    weight_g: int | None
    insured_value_fen: int
    cod_amount_fen: int
    door_delivery: bool
    signed_receipt_return: bool
    destination: str | None
    departure_date: date | None
    return_date: date | None
    party_size: int | None
    product_name: str | None
    quantity: int | None
    events: list[ShipmentEventRead]


class ShipmentPage(BaseModel):
    """One page of shipments."""

    items: list[ShipmentSummary]
    next_cursor: str | None


class ShipmentStats(BaseModel):
    """A customer's shipping in numbers (for the 360 view)."""

    count: int
    fee_total_fen: int
    first_at: datetime | None
    last_at: datetime | None
    late: int
    damaged: int
    lost: int
