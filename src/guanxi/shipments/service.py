"""The rules of shipments: create with a unique waybill number, timeline steps, reading."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Row, Select, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import HotSelect, is_unique_violation, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.core.pagination import decode_cursor, encode_cursor
from guanxi.customers.models import Customer
from guanxi.customers.service import can_see, visible_clause
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_phone
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.enums import ShipmentStatus
from guanxi.shipments.models import Shipment, ShipmentEvent
from guanxi.shipments.schemas import (
    ShipmentCreate,
    ShipmentEventCreate,
    ShipmentEventRead,
    ShipmentRead,
    ShipmentStats,
    ShipmentSummary,
)


def is_late(shipment: Shipment | Row[Any]) -> bool:
    """Delivered after the promise, or not delivered and the promise has passed."""
    if shipment.promised_at is None:
        return False
    if shipment.delivered_at is not None:
        return shipment.delivered_at > shipment.promised_at
    return shipment.status not in ("cancelled",) and clock.now() > shipment.promised_at


def to_summary(shipment: Shipment | Row[Any]) -> ShipmentSummary:
    """A list row."""
    data = {k: getattr(shipment, k) for k in ShipmentSummary.model_fields if k != "is_late"}
    return ShipmentSummary(**data, is_late=is_late(shipment))


def to_read(shipment: Shipment) -> ShipmentRead:
    """The whole shipment, receiver phone masked."""
    base = to_summary(shipment).model_dump()
    extra: dict[str, Any] = {
        k: getattr(shipment, k)
        for k in ShipmentRead.model_fields
        if k not in base and k not in ("receiver_phone", "events")
    }
    phone = (
        mask_phone(cipher().decrypt("phone", shipment.receiver_phone_enc))
        if shipment.receiver_phone_enc
        else None
    )
    return ShipmentRead(
        **base,
        **extra,
        receiver_phone=phone,
        events=[ShipmentEventRead.model_validate(e) for e in shipment.events],
    )


def _visible_customer(session: Session, customer_id: int, viewer: User, loc: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not can_see(viewer, customer):
        raise ValidationFailed([FieldError((loc,), "customer_unknown", "No such customer")])
    return customer


def create_shipment(session: Session, *, shipment_in: ShipmentCreate, actor: User) -> Shipment:
    """Record a shipment; a waybill number already used is a 409."""
    try:
        with write_transaction(session):
            _visible_customer(session, shipment_in.customer_id, actor, "customer_id")
            data = shipment_in.model_dump(exclude={"receiver_phone"})
            data["created_at"] = data["created_at"] or clock.now()
            if data["delivered_at"] and data["delivered_at"] < data["created_at"]:
                raise ValidationFailed(
                    [
                        FieldError(
                            ("delivered_at",),
                            "delivered_before_shipped",
                            "Delivery cannot be before the shipment was created",
                        )
                    ]
                )
            for key in ("kind", "service_type", "status"):
                if data[key] is not None:
                    data[key] = str(data[key])
            if session.scalar(select(Shipment.id).where(Shipment.waybill_no == data["waybill_no"])):
                raise Conflict("waybill_duplicate", field="waybill_no")
            shipment = Shipment(**data)
            if shipment_in.receiver_phone:
                shipment.receiver_phone_enc = cipher().encrypt("phone", shipment_in.receiver_phone)
                shipment.receiver_phone_bidx = cipher().blind_index(
                    "phone", shipment_in.receiver_phone
                )
            shipment.events = [
                ShipmentEvent(occurred_at=shipment.created_at, status=shipment.status)
            ]
            session.add(shipment)
            session.flush()
            record(
                session,
                actor=actor_of(actor),
                action="shipment.created",
                target_type="customer",
                target_id=shipment.customer_id,
                after={"waybill_no": shipment.waybill_no, "fee_fen": shipment.fee_fen},
            )
    except IntegrityError as exc:
        # Two writers raced past the check; the unique key decides.
        if is_unique_violation(exc):
            raise Conflict("waybill_duplicate", field="waybill_no") from exc
        raise
    return shipment


_WAYBILL = re.compile(r"^[A-Za-z0-9\-]{6,40}$")


def find_by_waybill(session: Session, waybill_no: str) -> Shipment | None:
    """The shipment with this waybill number and its status steps (a ticket's context)."""
    return session.scalar(
        select(Shipment)
        .where(Shipment.waybill_no == waybill_no.upper())
        .options(selectinload(Shipment.events))
    )


def move_to_customer(session: Session, from_id: int, to_id: int) -> list[int]:
    """Move every shipment of a merged customer to the survivor; returns their ids.

    Part of a merge: runs in the merging service's transaction.
    """
    ids = list(session.scalars(select(Shipment.id).where(Shipment.customer_id == from_id)))
    if ids:
        session.execute(
            update(Shipment).where(Shipment.customer_id == from_id).values(customer_id=to_id)
        )
    return ids


def return_to_customer(session: Session, ids: list[int], survivor_id: int, to_id: int) -> None:
    """Undo :func:`move_to_customer` for the given shipments still on the survivor."""
    for lo in range(0, len(ids), 500):
        session.execute(
            update(Shipment)
            .where(Shipment.id.in_(ids[lo : lo + 500]), Shipment.customer_id == survivor_id)
            .values(customer_id=to_id)
        )


def customers_by_waybill(session: Session, q: str) -> list[int]:
    """The customer of a waybill number typed into the customer search box."""
    term = q.strip()
    if not _WAYBILL.match(term):
        return []
    return list(
        session.scalars(select(Shipment.customer_id).where(Shipment.waybill_no == term.upper()))
    )


def get_shipment(session: Session, *, shipment_id: int, viewer: User) -> Shipment:
    """One shipment with its timeline; 404 when missing or its customer is not visible."""
    shipment = session.scalar(
        select(Shipment).where(Shipment.id == shipment_id).options(selectinload(Shipment.events))
    )
    if shipment is None:
        raise NotFound("shipment not found")
    customer = session.get(Customer, shipment.customer_id)
    if customer is None or not can_see(viewer, customer):
        raise NotFound("shipment not found")
    return shipment


def add_event(
    session: Session, *, shipment_id: int, event_in: ShipmentEventCreate, actor: User
) -> Shipment:
    """Append a timeline step and move the shipment's status (delivered sets the time)."""
    with write_transaction(session):
        shipment = get_shipment(session, shipment_id=shipment_id, viewer=actor)
        at = event_in.occurred_at or clock.now()
        before = {"status": shipment.status}
        shipment.events.append(
            ShipmentEvent(
                occurred_at=at,
                status=event_in.status.value,
                location=event_in.location,
                note=event_in.note,
            )
        )
        shipment.status = event_in.status.value
        if event_in.status is ShipmentStatus.delivered and shipment.delivered_at is None:
            shipment.delivered_at = at
        if event_in.status is ShipmentStatus.lost:
            shipment.is_lost = True
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="shipment.status_changed",
            target_type="customer",
            target_id=shipment.customer_id,
            before={"waybill_no": shipment.waybill_no, **before},
            after={"waybill_no": shipment.waybill_no, "status": shipment.status},
        )
    return shipment


def list_shipments(
    session: Session,
    *,
    viewer: User,
    customer_id: int | None = None,
    status: str | None = None,
    waybill_no: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Shipment], str | None]:
    """Shipments newest first (by id), optionally of one customer or status."""
    stmt = select(Shipment)
    if customer_id is not None:
        stmt = stmt.where(Shipment.customer_id == customer_id)
    if status:
        stmt = stmt.where(Shipment.status == status)
    if waybill_no:
        stmt = stmt.where(Shipment.waybill_no == waybill_no.strip().upper())
    # The customers' one visibility rule (row-level scope included), as for one shipment.
    seen = visible_clause(viewer)
    if seen is not None:
        stmt = stmt.join(Customer, Customer.id == Shipment.customer_id).where(seen)
    if cursor:
        try:
            stmt = stmt.where(Shipment.id < int(decode_cursor(cursor)[0]))
        except (ValueError, IndexError, TypeError) as exc:
            raise ValidationFailed(
                [FieldError(("query", "cursor"), "cursor_invalid", "Invalid cursor")]
            ) from exc
    rows = list(session.scalars(stmt.order_by(Shipment.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1].id]) if more and rows else None


# Built once: constructing and cache-keying this expression tree per request cost more
# than running it.
_STATS = HotSelect(
    select(
        func.count(Shipment.id),
        func.coalesce(func.sum(Shipment.fee_fen), 0),
        func.min(Shipment.created_at),
        func.max(Shipment.created_at),
        func.coalesce(
            func.sum(case((Shipment.delivered_at > Shipment.promised_at, 1), else_=0)), 0
        ),
        func.coalesce(func.sum(case((Shipment.is_damaged, 1), else_=0)), 0),
        func.coalesce(func.sum(case((Shipment.is_lost, 1), else_=0)), 0),
    ).where(Shipment.customer_id == bindparam("customer_id"))
)


def customer_stats(session: Session, *, customer_id: int) -> ShipmentStats:
    """Counts and totals of one customer's shipments (one aggregate query)."""
    row = _STATS.all(session, {"customer_id": customer_id})[0]
    return ShipmentStats(
        count=row[0],
        fee_total_fen=int(row[1]),
        first_at=row[2],
        last_at=row[3],
        late=int(row[4]),
        damaged=int(row[5]),
        lost=int(row[6]),
    )


# Only the list row's columns: each datetime and flag read is converted in Python, and the
# row needs neither the receiver nor the order and travel columns.
_RECENT = HotSelect(
    select(*(Shipment.__table__.c[k] for k in ShipmentSummary.model_fields if k != "is_late"))
    .where(Shipment.customer_id == bindparam("customer_id"))
    .order_by(Shipment.created_at.desc())
    .limit(bindparam("limit"))
)
_SUMMARIES = TypeAdapter(list[ShipmentSummary])


def recent_summaries(
    session: Session, *, customer_id: int, limit: int = 10
) -> list[ShipmentSummary]:
    """The newest shipments of a customer as list rows (Core select: the 360's hot path)."""
    rows = _RECENT.all(session, {"customer_id": customer_id, "limit": limit})
    # One validation of the whole list: a model call per row cost more than the query.
    return _SUMMARIES.validate_python([{**row._asdict(), "is_late": is_late(row)} for row in rows])


def revenue_by_customer(
    session: Session, *, customers: Select[int], since: datetime, until: datetime
) -> dict[int, tuple[int, int]]:
    """Shipments created in ``[since, until)`` per customer of ``customers`` (a select of
    customer ids), cancelled ones left out (no business done): ``customer_id -> (count, fee
    total in fen)``; customers without one are left out. One grouped query (campaign
    conversions read half a million recipients)."""
    stmt = (
        select(Shipment.customer_id, func.count(), func.coalesce(func.sum(Shipment.fee_fen), 0))
        .where(
            Shipment.customer_id.in_(customers),
            Shipment.created_at >= since,
            Shipment.created_at < until,
            Shipment.status != ShipmentStatus.cancelled.value,
        )
        .group_by(Shipment.customer_id)
    )
    return {int(cid): (int(n), int(fee)) for cid, n, fee in session.execute(stmt)}
