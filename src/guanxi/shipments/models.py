"""Shipment tables. Money in integer fen, weight in grams, times UTC."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class Shipment(Base):
    """A waybill (运单); the same table holds a travel booking or a generic order.

    Kind-specific facts are typed nullable columns rather than a JSON blob, so analytics can
    aggregate them directly.
    """

    __tablename__ = "shipment"
    __table_args__ = (
        Index("ix_shipment_customer_created", "customer_id", "created_at"),
        Index("ix_shipment_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="waybill")
    waybill_no: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    service_type: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), default="created")
    receiver_name: Mapped[str | None] = mapped_column(String(100))
    receiver_phone_enc: Mapped[str | None] = mapped_column(Text)
    receiver_phone_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    origin_province: Mapped[str | None] = mapped_column(String(30))
    origin_city: Mapped[str | None] = mapped_column(String(30))
    dest_province: Mapped[str | None] = mapped_column(String(30))
    dest_city: Mapped[str | None] = mapped_column(String(30))
    dest_district: Mapped[str | None] = mapped_column(String(30))
    weight_g: Mapped[int | None] = mapped_column(Integer)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    insured_value_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    cod_amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    door_delivery: Mapped[bool] = mapped_column(default=False)
    signed_receipt_return: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_damaged: Mapped[bool] = mapped_column(default=False)
    is_lost: Mapped[bool] = mapped_column(default=False)
    # booking (travel agency)
    destination: Mapped[str | None] = mapped_column(String(100))
    departure_date: Mapped[date | None] = mapped_column(Date)
    return_date: Mapped[date | None] = mapped_column(Date)
    party_size: Mapped[int | None] = mapped_column(Integer)
    # order (generic enterprise)
    product_name: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int | None] = mapped_column(Integer)

    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment",
        cascade="all, delete-orphan",
        order_by="ShipmentEvent.occurred_at",
    )


class ShipmentEvent(Base):
    """One step of a shipment's status timeline (揽收、中转、派送、签收 ...)."""

    __tablename__ = "shipment_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipment.id", ondelete="CASCADE"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    location: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)

    shipment: Mapped[Shipment] = relationship(back_populates="events")
