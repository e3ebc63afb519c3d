"""JSON routes of shipments (``/api/v1/shipments``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.shipments import service
from guanxi.shipments.enums import ShipmentStatus
from guanxi.shipments.schemas import ShipmentCreate, ShipmentEventCreate, ShipmentPage, ShipmentRead

router = APIRouter(prefix="/api/v1/shipments", tags=["shipments"])

Reader = Annotated[User, require(Permission.shipment_read)]
Writer = Annotated[User, require(Permission.shipment_write)]


@router.get("", response_model=ShipmentPage)
def list_shipments(
    session: SessionDep,
    user: Reader,
    customer_id: QueryId = None,
    status: ShipmentStatus | None = None,
    waybill_no: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ShipmentPage:
    """Shipments newest first, filtered by customer, status or waybill number."""
    rows, next_cursor = service.list_shipments(
        session,
        viewer=user,
        customer_id=customer_id,
        status=status,
        waybill_no=waybill_no,
        cursor=cursor,
        limit=limit,
    )
    return ShipmentPage(items=[service.to_summary(s) for s in rows], next_cursor=next_cursor)


@router.post("", response_model=ShipmentRead, status_code=201)
def create_shipment(body: ShipmentCreate, session: SessionDep, user: Writer) -> ShipmentRead:
    """Record a waybill, booking or order (a used waybill number is a 409)."""
    return service.to_read(service.create_shipment(session, shipment_in=body, actor=user))


@router.get("/{shipment_id}", response_model=ShipmentRead)
def get_shipment(shipment_id: PathId, session: SessionDep, user: Reader) -> ShipmentRead:
    """One shipment with its status timeline."""
    return service.to_read(service.get_shipment(session, shipment_id=shipment_id, viewer=user))


@router.post("/{shipment_id}/events", response_model=ShipmentRead, status_code=201)
def add_event(
    shipment_id: PathId, body: ShipmentEventCreate, session: SessionDep, user: Writer
) -> ShipmentRead:
    """Append a status step to the timeline."""
    return service.to_read(
        service.add_event(session, shipment_id=shipment_id, event_in=body, actor=user)
    )
