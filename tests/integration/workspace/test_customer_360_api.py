"""The customer 360 API (``GET /api/v1/customers/{id}``) on SQLite and PostgreSQL: the
whole body, masked; who gets which answer; and the request's session closed every time.

The route runs on the lean read path (``security.deps.require_read``: one dependency, one
read transaction); these tests pin what that path must keep from ``require``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.security.deps import Reader, require_read
from guanxi.security.permissions import Permission
from guanxi.shipments import service as shipments
from guanxi.shipments.schemas import ShipmentCreate
from tests.conftest import PASSWORD
from tests.helpers import credit_code

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def _z(moment: datetime) -> str:
    """How the API writes a UTC instant."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ship(db: Session, actor: Any, customer_id: int, no: str, **kw: Any) -> Any:
    return shipments.create_shipment(
        db, shipment_in=ShipmentCreate(waybill_no=no, customer_id=customer_id, **kw), actor=actor
    )


def test_the_whole_body_masked(
    client: Any, login: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    _, headers = login("agent")
    owner = make_user("sales", display_name="客户经理 周")
    code = credit_code()
    customer = make_customer(
        kind="enterprise",
        name="杭州顺达物流有限公司",
        phones=["13912345678", "0571-88881234"],
        email="ops@shunda.example.com",
        credit_code=code,
        addresses=[{"line": "杭州市临平区南苑街道星光街1号"}],
        contacts=[
            {"name": "陈经理", "title": "物流经理", "phone": "13800138000", "is_primary": True},
            {"name": "李会计", "email": "li@shunda.example.com"},
        ],
        tags=["月结客户", "VIP"],
        source="referral",
        industry="电商",
        owner_id=owner.id,
    )
    clerk = make_user("admin")
    # Delivered a day late; damaged and on time; promised yesterday and still on its way.
    late = _ship(
        db,
        clerk,
        customer.id,
        "GX360100",
        service_type="express",
        status="delivered",
        dest_province="上海市",
        dest_city="上海市",
        fee_fen=1200,
        created_at=T0,
        promised_at=T0 + timedelta(days=1),
        delivered_at=T0 + timedelta(days=2),
    )
    damaged = _ship(
        db,
        clerk,
        customer.id,
        "GX360101",
        status="delivered",
        fee_fen=800,
        created_at=T0 + timedelta(hours=1),
        promised_at=T0 + timedelta(days=3),
        delivered_at=T0 + timedelta(days=1),
        is_damaged=True,
    )
    now = clock.now()
    overdue = _ship(
        db,
        clerk,
        customer.id,
        "GX360102",
        status="in_transit",
        fee_fen=500,
        created_at=now - timedelta(days=3),
        promised_at=now - timedelta(days=1),
    )

    resp = client.get(f"/api/v1/customers/{customer.id}", headers=headers)

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    phones = sorted(customer.phones, key=lambda p: p.position)
    contacts = sorted(customer.contacts, key=lambda c: c.position)
    address = customer.addresses[0]
    assert body["customer"] == {
        "id": customer.id,
        "kind": "enterprise",
        "name": "杭州顺达物流有限公司",
        "phone": "139****5678",
        "region": customer.region,
        "industry": "电商",
        "source": "referral",
        "lifecycle_stage": "new",
        "owner": {"id": owner.id, "display_name": "客户经理 周"},
        "tags": ["VIP", "月结客户"],
        "status": "active",
        "created_at": _z(customer.created_at),
        "external_id": None,
        "phones": [
            {"id": phones[0].id, "kind": "mobile", "number": "139****5678"},
            {"id": phones[1].id, "kind": "landline", "number": "0571-****1234"},
        ],
        "email": "o***@shunda.example.com",
        "id_number": None,
        "credit_code": code[:2] + "*" * 12 + code[-4:],
        "addresses": [
            {
                "id": address.id,
                "label": address.label,
                "province": "浙江省",
                "city": "杭州市",
                "district": "临平区",
                "detail": address.detail,
                "division_code": address.division_code,
            }
        ],
        "contacts": [
            {
                "id": contacts[0].id,
                "name": "陈经理",
                "title": "物流经理",
                "phone": "138****8000",
                "email": None,
                "is_primary": True,
            },
            {
                "id": contacts[1].id,
                "name": "李会计",
                "title": None,
                "phone": None,
                "email": "l***@shunda.example.com",
                "is_primary": False,
            },
        ],
        "birthday": None,
        "credit_rating": None,
        "notes": None,
        "language": None,
        "updated_at": _z(customer.updated_at),
        "archived_at": None,
        "version": 1,
    }
    assert body["shipment_stats"] == {
        "count": 3,
        "fee_total_fen": 2500,
        "first_at": _z(T0),
        "last_at": _z(overdue.created_at),
        "late": 1,
        "damaged": 1,
        "lost": 0,
    }

    def row(s: Any, is_late: bool) -> dict[str, Any]:
        return {
            "id": s.id,
            "kind": "waybill",
            "waybill_no": s.waybill_no,
            "customer_id": customer.id,
            "service_type": s.service_type,
            "status": s.status,
            "dest_province": s.dest_province,
            "dest_city": s.dest_city,
            "fee_fen": s.fee_fen,
            "created_at": _z(s.created_at),
            "promised_at": _z(s.promised_at),
            "delivered_at": _z(s.delivered_at) if s.delivered_at else None,
            "is_damaged": s.is_damaged,
            "is_lost": False,
            "is_late": is_late,
        }

    # Newest first; late when delivered after the promise or not delivered past it.
    assert body["recent_shipments"] == [row(overdue, True), row(damaged, False), row(late, True)]
    assert body["recent_shipments"][2]["service_type"] == "express"
    # The record's own audit trail, newest first: its shipments were recorded against it.
    assert [h["action"] for h in body["history"]] == [
        "shipment.created",
        "shipment.created",
        "shipment.created",
        "customer.created",
    ]
    created = body["history"][-1]
    assert created["actor_name"] == "test"
    assert created["after"]["phones"] == ["139****5678", "0571-****1234"]
    # Personal texts are sealed in the log and shown masked (names keep one character).
    assert created["after"]["name"] == "杭**"
    assert created["after"]["addresses"] == ["浙江省杭…"]
    assert created["after"]["contacts"] == ["陈**", "李**"]
    assert "顺达" not in json.dumps(body["history"], ensure_ascii=False)
    assert "88881234" not in resp.text
    assert code not in resp.text
    assert list(body) == ["customer", "shipment_stats", "recent_shipments", "history"]


def test_who_gets_which_answer(client: Any, login: Any, make_user: Any, make_customer: Any) -> None:
    sales, sales_headers = login("sales")
    _, agent_headers = login("agent")
    # Another salesperson's customer (one without an owner is in the pool, seen by sales).
    theirs = make_customer(name="别人的客户", owner_id=make_user("sales").id)
    own = make_customer(name="自己的客户", owner_id=sales.id)

    anonymous = client.get(f"/api/v1/customers/{own.id}")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["code"] == "not_authenticated"
    wrong = {"Authorization": "Bearer not-a-token"}
    assert client.get(f"/api/v1/customers/{own.id}", headers=wrong).status_code == 401
    # Credentials are checked before the path: an anonymous caller learns nothing from 422s.
    assert client.get("/api/v1/customers/0").status_code == 401
    assert client.get("/api/v1/customers/0", headers=wrong).status_code == 401
    bad = client.get("/api/v1/customers/0", headers=agent_headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "path.customer_id"

    missing = client.get("/api/v1/customers/987654321", headers=agent_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found"
    # Without customer.read_all only one's own customers exist.
    hidden = client.get(f"/api/v1/customers/{theirs.id}", headers=sales_headers)
    assert hidden.status_code == 404
    assert hidden.json() == missing.json() | {
        "instance": f"/api/v1/customers/{theirs.id}",
        "request_id": hidden.json()["request_id"],
    }
    assert client.get(f"/api/v1/customers/{own.id}", headers=sales_headers).status_code == 200
    assert client.get(f"/api/v1/customers/{theirs.id}", headers=agent_headers).status_code == 200


def test_a_signed_in_browser_reads_it_with_its_session_cookie(
    client: Any, make_user: Any, make_customer: Any
) -> None:
    user = make_user("agent")
    customer = make_customer(name="浏览器客户")
    signed_in = client.post(
        "/login", data={"username": user.username, "password": PASSWORD, "next": "/customers"}
    )
    assert signed_in.status_code == 200
    resp = client.get(f"/api/v1/customers/{customer.id}")
    assert resp.status_code == 200
    assert resp.json()["customer"]["name"] == "浏览器客户"


def test_require_read_refuses_a_role_without_the_permission(app: Any, login: Any) -> None:
    probe = APIRouter()

    @probe.get("/api/v1/_probe/users")
    async def users(reader: Annotated[Reader, require_read(Permission.user_manage)]) -> str:
        return reader.user.username

    app.include_router(probe)
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        _, agent = login("agent")
        admin, admin_headers = login("admin")
        refused = client.get("/api/v1/_probe/users", headers=agent)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "forbidden"
        assert client.get("/api/v1/_probe/users", headers=admin_headers).json() == admin.username


def test_the_request_session_is_closed_whatever_the_answer(
    app: Any, client: Any, login: Any, make_customer: Any
) -> None:
    _, headers = login("agent")
    customer = make_customer(name="会话客户")
    opened: list[Session] = []
    factory = app.state.sessionmaker

    def tracking() -> Session:
        session: Session = factory()
        opened.append(session)
        return session

    app.state.sessionmaker = tracking
    answers = [
        client.get(f"/api/v1/customers/{customer.id}", headers=headers).status_code,
        client.get("/api/v1/customers/987654321", headers=headers).status_code,
        client.get("/api/v1/customers/0", headers=headers).status_code,
        client.get(f"/api/v1/customers/{customer.id}").status_code,
    ]
    app.state.sessionmaker = factory
    assert answers == [200, 404, 422, 401]
    assert len(opened) == 4
    for session in opened:
        assert not session.in_transaction()
        assert len(session.identity_map) == 0
