"""Masked display on the printed waybill (隐私面单): sender and receiver names and phones
masked for every role, the street address cut short, print styles present; the detail
page links to it; roles without shipment access are refused."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from guanxi.security.masking import mask_name, shorten_address
from guanxi.shipments import service
from guanxi.shipments.schemas import ShipmentCreate
from tests.conftest import PASSWORD


def _web_login(client: Any, user: Any) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)


def test_the_masking_helpers() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("李四") == "李**"
    assert mask_name("  ") == ""
    assert shorten_address("文三路90号3单元501室") == "文三路9…"
    assert shorten_address("文三路") == "文三路"


def test_the_printed_waybill_masks_names_and_phones_for_every_role(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    manager = make_user("manager")
    customer = make_customer(
        "王寄件",
        phones=["13912345678"],
        addresses=[{"province": "浙江省", "city": "杭州市", "district": "西湖区",
                    "detail": "文三路90号3单元501室"}],
    )  # fmt: skip
    shipment = service.create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="SF1234567890", customer_id=customer.id, receiver_name="赵收件人",
            receiver_phone="13787654321", origin_province="浙江省", origin_city="杭州市",
            dest_province="广东省", dest_city="深圳市", dest_district="南山区", weight_g=1500,
        ),
        actor=manager,
    )  # fmt: skip
    # A manager may reveal phones elsewhere; the printed label is masked all the same.
    _web_login(client, manager)
    page = client.get(f"/shipments/{shipment.id}/print")
    assert page.status_code == 200
    text = page.text
    receiver = text[text.index('id="waybill-receiver"') : text.index('id="waybill-sender"')]
    sender = text[text.index('id="waybill-sender"') : text.index("waybill-foot")]
    assert "赵**" in receiver
    assert "137****4321" in receiver
    assert "广东省深圳市南山区" in receiver
    assert "王**" in sender
    assert "139****5678" in sender
    assert "浙江省杭州市西湖区文三路9…" in sender
    for clear in ("赵收件人", "13787654321", "王寄件", "13912345678", "3单元501室"):
        assert clear not in text
    assert '<link rel="stylesheet" href="/static/css/waybill.css">' in text
    css = client.get("/static/css/waybill.css")
    assert css.status_code == 200
    assert "@media print" in css.text
    detail = client.get(f"/shipments/{shipment.id}")
    assert f'href="/shipments/{shipment.id}/print"' in detail.text


def test_the_printed_waybill_needs_shipment_access(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    agent = make_user("agent")
    customer = make_customer("钱寄件")
    shipment = service.create_shipment(
        db,
        shipment_in=ShipmentCreate(waybill_no="YT0000000001", customer_id=customer.id),
        actor=agent,
    )
    anonymous = client.get(f"/shipments/{shipment.id}/print", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    _web_login(client, agent)
    assert client.get(f"/shipments/{shipment.id}/print").status_code == 200
    assert client.get("/shipments/999999/print").status_code == 404
    client.cookies.clear()
    _web_login(client, make_user("analyst"))  # analysts hold shipment.read
    assert client.get(f"/shipments/{shipment.id}/print").status_code == 200
    client.cookies.clear()
    _web_login(client, make_user("privacy_officer"))
    assert client.get(f"/shipments/{shipment.id}/print").status_code == 200
