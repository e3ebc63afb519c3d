"""HTML pages of shipments: list and detail with the status timeline, and the printable
waybill (隐私面单: names and phones masked, the street address shortened)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.shipments import service
from guanxi.shipments.enums import ShipmentStatus
from guanxi.web.render import render

router = APIRouter()
Reader = Annotated[User, require(Permission.shipment_read)]


@router.get("/shipments", response_class=HTMLResponse)
def shipment_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    customer_id: QueryId = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    waybill_no: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Shipments newest first, filtered by status, waybill number or customer."""
    if status and status not in ShipmentStatus._value2member_map_:
        status = None  # an empty or unknown choice in the filter form means "all"
    rows, next_cursor = service.list_shipments(
        session,
        viewer=user,
        customer_id=customer_id,
        status=status or None,
        waybill_no=waybill_no or None,
        cursor=cursor,
        limit=50,
    )
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    return render(
        request,
        "shipments/list.html",
        shipments=[service.to_summary(s) for s in rows],
        next_cursor=next_cursor,
        params=params,
        statuses=list(ShipmentStatus),
        status=status or "",
        waybill_no=waybill_no or "",
        customer_id=customer_id,
    )


@router.get("/shipments/{shipment_id}", response_class=HTMLResponse)
def shipment_detail(
    shipment_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """One shipment with its timeline (receiver phone masked)."""
    shipment = service.to_read(service.get_shipment(session, shipment_id=shipment_id, viewer=user))
    return render(request, "shipments/detail.html", s=shipment)


@router.get("/shipments/{shipment_id}/print", response_class=HTMLResponse)
def shipment_print(
    shipment_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """The waybill to print: sender (the customer) and receiver with names and phones
    masked whatever the viewer's role, the street address cut short; print styles only
    show the label."""
    from guanxi.core.errors import NotFound
    from guanxi.customers.service import get_customer
    from guanxi.customers.service import to_read as customer_read
    from guanxi.security.masking import mask_name, shorten_address

    shipment = service.to_read(service.get_shipment(session, shipment_id=shipment_id, viewer=user))
    try:
        customer = customer_read(
            get_customer(session, customer_id=shipment.customer_id, viewer=user)
        )
    except NotFound:
        customer = None
    sender = None
    if customer is not None:
        address = customer.addresses[0] if customer.addresses else None
        sender = {
            "name": mask_name(customer.name),
            "phone": customer.phones[0].number if customer.phones else "",
            "area": "".join(
                dict.fromkeys(x for x in (address.province, address.city, address.district) if x)
            )
            if address
            else "",
            "street": shorten_address(address.detail) if address else "",
        }
    receiver = {
        "name": mask_name(shipment.receiver_name or ""),
        "phone": shipment.receiver_phone or "",
        "area": "".join(
            dict.fromkeys(
                x for x in (shipment.dest_province, shipment.dest_city, shipment.dest_district) if x
            )
        ),
    }
    return render(request, "shipments/print.html", s=shipment, sender=sender, receiver=receiver)
