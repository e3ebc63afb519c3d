"""Helpers of the self-service tests: a shipment to look up, the page's forms filled in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from guanxi.shipments.schemas import ShipmentCreate, ShipmentEventCreate
from guanxi.shipments.service import add_event, create_shipment

WAYBILL = "SF1234567890"
SENDER_PHONE = "13912345678"  # the customer's: last four 5678
RECEIVER_PHONE = "13800138000"  # last four 8000


def build_shipment(db: Any, agent: Any, customer: Any) -> Any:
    """A waybill from Hangzhou to Shanghai, in transit, with a staff note on one step."""
    shipment = create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no=WAYBILL,
            customer_id=customer.id,
            service_type="express",  # type: ignore[arg-type]
            receiver_name="李四",
            receiver_phone=RECEIVER_PHONE,
            origin_province="浙江省",
            origin_city="杭州市",
            dest_province="上海市",
            dest_city="上海市",
            dest_district="浦东新区",
            fee_fen=1200,
            insured_value_fen=50000,
            created_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
            promised_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        ),
        actor=agent,
    )
    return add_event(
        db,
        shipment_id=shipment.id,
        event_in=ShipmentEventCreate(
            status="in_transit",  # type: ignore[arg-type]
            occurred_at=datetime(2026, 11, 21, 6, 30, tzinfo=UTC),
            location="杭州转运中心",
            note="司机电话 13700000000",
        ),
        actor=agent,
    )


def track_page(client: Any, waybill: str, digits: str, lang: str = "en") -> Any:
    """Submit the lookup form from a browser asking for ``lang``."""
    return client.post(
        "/track",
        data={"waybill_no": waybill, "phone_last4": digits},
        headers={"Accept-Language": lang},
    )


def proof_of(html: str) -> str:
    """The signed proof in the filing form."""
    found = re.search(r'name="proof" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def file_form(client: Any, proof: str, **fields: str) -> Any:
    """Submit the filing form (a complaint about a delay unless told otherwise)."""
    data = {
        "proof": proof,
        "type": "complaint",
        "category": "delay.transit",
        "description": "快件在杭州转运中心停了三天，一直没有更新。",
        "email": "",
        **fields,
    }
    return client.post("/track/file", data=data, follow_redirects=False)


def file_ticket(client: Any, digits: str = "5678", **fields: str) -> str:
    """Look the waybill up and file a ticket; returns the private link's secret."""
    page = track_page(client, WAYBILL, digits)
    assert page.status_code == 200, page.text
    resp = file_form(client, proof_of(page.text), **fields)
    assert resp.status_code == 303, resp.text
    found = re.fullmatch(r"/s/([A-Za-z0-9_-]{43})\?filed=1", resp.headers["location"])
    assert found, resp.headers["location"]
    return found.group(1)
