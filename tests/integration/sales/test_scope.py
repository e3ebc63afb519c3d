"""Row-level scope on the pipeline (issue #8): a salesperson or sales manager scoped to
regions sees, of what their role shows, only the opportunities of customers in those
regions and the leads without a customer that they own - in the lists, on the board, in
the forecast and its CSV, in the stage figures; every other opportunity answers 404 and
stays as it was, on the API and on the pages."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi import domains
from guanxi.audit.models import AuditEntry
from guanxi.notify.models import Notification
from guanxi.sales import forecast as figures
from guanxi.sales import service
from guanxi.sales.models import Opportunity
from guanxi.security.scope import set_scope
from tests.conftest import PASSWORD
from tests.integration.sales.conftest import Crew


def _token(client: Any, user: Any) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@dataclass
class Book:
    """The customers inside (广东) and outside (北京) the scope and the opportunities."""

    inside: int
    outside: int
    opp: dict[str, Opportunity]


@pytest.fixture
def book(db: Session, crew: Crew, enter: Any, make_customer: Any) -> Book:
    inside = make_customer("广州范围内客户", region="广东省广州市").id
    outside = make_customer("北京范围外客户", region="北京市").id
    opp = {
        # The member's, of a customer inside: seen.
        "A": enter(
            crew.member,
            "广州-李的机会",
            customer_id=inside,
            expected_revenue=100_000,
            expected_close=date(2027, 1, 10),
        ),
        # The member's, of a customer outside: not seen although theirs.
        "B": enter(
            crew.member,
            "北京-李的机会",
            customer_id=outside,
            expected_revenue=900_000,
            expected_close=date(2027, 1, 12),
        ),
        # The member's lead without a customer: seen (their own).
        "C": enter(crew.member, "李的网站线索", expected_revenue=20_000),
        # A lead without a customer in the pool: nobody's, so outside every scope.
        "D": enter(crew.manager, "公海网站线索", unowned=True, expected_revenue=70_000),
        # Pool leads of a customer inside and one outside.
        "E": enter(
            crew.manager, "广州-公海线索", unowned=True, customer_id=inside, expected_revenue=30_000
        ),
        "F": enter(
            crew.manager,
            "北京-公海线索",
            unowned=True,
            customer_id=outside,
            expected_revenue=50_000,
        ),
        # A colleague's, of the customer inside: the manager's share.
        "G": enter(
            crew.colleague,
            "广州-赵的机会",
            customer_id=inside,
            expected_revenue=40_000,
            expected_close=date(2027, 2, 1),
        ),
    }
    for user in (crew.member, crew.manager):
        set_scope(db, user_id=user.id, regions=["广东"], team_ids=[], actor=crew.admin)
    return Book(inside, outside, opp)


def _opportunity_audits(db: Session) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.target_type == "opportunity")
        )
        or 0
    )


def _titles(book: Book, *keys: str) -> set[str]:
    return {book.opp[k].title for k in keys}


def test_a_scoped_seller_sees_exactly_the_opportunities_inside(
    client: Any, db: Session, crew: Crew, book: Book
) -> None:
    def seen(user: Any, query: str = "") -> set[str]:
        resp = client.get(f"/api/v1/sales/opportunities{query}", headers=_token(client, user))
        assert resp.status_code == 200, resp.text
        return {o["title"] for o in resp.json()}

    assert seen(crew.member) == _titles(book, "A", "C", "E")
    assert seen(crew.member, f"?customer_id={book.outside}") == set()
    assert seen(crew.member, "?unowned=true") == _titles(book, "E")
    # The manager: the team's inside the scope; the member's own lead is not theirs.
    assert seen(crew.manager) == _titles(book, "A", "E", "G")
    # Unscoped people keep their role's whole share.
    assert seen(crew.colleague) == _titles(book, "D", "E", "F", "G")
    assert seen(crew.admin) == _titles(book, *"ABCDEFG")
    assert {o.title for o in service.list_opportunities(db, viewer=crew.member)} == _titles(
        book, "A", "C", "E"
    )
    # The board shows the same cards and the total of what it shows.
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get("/sales", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert {t for t in _titles(book, *"ABCDEFG") if t in page.text} == _titles(book, "A", "C", "E")
    assert "北京范围外客户" not in page.text
    assert '<span id="board-expected">1,500.00</span>' in page.text
    assert '<strong id="board-weighted">150.00</strong>' in page.text


def test_out_of_scope_opportunities_answer_404_and_stay_unchanged(
    client: Any, db: Session, crew: Crew, book: Book
) -> None:
    headers = _token(client, crew.member)
    manager = _token(client, crew.manager)
    base = "/api/v1/sales/opportunities"
    audit_before = _opportunity_audits(db)
    for key in ("B", "D", "F"):
        opp_id = book.opp[key].id
        calls = [
            ("GET", f"{base}/{opp_id}", headers, None),
            ("PUT", f"{base}/{opp_id}", headers, {"title": "越权修改", "version": 1}),
            ("POST", f"{base}/{opp_id}/stage", headers, {"stage": "won", "version": 1}),
            ("POST", f"{base}/{opp_id}/claim", headers, None),
            ("POST", f"{base}/{opp_id}/convert", headers, {"customer_id": book.inside}),
            ("GET", f"{base}/{opp_id}/history", headers, None),
            ("GET", f"{base}/{opp_id}/interactions", headers, None),
            (
                "POST",
                f"{base}/{opp_id}/interactions",
                headers,
                {"customer_id": book.inside, "kind": "call", "summary": "越权"},
            ),
            ("POST", f"{base}/{opp_id}/assign", manager, {"owner_id": None, "version": 1}),
            ("POST", f"{base}/{opp_id}/reopen", manager, {"reason": "越权", "version": 1}),
        ]
        for method, url, who, body in calls:
            resp = client.request(method, url, headers=who, json=body)
            assert resp.status_code == 404, (method, url, resp.status_code, resp.text)
    # The pages alike.
    b = book.opp["B"].id
    assert client.get(f"/sales/opportunities/{b}", headers=headers).status_code == 404
    posts = [
        (f"/sales/opportunities/{b}", {"title": "越权修改", "version": "1"}),
        (f"/sales/opportunities/{b}/stage", {"stage": "won", "version": "1", "back": "detail"}),
        (f"/sales/opportunities/{b}/stage", {"stage": "won", "version": "1"}),
        (f"/sales/opportunities/{b}/claim", {}),
        (f"/sales/opportunities/{b}/interactions", {"kind": "call", "summary": "越权"}),
    ]
    for url, form in posts:
        resp = client.post(url, data=form, headers=headers, follow_redirects=False)
        assert resp.status_code == 404, (url, resp.status_code)
    # Nothing changed, nothing was audited.
    db.expire_all()
    owners = {"B": crew.member.id, "D": None, "F": None}
    customers = {"B": book.outside, "D": None, "F": book.outside}
    for key in ("B", "D", "F"):
        fresh = db.get(Opportunity, book.opp[key].id)
        assert fresh is not None
        assert (fresh.title, fresh.stage, fresh.version, fresh.customer_id, fresh.owner_id) == (
            book.opp[key].title,
            "lead",
            1,
            customers[key],
            owners[key],
        )
    assert _opportunity_audits(db) == audit_before
    # Inside the scope the same calls work.
    a = book.opp["A"].id
    resp = client.post(
        f"{base}/{a}/stage", headers=headers, json={"stage": "qualified", "version": 1}
    )
    assert (resp.status_code, resp.json()["stage"]) == (200, "qualified")


def test_pipeline_figures_count_only_what_is_visible(
    client: Any, db: Session, crew: Crew, book: Book
) -> None:
    result = figures.forecast(db, viewer=crew.member, unowned_label="—")
    assert [
        (r.month, r.owner_name, r.opportunities, r.expected_revenue, r.weighted_revenue)
        for r in result.rows
    ] == [
        ("2027-01", "李销售", 1, 100_000, 10_000),
        ("", "—", 1, 30_000, 3_000),
        ("", "李销售", 1, 20_000, 2_000),
    ]
    assert (result.total_expected, result.total_weighted) == (150_000, 15_000)
    managed = figures.forecast(db, viewer=crew.manager)
    assert (managed.total_expected, managed.total_weighted) == (170_000, 17_000)
    # Unscoped, the administrator's figures hold every opportunity.
    everything = figures.forecast(db, viewer=crew.admin)
    assert (
        everything.total_expected == 100_000 + 900_000 + 20_000 + 70_000 + 30_000 + 50_000 + 40_000
    )
    leads = {f.stage: f.entered for f in figures.stage_figures(db, viewer=crew.member)}
    assert leads["lead"] == 3
    assert {f.stage: f.entered for f in figures.stage_figures(db, viewer=crew.admin)}["lead"] == 7
    headers = _token(client, crew.member)
    body = client.get("/api/v1/sales/forecast", headers=headers).json()
    assert (body["total_expected"], body["total_weighted"]) == (150_000, 15_000)
    resp = client.get("/api/v1/sales/forecast.csv", headers={**headers, "Accept-Language": "en"})
    rows = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert rows[1:] == [
        ["2027-01", "李销售", "1", "1000.00", "100.00"],
        ["No close date", "Unowned", "1", "300.00", "30.00"],
        ["No close date", "李销售", "1", "200.00", "20.00"],
    ]


def test_a_scoped_seller_cannot_attach_an_opportunity_to_a_customer_outside(
    client: Any, db: Session, crew: Crew, book: Book
) -> None:
    headers = _token(client, crew.member)
    count = db.scalar(select(func.count()).select_from(Opportunity))
    resp = client.post(
        "/api/v1/sales/opportunities",
        headers=headers,
        json={"title": "越界新机会", "customer_id": book.outside},
    )
    assert resp.status_code == 422
    assert [(e["field"], e["code"]) for e in resp.json()["errors"]] == [
        ("customer_id", "sales_customer_unknown")
    ]
    assert db.scalar(select(func.count()).select_from(Opportunity)) == count
    # Converting their own lead: to a customer outside is refused, inside works.
    lead = book.opp["C"].id
    url = f"/api/v1/sales/opportunities/{lead}/convert"
    refused = client.post(url, headers=headers, json={"customer_id": book.outside})
    assert refused.status_code == 422
    assert [e["code"] for e in refused.json()["errors"]] == ["sales_customer_unknown"]
    db.expire_all()
    assert db.get(Opportunity, lead).customer_id is None  # type: ignore[union-attr]
    done = client.post(url, headers=headers, json={"customer_id": book.inside})
    assert (done.status_code, done.json()["customer_id"]) == (200, book.inside)
    created = client.post(
        "/api/v1/sales/opportunities",
        headers=headers,
        json={"title": "范围内新机会", "customer_id": book.inside},
    )
    assert (created.status_code, created.json()["customer_id"]) == (201, book.inside)


def test_a_scoped_manager_hears_only_of_new_leads_inside(
    db: Session, crew: Crew, book: Book, make_customer: Any
) -> None:
    domains.load()
    outside = make_customer("北京新企业有限公司", kind="enterprise", region="北京市")
    inside = make_customer("深圳新企业有限公司", kind="enterprise", region="广东省深圳市")
    keys = db.scalars(select(Notification.key).where(Notification.user_id == crew.manager.id)).all()
    made = {
        c.id: db.scalar(select(Opportunity.id).where(Opportunity.customer_id == c.id))
        for c in (outside, inside)
    }
    assert None not in made.values()
    assert keys == [f"sales_lead:{made[inside.id]}"]
