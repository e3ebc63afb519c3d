"""The contracts' JSON API: permissions per role, exact bodies, refusals naming the field
(never a 500), documents, the report and its CSV, the policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
from guanxi.core import clock
from guanxi.shipments.models import Shipment

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _count(db: Session, model: Any = Contract) -> int:
    return db.scalar(select(func.count(model.id))) or 0


def _body(customer_id: int, **kw: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "title": "年度快递服务协议",
        "discount_bp": 1250,
        "commit_shipments": 3000,
        "commit_revenue_fen": 5_000_000,
        "start_date": "2026-11-01",
        "end_date": "2027-10-31",
        **kw,
    }


def test_roles_create_read_and_write(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    seller, s_headers = login("sales", display_name="王销售")
    other, o_headers = login("sales")
    _agent, a_headers = login("agent")
    _analyst, an_headers = login("analyst")
    _manager, m_headers = login("manager")
    firm = make_customer("杭州云栖电子商务有限公司", kind="enterprise", owner_id=seller.id)

    with clock.frozen(NOW):
        for headers in (a_headers, an_headers):
            resp = client.post("/api/v1/contracts", json=_body(firm.id), headers=headers)
            assert resp.status_code == 403
        assert _count(db) == 0
        resp = client.post("/api/v1/contracts", json=_body(firm.id), headers=s_headers)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    cid = created["id"]
    assert {k: v for k, v in created.items() if k not in ("created_at", "updated_at")} == {
        "id": cid,
        "number": "CT-202611-0001",
        "customer_id": firm.id,
        "customer_name": "杭州云栖电子商务有限公司",
        "owner_id": seller.id,
        "owner_name": "王销售",
        "title": "年度快递服务协议",
        "status": "draft",
        "discount_bp": 1250,
        "commit_shipments": 3000,
        "commit_revenue_fen": 5_000_000,
        "start_date": "2026-11-01",
        "end_date": "2027-10-31",
        "auto_renew": False,
        "reminder_days": None,
        "renewal_of_id": None,
        "renewed_by_id": None,
        "notes": None,
        "ended_on": None,
        "activated_at": None,
        "version": 1,
    }
    # Whoever can see the customer sees the contract: the owner, agents, analysts,
    # managers; not another salesperson.
    for headers in (s_headers, a_headers, an_headers, m_headers):
        listed = client.get("/api/v1/contracts", headers=headers).json()
        assert (listed["total"], [c["id"] for c in listed["items"]]) == (1, [cid])
        assert client.get(f"/api/v1/contracts/{cid}", headers=headers).status_code == 200
    assert client.get("/api/v1/contracts", headers=o_headers).json() == {"items": [], "total": 0}
    assert client.get(f"/api/v1/contracts/{cid}", headers=o_headers).status_code == 404

    resp = client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 1}, headers=o_headers)
    assert resp.status_code == 404
    resp = client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 1}, headers=a_headers)
    assert resp.status_code == 403
    resp = client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 1}, headers=s_headers)
    assert (resp.status_code, resp.json()["status"], resp.json()["version"]) == (200, "active", 2)

    # Amend: the reason is required, then the change is in the history.
    update = {k: v for k, v in _body(firm.id).items() if k != "customer_id"}
    update.update(discount_bp=1500, version=2)
    resp = client.put(f"/api/v1/contracts/{cid}", json=update, headers={**s_headers, **ZH})
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("reason", "请说明变更生效合同的原因")
    ]
    update["reason"] = "月发货量提升"
    resp = client.put(f"/api/v1/contracts/{cid}", json=update, headers=s_headers)
    assert (resp.status_code, resp.json()["discount_bp"]) == (200, 1500)
    history = client.get(f"/api/v1/contracts/{cid}/amendments", headers=a_headers).json()
    assert [(h["changes"], h["reason"], h["actor_name"]) for h in history] == [
        ({"discount_bp": [1250, 1500]}, "月发货量提升", "王销售")
    ]
    # A manager may change anyone's contract; another salesperson may not even see it.
    update.update(version=3, discount_bp=1600, reason="经理调整")
    resp = client.put(f"/api/v1/contracts/{cid}", json=update, headers=o_headers)
    assert resp.status_code == 404
    resp = client.put(f"/api/v1/contracts/{cid}", json=update, headers=m_headers)
    assert (resp.status_code, resp.json()["version"]) == (200, 4)
    assert _count(db, ContractAmendment) == 2


def test_a_seller_may_not_change_a_contract_someone_else_owns(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    seller, s_headers = login("sales")
    manager, m_headers = login("manager")
    firm = make_customer("宁波港通物流有限公司", kind="enterprise", owner_id=seller.id)
    resp = client.post(
        "/api/v1/contracts", json=_body(firm.id, owner_id=manager.id), headers=m_headers
    )
    cid = resp.json()["id"]
    update = {k: v for k, v in _body(firm.id).items() if k != "customer_id"}
    update.update(discount_bp=0, version=1)
    resp = client.put(f"/api/v1/contracts/{cid}", json=update, headers=s_headers)
    assert resp.status_code == 403
    assert db.get(Contract, cid).discount_bp == 1250  # type: ignore[union-attr]
    resp = client.post(
        "/api/v1/contracts", json=_body(firm.id, owner_id=manager.id), headers=s_headers
    )
    assert resp.status_code == 403
    assert _count(db) == 1


def test_bad_input_is_422_naming_the_field(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    seller, headers = login("sales")
    person = make_customer("张三", kind="individual", owner_id=seller.id)
    firm = make_customer("上海浦江贸易有限公司", kind="enterprise", owner_id=seller.id)
    cases = [
        (
            _body(person.id),
            [("customer_id", "Contracts are signed with enterprises and public bodies only")],
        ),
        (
            _body(firm.id, end_date="2026-10-01"),
            [("end_date", "The end date must be after the start date")],
        ),
        (_body(firm.id, discount_bp=10_001), [("discount_bp", "Must be at most 10000")]),
        (_body(firm.id, commit_shipments=0), [("commit_shipments", "Must be at least 1")]),
        (_body(firm.id, start_date="1999-12-31"), [("start_date", "Must be at least 2000-01-01")]),
        (
            _body(2**63),
            [("customer_id", "Must be at most 9223372036854775807")],
        ),
        (_body(firm.id, title="  "), [("title", "Too short")]),
        (_body(firm.id, reminder_days=400), [("reminder_days", "Must be at most 365")]),
    ]
    for body, expected in cases:
        resp = client.post("/api/v1/contracts", json=body, headers={**headers, **EN})
        assert resp.status_code == 422, body
        assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == expected
    resp = client.get("/api/v1/contracts/report?month=2026-13", headers={**headers, **EN})
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("month", "Give a month like 2026-11")
    ]
    cid = client.post("/api/v1/contracts", json=_body(firm.id), headers=headers).json()["id"]
    resp = client.post(
        f"/api/v1/contracts/{cid}/terminate", json={"reason": "x", "version": 1}, headers=headers
    )
    assert resp.status_code == 409
    resp = client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 7}, headers=headers)
    assert resp.status_code == 409
    assert _count(db) == 1


def test_documents_upload_download_and_refusals(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    seller, s_headers = login("sales")
    _other, o_headers = login("sales")
    _agent, a_headers = login("agent")
    firm = make_customer("苏州工业园区精密制造有限公司", kind="enterprise", owner_id=seller.id)
    cid = client.post("/api/v1/contracts", json=_body(firm.id), headers=s_headers).json()["id"]
    url = f"/api/v1/contracts/{cid}/documents"

    resp = client.post(
        url, files={"file": ("签约版.pdf", PDF, "application/pdf")}, headers=a_headers
    )
    assert resp.status_code == 403
    resp = client.post(url, files={"file": ("x.pdf", PDF, "application/pdf")}, headers=o_headers)
    assert resp.status_code == 404
    resp = client.post(
        url,
        files={"file": ("run.pdf", b"MZ\x90\x00" * 40, "application/pdf")},
        headers={**s_headers, **EN},
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["file"]
    assert _count(db, ContractDocument) == 0

    resp = client.post(
        url, files={"file": ("../签约版.pdf", PDF, "application/pdf")}, headers=s_headers
    )
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert (doc["filename"], doc["content_type"], doc["size_bytes"]) == (
        "签约版.pdf",
        "application/pdf",
        len(PDF),
    )
    listed = client.get(url, headers=a_headers).json()
    assert [d["id"] for d in listed] == [doc["id"]]
    got = client.get(doc["download_url"], headers=a_headers)
    assert (got.status_code, got.content) == (200, PDF)
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["cache-control"] == "private, no-cache"
    assert client.get(doc["download_url"], headers=o_headers).status_code == 404
    png = client.post(url, files={"file": ("scan.png", PNG, "image/png")}, headers=s_headers)
    assert png.status_code == 201


def test_report_csv_and_policy(client: Any, login: Any, db: Session, make_customer: Any) -> None:
    seller, s_headers = login("sales")
    _manager, m_headers = login("manager")
    firm = make_customer("广州天河跨境电商有限公司", kind="enterprise", owner_id=seller.id)
    body = _body(firm.id, start_date="2026-10-01", end_date="2027-09-30", commit_revenue_fen=None)
    with clock.frozen(NOW):
        cid = client.post("/api/v1/contracts", json=body, headers=s_headers).json()["id"]
    client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 1}, headers=s_headers)
    for n in range(3):
        db.add(
            Shipment(
                waybill_no=f"CTAPI{n:05d}",
                customer_id=firm.id,
                fee_fen=2000,
                created_at=datetime(2026, 10, 10, 4, 0, tzinfo=UTC),
            )
        )
    db.commit()
    with clock.frozen(NOW):
        resp = client.get("/api/v1/contracts/report?month=2026-10", headers=s_headers)
        csv_resp = client.get("/api/v1/contracts/report.csv?month=2026-10", headers=s_headers)
        volume = client.get(f"/api/v1/contracts/{cid}/volume", headers=s_headers)
    assert resp.status_code == 200
    (row,) = resp.json()
    assert (row["shipments"], row["due_shipments"], row["shipments_pct"], row["below"]) == (
        3,
        3000,
        0.1,
        True,
    )
    assert csv_resp.headers["content-disposition"] == 'attachment; filename="contracts-2026-10.csv"'
    lines = csv_resp.content.decode("utf-8-sig").splitlines()
    assert lines[1].startswith("CT-202611-0001,")
    assert [r["month"] for r in volume.json()] == ["2026-11", "2026-10"]
    assert volume.json()[0]["days_in_force"] == 20

    assert client.get("/api/v1/contracts/policy", headers=s_headers).json() == {"reminder_days": 30}
    resp = client.put("/api/v1/contracts/policy", json={"reminder_days": 45}, headers=s_headers)
    assert resp.status_code == 403
    resp = client.put("/api/v1/contracts/policy", json={"reminder_days": 0}, headers=m_headers)
    assert resp.status_code == 422
    resp = client.put("/api/v1/contracts/policy", json={"reminder_days": 45}, headers=m_headers)
    assert resp.json() == {"reminder_days": 45}
    assert client.get("/api/v1/contracts/policy", headers=s_headers).json() == {"reminder_days": 45}


def test_terminate_and_renew_through_the_api(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    seller, headers = login("sales")
    firm = make_customer("深圳南山科技有限公司", kind="enterprise", owner_id=seller.id)
    body = _body(firm.id, start_date="2026-01-01", end_date="2026-12-31")
    cid = client.post("/api/v1/contracts", json=body, headers=headers).json()["id"]
    client.post(f"/api/v1/contracts/{cid}/activate", json={"version": 1}, headers=headers)
    resp = client.post(f"/api/v1/contracts/{cid}/renew", json={}, headers=headers)
    assert resp.status_code == 201
    renewal = resp.json()
    assert (renewal["start_date"], renewal["end_date"], renewal["renewal_of_id"]) == (
        "2027-01-01",
        "2027-12-31",
        cid,
    )
    assert (
        client.get(f"/api/v1/contracts/{cid}", headers=headers).json()["renewed_by_id"]
        == renewal["id"]
    )
    resp = client.post(
        f"/api/v1/contracts/{cid}/terminate",
        json={"reason": "客户业务调整", "ended_on": "2026-06-30", "version": 2},
        headers=headers,
    )
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["ended_on"]) == ("terminated", "2026-06-30")
    resp = client.post(
        f"/api/v1/contracts/{cid}/terminate",
        json={"reason": "", "version": 3},
        headers={**headers, **EN},
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["reason"]
