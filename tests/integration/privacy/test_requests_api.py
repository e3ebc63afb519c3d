"""Data-subject requests through the JSON API: who may do what, the due date on China's
working calendar, the workflow with its audit trail, the export, the correction and the
deletion."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.privacy.models import Anonymisation, PrivacyRequest
from guanxi.privacy.service import add_working_days, working_calendar, working_days_left

# Monday 29 September 2025, 10:00 in Shanghai: the National Day holiday (1-8 October) and
# the worked Saturday 11 October fall inside the 15 working days.
RECEIVED = datetime(2025, 9, 29, 2, 0, tzinfo=UTC)
DUE = date(2025, 10, 27)


def _body(customer_id: int, kind: str = "access") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "kind": kind,
        "channel": "phone",
        "verification": "phone_callback",
        "details": "来电要求查阅个人信息",
    }


def _actions(db: Session, request_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditEntry.action)
            .where(
                AuditEntry.target_type == "privacy_request",
                AuditEntry.target_id == str(request_id),
            )
            .order_by(AuditEntry.id)
        )
    )


def test_due_date_counts_working_days_on_the_china_calendar() -> None:
    cal = working_calendar()
    assert add_working_days(date(2025, 9, 29), 15, cal) == DUE
    # Plain weekdays would say 20 October: the holiday week moves it a week on.
    assert working_days_left(date(2025, 10, 24), DUE, cal) == 1
    assert working_days_left(DUE, DUE, cal) == 0
    assert working_days_left(date(2025, 10, 29), DUE, cal) == -2


def test_permissions_per_role(client: Any, login: Any, make_customer: Any, db: Session) -> None:
    customer = make_customer()
    _agent, agent = login("agent")
    _sales, sales = login("sales")
    _auditor, auditor = login("auditor")
    _analyst, analyst = login("analyst")
    _dpo, dpo = login("privacy_officer")

    assert client.get("/api/v1/privacy/requests").status_code == 401
    assert client.post("/api/v1/privacy/requests", json=_body(customer.id)).status_code == 401
    for headers in (sales, analyst, auditor):
        resp = client.post("/api/v1/privacy/requests", json=_body(customer.id), headers=headers)
        assert resp.status_code == 403
    assert db.scalars(select(PrivacyRequest)).all() == []

    resp = client.post("/api/v1/privacy/requests", json=_body(customer.id), headers=agent)
    assert resp.status_code == 201
    rid = resp.json()["id"]
    # Agents register; they do not read the register nor work requests.
    assert client.get("/api/v1/privacy/requests", headers=agent).status_code == 403
    assert client.get(f"/api/v1/privacy/requests/{rid}", headers=analyst).status_code == 403
    assert client.get(f"/api/v1/privacy/requests/{rid}", headers=auditor).status_code == 200
    for headers in (agent, auditor):
        resp = client.post(
            f"/api/v1/privacy/requests/{rid}/start", json={"version": 1}, headers=headers
        )
        assert resp.status_code == 403
        export = client.get(f"/api/v1/privacy/requests/{rid}/export", headers=headers)
        assert export.status_code == 403
    assert db.get(PrivacyRequest, rid).status == "received"  # type: ignore[union-attr]
    assert _actions(db, rid) == ["privacy.request_registered"]
    resp = client.post(f"/api/v1/privacy/requests/{rid}/start", json={"version": 1}, headers=dpo)
    assert (resp.status_code, resp.json()["status"]) == (200, "in_progress")
    assert client.get("/api/v1/privacy/requests/999999", headers=dpo).status_code == 404


def test_bad_input_is_422_naming_the_field(client: Any, login: Any, make_customer: Any) -> None:
    customer = make_customer()
    _dpo, dpo = login("privacy_officer")
    bad = {**_body(customer.id), "kind": "erase_everything"}
    resp = client.post("/api/v1/privacy/requests", json=bad, headers=dpo)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["kind"]
    resp = client.post(
        "/api/v1/privacy/requests", json={**_body(customer.id), "details": "x" * 2001}, headers=dpo
    )
    assert [e["field"] for e in resp.json()["errors"]] == ["details"]
    resp = client.post("/api/v1/privacy/requests", json=_body(999_999), headers=dpo)
    assert resp.status_code == 404
    rid = client.post("/api/v1/privacy/requests", json=_body(customer.id), headers=dpo).json()["id"]
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/reject", json={"reason": " ", "version": 1}, headers=dpo
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["reason"]
    resp = client.put("/api/v1/privacy/policy", json={"due_working_days": 0}, headers=dpo)
    assert [e["field"] for e in resp.json()["errors"]] == ["due_working_days"]
    resp = client.get("/api/v1/privacy/requests?status=done", headers=dpo)
    assert resp.status_code == 422
    resp = client.get(f"/api/v1/privacy/requests/{rid}/export?format=pdf", headers=dpo)
    assert resp.status_code == 422


def test_workflow_due_date_reject_and_policy(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer()
    _dpo, dpo = login("privacy_officer")
    with clock.frozen(RECEIVED):
        resp = client.post(
            "/api/v1/privacy/requests", json=_body(customer.id, "objection"), headers=dpo
        )
    assert resp.status_code == 201
    read = resp.json()
    assert (read["status"], read["due_on"], read["customer_name"]) == (
        "received",
        "2025-10-27",
        "张三丰",
    )
    rid = read["id"]
    with clock.frozen(datetime(2025, 10, 28, 2, 0, tzinfo=UTC)):
        page = client.get("/api/v1/privacy/requests?overdue=true", headers=dpo).json()
        assert [(r["id"], r["overdue"], r["working_days_left"]) for r in page["items"]] == [
            (rid, True, -1)
        ]
    # A stale version is refused; a rejection needs its reason and closes the request.
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/reject",
        json={"reason": "无法核实身份", "version": 9},
        headers=dpo,
    )
    assert resp.status_code == 409
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/reject",
        json={"reason": "无法核实身份", "version": 1},
        headers=dpo,
    )
    assert (resp.json()["status"], resp.json()["resolution"]) == ("rejected", "无法核实身份")
    resp = client.post(f"/api/v1/privacy/requests/{rid}/complete", json={"version": 2}, headers=dpo)
    assert resp.status_code == 409
    assert _actions(db, rid) == ["privacy.request_registered", "privacy.request_rejected"]

    resp = client.put(
        "/api/v1/privacy/policy", json={"due_working_days": 10, "warn_working_days": 2}, headers=dpo
    )
    assert resp.status_code == 200
    with clock.frozen(RECEIVED):
        resp = client.post("/api/v1/privacy/requests", json=_body(customer.id), headers=dpo)
    assert resp.json()["due_on"] == "2025-10-20"
    page = client.get("/api/v1/privacy/requests?status=rejected&kind=objection", headers=dpo)
    assert [r["id"] for r in page.json()["items"]] == [rid]


def test_access_request_export_is_audited(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer(phones=["+8613912340000"], email="li@example.com")
    dpo_user, dpo = login("privacy_officer")
    rid = client.post("/api/v1/privacy/requests", json=_body(customer.id), headers=dpo).json()["id"]

    resp = client.get(f"/api/v1/privacy/requests/{rid}/export?format=json", headers=dpo)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-disposition"] == (
        f'attachment; filename="customer-{customer.id}-request-{rid}.json"'
    )
    doc = json.loads(resp.content)
    assert doc["tables"]["customer"][0]["email_enc"] == "li@example.com"
    assert [p["phone_enc"] for p in doc["tables"]["customer_phone"]] == ["+8613912340000"]

    resp = client.get(f"/api/v1/privacy/requests/{rid}/export?format=csv", headers=dpo)
    assert resp.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    assert {"customer.csv", "customer_phone.csv", "privacy_request.csv"} <= set(names)

    entries = db.execute(
        select(AuditEntry.action, AuditEntry.target_id, AuditEntry.actor_id)
        .where(
            AuditEntry.action.in_(["privacy.request_exported", "customer.personal_data_exported"])
        )
        .order_by(AuditEntry.id)
    ).all()
    assert (
        entries
        == [
            ("privacy.request_exported", str(rid), dpo_user.id),
            ("customer.personal_data_exported", str(customer.id), dpo_user.id),
        ]
        * 2
    )
    assert db.get(PrivacyRequest, rid).exported_at is not None  # type: ignore[union-attr]
    # A deletion request is not answered with an export.
    did = client.post(
        "/api/v1/privacy/requests", json=_body(customer.id, "deletion"), headers=dpo
    ).json()["id"]
    assert client.get(f"/api/v1/privacy/requests/{did}/export", headers=dpo).status_code == 409


def test_correction_goes_through_the_customers_service(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer()
    _dpo, dpo = login("privacy_officer")
    rid = client.post(
        "/api/v1/privacy/requests", json=_body(customer.id, "correction"), headers=dpo
    ).json()["id"]
    # The customers service's validation answers, naming the field.
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/correction",
        json={"changes": {"email": "not-an-address"}, "version": 1},
        headers=dpo,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["changes.email"]
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/correction",
        json={"changes": {"name": "张三", "region": "华南"}, "version": 1},
        headers=dpo,
    )
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["corrected_fields"]) == (
        "in_progress",
        ["name", "region"],
    )
    db.expire_all()
    fresh = db.get(Customer, customer.id)
    assert (fresh.name, fresh.region) == ("张三", "华南")  # type: ignore[union-attr]
    updates = db.scalars(
        select(AuditEntry.action).where(
            AuditEntry.target_type == "customer", AuditEntry.target_id == str(customer.id)
        )
    ).all()
    assert updates[-1] == "customer.updated"
    resp = client.post(
        f"/api/v1/privacy/requests/{rid}/complete",
        json={"note": "已更正", "version": 2},
        headers=dpo,
    )
    assert (resp.json()["status"], resp.json()["resolution"]) == ("completed", "已更正")
    assert _actions(db, rid) == [
        "privacy.request_registered",
        "privacy.request_corrected",
        "privacy.request_completed",
    ]


def test_completing_a_deletion_anonymises_the_customer(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer(phones=["+8613800001234"], notes="VIP 备注")
    _dpo, dpo = login("privacy_officer")
    rid = client.post(
        "/api/v1/privacy/requests", json=_body(customer.id, "deletion"), headers=dpo
    ).json()["id"]
    resp = client.post(f"/api/v1/privacy/requests/{rid}/complete", json={"version": 1}, headers=dpo)
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["customer_name"]) == ("completed", "***")
    db.expire_all()
    fresh = db.get(Customer, customer.id)
    assert (fresh.name, fresh.notes, fresh.phones, fresh.status) == ("***", None, [], "archived")  # type: ignore[union-attr]
    mark = db.get(Anonymisation, customer.id)
    assert mark is not None
    assert mark.reason == f"privacy request #{rid}"
    after = db.scalar(
        select(AuditEntry.after).where(AuditEntry.action == "privacy.request_completed")
    )
    assert after == {"status": "completed", "anonymised": 1}


def test_objection_withdraws_contact_consents(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    from guanxi.audit.service import Actor
    from guanxi.customers.consent import Purpose, consents_of, record_consent

    customer = make_customer()
    record_consent(
        db,
        customer_id=customer.id,
        purpose=Purpose.marketing_sms,
        granted=True,
        source="web",
        actor=Actor.system("t"),
    )
    db.commit()
    _dpo, dpo = login("privacy_officer")
    rid = client.post(
        "/api/v1/privacy/requests", json=_body(customer.id, "objection"), headers=dpo
    ).json()["id"]
    resp = client.post(f"/api/v1/privacy/requests/{rid}/complete", json={"version": 1}, headers=dpo)
    assert resp.status_code == 200
    db.expire_all()
    assert {s.purpose.value: s.granted for s in consents_of(db, customer.id)} == {
        "marketing_sms": False,
        "marketing_email": None,
        "survey": False,
        "third_party": None,
        "cross_border": None,
    }
    after = db.scalar(
        select(AuditEntry.after).where(AuditEntry.action == "privacy.request_completed")
    )
    assert after == {"status": "completed", "withdrawn": ["marketing_sms", "survey"]}
