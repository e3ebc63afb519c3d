"""Server-rendered pages: sign-in, CSRF, visibility, language, form errors."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.customers.models import Customer
from tests.conftest import PASSWORD


def _sign_in(client: Any, username: str) -> str:
    resp = client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/customers"}
    )
    assert resp.status_code == 200
    assert resp.url.path == "/customers"
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/customers/new").text)
    return match.group(1) if match else ""


def test_anonymous_is_sent_to_sign_in(client: Any) -> None:
    resp = client.get("/customers?q=张三", follow_redirects=False)
    assert resp.status_code == 303
    location = urlsplit(resp.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/customers?q=%E5%BC%A0%E4%B8%89"]}


def test_wrong_password_shows_translated_error(client: Any, make_user: Any) -> None:
    user = make_user("agent")
    resp = client.post(
        "/login",
        data={"username": user.username, "password": "wrong-password"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.text
    assert "guanxi_session" not in resp.cookies


def test_next_must_be_local(client: Any, make_user: Any) -> None:
    user = make_user("agent")
    resp = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "next": "https://evil.example/x"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/customers"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def test_post_without_csrf_token_is_refused(client: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent")
    _sign_in(client, user.username)
    before = db.scalar(select(func.count()).select_from(Customer))
    resp = client.post("/customers", data={"kind": "individual", "name": "王五"})
    assert resp.status_code == 403
    assert db.scalar(select(func.count()).select_from(Customer)) == before


def test_sales_gets_not_found_page_for_others_customer(
    client: Any, make_user: Any, make_customer: Any
) -> None:
    owner = make_user("sales")
    other = make_user("sales")
    customer = make_customer(name="别人的客户", owner_id=owner.id)
    _sign_in(client, other.username)
    resp = client.get(f"/customers/{customer.id}", headers={"Accept-Language": "zh-CN"})
    assert resp.status_code == 404
    assert "未找到" in resp.text
    assert "别人的客户" not in resp.text
    listing = client.get("/customers")
    assert "别人的客户" not in listing.text


def test_language_cookie_switches_the_interface(client: Any, make_user: Any) -> None:
    user = make_user("agent")
    _sign_in(client, user.username)
    assert "新建客户" in client.get("/customers", headers={"Accept-Language": "zh-CN"}).text
    resp = client.get(
        "/lang/en",
        headers={"Referer": "http://testserver/customers?kind=enterprise"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/customers?kind=enterprise"
    page = client.get("/customers", headers={"Accept-Language": "zh-CN"}).text
    assert "New customer" in page
    assert "新建客户" not in page


def test_invalid_form_keeps_values_shows_errors_and_creates_nothing(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    csrf = _sign_in(client, user.username)
    before = db.scalar(select(func.count()).select_from(Customer))
    resp = client.post(
        "/customers",
        data={
            "csrf_token": csrf,
            "kind": "individual",
            "name": "王五",
            "phones": ["12345"],
            "email": "not-an-email",
            "id_number": "123",
        },
        headers={"Accept-Language": "zh-CN"},
    )
    assert resp.status_code == 422
    assert re.search(r'id="e-phones"[^>]*>电话号码无效<', resp.text)
    assert re.search(r'id="e-email"[^>]*>电子邮箱地址无效<', resp.text)
    assert re.search(r'id="e-id_number"[^>]*>身份证号应为 18 位<', resp.text)
    assert 'value="王五"' in resp.text
    assert db.scalar(select(func.count()).select_from(Customer)) == before

    ok = client.post(
        "/customers",
        data={
            "csrf_token": csrf,
            "kind": "individual",
            "name": "王五",
            "phones": ["13912345678"],
            "address_line": "杭州市临平区星光街1号",
            "tags": "VIP，月结客户",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    page = client.get(ok.headers["location"], headers={"Accept-Language": "zh-CN"}).text
    assert "139****5678" in page
    assert "13912345678" not in page
    assert "浙江省杭州市临平区" in page


def test_list_page_query_count_does_not_grow_with_rows(
    client: Any, make_user: Any, make_customer: Any, engine: Any
) -> None:
    from sqlalchemy import event

    user = make_user("agent")
    _sign_in(client, user.username)
    counts = []
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    for batch in (3, 30):
        for n in range(batch):
            make_customer(
                name=f"批量{batch}-{n}", phones=["13912345678"], tags=["VIP"], owner_id=user.id
            )
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/customers").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    # Baseline: session lookup, BEGIN/commit, ids, rows, phones, tags, owners for the filter.
    assert counts[0] == counts[1]
    assert counts[0] <= 10


def test_shipment_pages_show_money_in_yuan_and_mask_the_receiver(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    from guanxi.shipments.schemas import ShipmentCreate
    from guanxi.shipments.service import create_shipment

    user = make_user("agent")
    customer = make_customer(name="寄件客户")
    shipment = create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="GX202611240001",
            customer_id=customer.id,
            fee_fen=1200,
            receiver_name="收件人",
            receiver_phone="13700137000",
            service_type="express",
        ),
        actor=user,
    )
    _sign_in(client, user.username)
    zh = {"Accept-Language": "zh-CN"}
    for url in ("/shipments", f"/customers/{customer.id}", f"/shipments/{shipment.id}"):
        page = client.get(url, headers=zh).text
        assert "GX202611240001" in page
        assert "¥12.00" in page
        assert "特快" in page
        assert "13700137000" not in page
    assert "137****7000" in client.get(f"/shipments/{shipment.id}", headers=zh).text
