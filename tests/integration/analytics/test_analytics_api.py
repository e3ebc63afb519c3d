"""The analytics API and the 360 portrait: exact figures from stored results, the role
matrix, queued runs, the policy's validation and audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.models import (
    AnalyticsRun,
    AnalyticsStep,
    CustomerChurn,
    CustomerClass,
    CustomerClv,
)
from guanxi.audit.models import AuditEntry

NOW = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)


def _results(db: Session, customer_id: int, *, segment: str = "champions") -> int:
    """A succeeded rfm / clv / churn run holding one customer's results."""
    run = AnalyticsRun(as_of=NOW, status="succeeded", trigger="cli")
    db.add(run)
    db.flush()
    for step in ("rfm", "clv", "churn"):
        db.add(AnalyticsStep(run_id=run.id, step=step, status="succeeded", input_key="k"))
    db.add(
        CustomerClass(
            run_id=run.id,
            customer_id=customer_id,
            last_shipment_at=datetime(2026, 6, 27, 2, 0, tzinfo=UTC),
            recency_days=3,
            frequency=11,
            monetary_fen=42_000,
            r=5,
            f=4,
            m=3,
            segment=segment,
            frequency_class="medium",
            value_tier="high",
            relationship="loyal",
        )
    )
    db.add(
        CustomerClv(
            run_id=run.id,
            customer_id=customer_id,
            frequency=10.0,
            recency=40.0,
            age=52.0,
            p_alive=0.93,
            expected_purchases=6.5,
            expected_spend_fen=3_800,
            clv_fen=24_100,
        )
    )
    db.add(
        CustomerChurn(
            run_id=run.id,
            customer_id=customer_id,
            risk=0.71,
            band="high",
            reasons=json.dumps([{"feature": "breaches_90", "value": 2, "effect": 0.9}]),
            action="return_visit",
        )
    )
    db.flush()
    return run.id


def test_portrait_api_gives_classes_with_why_clv_and_churn(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer()
    _results(db, customer.id)
    _user, headers = login("agent")
    resp = client.get(
        f"/api/v1/customers/{customer.id}/analytics",
        headers=headers | {"Accept-Language": "en"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["classes"] == {
        "r": 5,
        "f": 4,
        "m": 3,
        "segment": "champions",
        "relationship": "loyal",
        "frequency_class": "medium",
        "value_tier": "high",
        "recency_days": 3,
        "frequency": 11,
        "monetary_fen": 42_000,
        "last_shipment_at": "2026-06-27T02:00:00Z",
    }
    assert body["why"] == [
        "R 5: last shipment 3 days ago",
        "F 4: 11 shipments in 12 months",
        "M 3: ¥420 in 12 months",
    ]
    assert body["clv"] == {
        "p_alive": 0.93,
        "expected_purchases": 6.5,
        "expected_spend_fen": 3_800,
        "clv_fen": 24_100,
    }
    assert body["churn"] == {
        "risk": 0.71,
        "band": "high",
        "action": "return_visit",
        "reasons": [
            {
                "feature": "breaches_90",
                "value": 2,
                "effect": 0.9,
                "label": "Tickets with a missed service level, last 90 days",
            }
        ],
    }


def test_portrait_why_in_chinese(client: Any, login: Any, make_customer: Any, db: Session) -> None:
    customer = make_customer()
    _results(db, customer.id)
    _user, headers = login("analyst")
    resp = client.get(
        f"/api/v1/customers/{customer.id}/analytics",
        headers=headers | {"Accept-Language": "zh-CN"},
    )
    assert resp.json()["why"] == [
        "R 5：最近一次寄件在 3 天前",
        "F 4：12 个月内寄件 11 次",
        "M 3：12 个月内 ¥420",
    ]


def test_sales_see_only_their_own_customers_portrait(
    client: Any, login: Any, make_customer: Any, make_user: Any, db: Session
) -> None:
    # Another account manager's customer (one without an owner is in the pool, which
    # salespeople see).
    customer = make_customer(owner_id=make_user("sales").id)
    _results(db, customer.id)
    _user, headers = login("sales")
    resp = client.get(f"/api/v1/customers/{customer.id}/analytics", headers=headers)
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("role", "read", "manage"),
    [
        ("admin", 200, 202),
        ("manager", 200, 202),
        ("analyst", 200, 202),
        ("agent", 403, 403),
        ("sales", 403, 403),
        ("auditor", 403, 403),
    ],
)
def test_role_matrix_for_runs(client: Any, login: Any, role: str, read: int, manage: int) -> None:
    _user, headers = login(role)
    assert client.get("/api/v1/analytics/runs", headers=headers).status_code == read
    resp = client.post("/api/v1/analytics/runs", json={"steps": ["rfm"]}, headers=headers)
    assert resp.status_code == manage


def test_a_run_request_is_queued_once_and_audited(client: Any, login: Any, db: Session) -> None:
    user, headers = login("analyst")
    first = client.post("/api/v1/analytics/runs", json={"steps": ["rfm"]}, headers=headers)
    again = client.post("/api/v1/analytics/runs", json={}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "queued"
    assert again.json()["id"] == first.json()["id"]
    entries = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "analytics.run_requested")
    ).all()
    assert [(e.actor_id, e.target_id) for e in entries] == [(user.id, str(first.json()["id"]))]


def test_an_unknown_step_is_named(client: Any, login: Any) -> None:
    _user, headers = login("analyst")
    resp = client.post(
        "/api/v1/analytics/runs",
        json={"steps": ["nope"]},
        headers=headers | {"Accept-Language": "en"},
    )
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert error["field"] == "steps"
    assert error["code"] == "value_unknown"
    assert "rfm" in error["message"]


def test_policy_round_trip_and_audit(client: Any, login: Any, db: Session) -> None:
    _user, headers = login("manager")
    policy = client.get("/api/v1/analytics/policy", headers=headers).json()
    assert policy["rfm"]["window_days"] == 365
    policy["classes"]["frequency_high"] = 30
    resp = client.put("/api/v1/analytics/policy", json=policy, headers=headers)
    assert resp.status_code == 200
    assert client.get("/api/v1/analytics/policy", headers=headers).json() == policy
    (entry,) = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "analytics.policy_saved")
    ).all()
    assert entry.after is not None
    assert entry.after["classes"]["frequency_high"] == 30


def test_a_policy_with_a_gap_in_the_grid_is_refused(client: Any, login: Any) -> None:
    _user, headers = login("manager")
    policy = client.get("/api/v1/analytics/policy", headers=headers).json()
    policy["rfm"]["rules"] = [r for r in policy["rfm"]["rules"] if r["name"] != "lost"]
    resp = client.put("/api/v1/analytics/policy", json=policy, headers=headers)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "rfm"


def test_segment_list_pages_by_customer(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    a, b, c = make_customer("甲"), make_customer("乙"), make_customer("丙")
    run = _results(db, a.id)
    for other, segment in ((b, "champions"), (c, "lost")):
        db.add(
            CustomerClass(
                run_id=run,
                customer_id=other.id,
                recency_days=1,
                frequency=1,
                monetary_fen=100,
                r=1,
                f=1,
                m=1,
                segment=segment,
                frequency_class="low",
                value_tier="low",
                relationship="at_risk",
            )
        )
    db.flush()
    _user, headers = login("analyst")
    page = client.get(
        "/api/v1/analytics/segments?segment=champions&limit=1", headers=headers
    ).json()
    assert [i["customer_id"] for i in page["items"]] == [a.id]
    rest = client.get(
        f"/api/v1/analytics/segments?segment=champions&limit=1&cursor={page['next_cursor']}",
        headers=headers,
    ).json()
    assert [i["name"] for i in rest["items"]] == ["乙"]
    assert rest["next_cursor"] is None


def test_the_360_page_shows_the_portrait(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    customer = make_customer()
    _results(db, customer.id, segment="at_risk")
    user, _headers = login("agent")
    client.post("/login", data={"username": user.username, "password": "correct horse battery"})
    html = client.get(f"/customers/{customer.id}", headers={"Accept-Language": "en"}).text
    assert 'id="h-portrait"' in html
    assert "R 5: last shipment 3 days ago" in html
    assert '<span class="pill segment-at_risk">At risk</span>' in html
    assert "¥241.00" in html
    assert "71% · High" in html
    assert "<li>Tickets with a missed service level, last 90 days: 2</li>" in html


def _alert(db: Session, ticket_ids: list[int]) -> int:
    from datetime import date

    from guanxi.analytics.models import Alert

    run = AnalyticsRun(as_of=NOW, status="succeeded", trigger="cli")
    db.add(run)
    db.flush()
    alert = Alert(
        run_id=run.id,
        kind="complaints",
        dimension="region",
        member="广东省",
        day=date(2026, 6, 30),
        observed=9.0,
        expected=1.5,
        evidence=json.dumps(ticket_ids),
    )
    db.add(alert)
    db.flush()
    return alert.id


def test_alerts_are_for_supervisors_and_acknowledged_once(
    client: Any, login: Any, db: Session
) -> None:
    alert_id = _alert(db, [])
    _agent, agent_headers = login("agent")
    assert client.get("/api/v1/analytics/alerts", headers=agent_headers).status_code == 403
    manager, headers = login("manager")
    (item,) = client.get("/api/v1/analytics/alerts?open_only=true", headers=headers).json()
    assert (item["id"], item["member"], item["observed"], item["evidence"]) == (
        alert_id,
        "广东省",
        9.0,
        [],
    )
    done = client.post(f"/api/v1/analytics/alerts/{alert_id}/acknowledge", headers=headers)
    assert done.json()["acknowledged_by"] == manager.id
    client.post(f"/api/v1/analytics/alerts/{alert_id}/acknowledge", headers=headers)
    assert client.get("/api/v1/analytics/alerts?open_only=true", headers=headers).json() == []
    entries = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "analytics.alert_acknowledged")
    ).all()
    assert len(entries) == 1


def test_alert_page_lists_the_tickets_behind_it(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    from guanxi.tickets.models import Ticket

    customer = make_customer()
    ticket = Ticket(
        type="complaint",
        channel="hotline",
        customer_id=customer.id,
        subject="快件三天没动",
        status="new",
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(ticket)
    db.flush()
    alert_id = _alert(db, [ticket.id])
    user, _headers = login("manager")
    client.post("/login", data={"username": user.username, "password": "correct horse battery"})
    html = client.get(f"/analytics/alerts/{alert_id}", headers={"Accept-Language": "en"}).text
    assert "Complaints · 广东省 · 2026-06-30" in html
    assert f'<a href="/tickets/{ticket.id}">{ticket.id}</a></td><td>快件三天没动</td>' in html
    listing = client.get("/analytics/alerts", headers={"Accept-Language": "en"}).text
    assert f'<a href="/analytics/alerts/{alert_id}">2026-06-30</a>' in listing


def test_at_risk_customers_come_forward_on_the_due_list_and_the_api(
    client: Any, login: Any, make_customer: Any, make_user: Any, db: Session
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from guanxi.customers.models import Customer
    from guanxi.interactions.service import due_contacts

    owner, headers = login("sales")
    risky, calm = make_customer("危险客户"), make_customer("安心客户")
    db.execute(
        update(Customer)
        .where(Customer.id.in_([risky.id, calm.id]))
        .values(owner_id=owner.id, created_at=NOW - timedelta(days=30))
    )
    run = _results(db, risky.id)  # risk 0.71, band high
    db.add(CustomerChurn(run_id=run, customer_id=calm.id, risk=0.1, band="low", reasons="[]"))
    db.flush()
    due = due_contacts(session=db, owner_id=owner.id, today=(NOW + timedelta(days=1)).date())
    assert [(d.customer_id, d.every_days, d.churn_risk) for d in due] == [(risky.id, 14, 0.71)]
    body = client.get("/api/v1/analytics/at-risk", headers=headers).json()
    assert [(a["customer_id"], a["risk"], a["action"]) for a in body] == [
        (risky.id, 0.71, "return_visit")
    ]
    other, other_headers = login("sales")
    assert client.get("/api/v1/analytics/at-risk", headers=other_headers).json() == []
