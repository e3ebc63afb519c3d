"""Moving opportunities between stages: history, lost with a reason from the list, closed
stays closed until a manager reopens it (audited), version conflicts, probabilities and the
weighted forecast by month and owner (JSON, CSV, page)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core.errors import Conflict, PermissionDenied, ValidationFailed
from guanxi.sales import forecast as figures
from guanxi.sales import service
from guanxi.sales.enums import Stage
from guanxi.sales.models import Opportunity, StageChange
from guanxi.sales.schemas import OpportunityUpdate, Reopen, StageMove
from tests.conftest import PASSWORD
from tests.integration.sales.conftest import Crew


def _move(db: Session, opp: Opportunity, stage: str, actor: Any, **kw: Any) -> Opportunity:
    return service.move_stage(
        db,
        opportunity_id=opp.id,
        move=StageMove(stage=Stage(stage), version=opp.version, **kw),
        actor=actor,
    )


def test_moves_keep_history_and_lost_needs_a_listed_reason(
    db: Session, crew: Crew, enter: Any
) -> None:
    opp = enter(crew.member, "月结合作", expected_revenue=1_000_000)
    assert (service.probability_of(opp), service.weighted(opp)) == (10, 100_000)
    _move(db, opp, "qualified", crew.member)
    _move(db, opp, "proposal", crew.member)
    assert (opp.version, service.probability_of(opp), service.weighted(opp)) == (3, 50, 500_000)
    with pytest.raises(ValidationFailed) as missing:
        _move(db, opp, "lost", crew.member)
    assert [e.loc for e in missing.value.errors] == [("lost_reason",)]
    with pytest.raises(ValidationFailed) as unknown:
        _move(db, opp, "lost", crew.member, lost_reason="weather")
    assert [(e.loc, e.code) for e in unknown.value.errors] == [
        (("lost_reason",), "lost_reason_unknown")
    ]
    _move(db, opp, "lost", crew.member, lost_reason="price", note="对方报价低 8%")
    assert (opp.stage, opp.lost_reason, service.weighted(opp)) == ("lost", "price", 0)
    assert opp.closed_at is not None
    steps = db.execute(
        select(
            StageChange.from_stage, StageChange.to_stage, StageChange.user_id, StageChange.reason
        )
        .where(StageChange.opportunity_id == opp.id)
        .order_by(StageChange.id)
    ).all()
    assert [tuple(s) for s in steps] == [
        (None, "lead", crew.member.id, None),
        ("lead", "qualified", crew.member.id, None),
        ("qualified", "proposal", crew.member.id, None),
        ("proposal", "lost", crew.member.id, "price: 对方报价低 8%"),
    ]
    # Closed: no more moves or edits, until a manager reopens it.
    with pytest.raises(Conflict):
        _move(db, opp, "won", crew.member)
    with pytest.raises(PermissionDenied):
        service.reopen(
            db,
            opportunity_id=opp.id,
            reopen_in=Reopen(reason="客户回头", version=opp.version),
            actor=crew.member,
        )
    service.reopen(
        db,
        opportunity_id=opp.id,
        reopen_in=Reopen(reason="客户回头", version=opp.version),
        actor=crew.manager,
    )
    assert (opp.stage, opp.lost_reason, opp.closed_at) == ("proposal", None, None)
    entry = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "sales.opportunity_reopened")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None
    assert (entry.actor_id, entry.target_id, entry.before, entry.after) == (
        crew.manager.id,
        str(opp.id),
        {"stage": "lost", "lost_reason": "price"},
        {"stage": "proposal", "lost_reason": None},
    )


def test_a_stale_version_is_refused_and_nothing_changes(
    db: Session, crew: Crew, enter: Any
) -> None:
    opp = enter(crew.member, "并发测试")
    _move(db, opp, "qualified", crew.member)
    with pytest.raises(Conflict) as stale:
        service.move_stage(
            db,
            opportunity_id=opp.id,
            move=StageMove(stage=Stage.negotiation, version=1),
            actor=crew.manager,
        )
    assert stale.value.message == "opportunity_version_conflict"
    with pytest.raises(Conflict):
        service.update_opportunity(
            db,
            opportunity_id=opp.id,
            opportunity_in=OpportunityUpdate(title="改名", version=1),
            actor=crew.member,
        )
    db.expire_all()
    fresh = db.get(Opportunity, opp.id)
    assert fresh is not None
    assert (fresh.stage, fresh.title, fresh.version) == ("qualified", "并发测试", 2)


def test_probability_override_and_the_forecast(db: Session, crew: Crew, enter: Any) -> None:
    enter(crew.member, "一月A", expected_revenue=2_000_000, expected_close=date(2027, 1, 10))
    b = enter(
        crew.member,
        "一月B",
        expected_revenue=1_000_000,
        probability=40,
        expected_close=date(2027, 1, 20),
    )
    c = enter(crew.colleague, "二月C", expected_revenue=3_000_000, expected_close=date(2027, 2, 1))
    enter(crew.outsider, "外组D", expected_revenue=9_000_000, expected_close=date(2027, 1, 5))
    enter(crew.member, "无日期E", expected_revenue=500_000)
    _move(db, c, "negotiation", crew.colleague)
    _move(db, b, "won", crew.member)
    result = figures.forecast(db, viewer=crew.manager)
    assert [
        (r.month, r.owner_name, r.opportunities, r.expected_revenue, r.weighted_revenue)
        for r in result.rows
    ] == [
        # 一月: A 10% of 20 000 yuan + B won in full.
        ("2027-01", "李销售", 2, 3_000_000, 200_000 + 1_000_000),
        ("2027-02", "赵销售", 1, 3_000_000, 2_250_000),
        ("", "李销售", 1, 500_000, 50_000),
    ]
    assert (result.total_expected, result.total_weighted) == (6_500_000, 3_500_000)
    mine = figures.forecast(db, viewer=crew.member)
    assert mine.total_weighted == 1_250_000
    assert figures.forecast(db, viewer=crew.admin).total_weighted == 3_500_000 + 900_000


def test_forecast_api_csv_and_page(client: Any, db: Session, crew: Crew, enter: Any) -> None:
    enter(crew.member, "三月单", expected_revenue=1_234_500, expected_close=date(2027, 3, 3))
    resp = client.post(
        "/api/v1/auth/token", json={"username": crew.member.username, "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    body = client.get("/api/v1/sales/forecast", headers=headers).json()
    assert body["rows"] == [
        {
            "month": "2027-03",
            "owner_id": crew.member.id,
            "owner_name": "李销售",
            "opportunities": 1,
            "expected_revenue": 1_234_500,
            "weighted_revenue": 123_450,
        }
    ]
    resp = client.get("/api/v1/sales/forecast.csv", headers={**headers, "Accept-Language": "zh-CN"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert rows == [
        ["月", "负责人", "机会数", "预计收入（元）", "加权收入（元）"],
        ["2027-03", "李销售", "1", "12345.00", "1234.50"],
    ]
    bad = client.get("/api/v1/sales/forecast?since=tomorrow", headers=headers)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["query.since"]
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get("/sales/forecast", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    table = page.text.split('id="forecast"')[1].split("</table>")[0]
    assert "<td>2027-03</td><td>李销售</td>" in table
    assert '<td class="num">1,234.50</td>' in table
    assert 'id="an-charts"' in page.text


def test_stage_figures_read_the_history(db: Session, crew: Crew, enter: Any) -> None:
    won = enter(crew.member, "赢")
    lost = enter(crew.member, "输")
    enter(crew.member, "还在谈")
    _move(db, won, "qualified", crew.member)
    _move(db, won, "won", crew.member)
    _move(db, lost, "lost", crew.member, lost_reason="competitor")
    stages = {s.stage: s for s in figures.stage_figures(db, viewer=crew.member)}
    lead = stages["lead"]
    assert (lead.entered, lead.won, lead.lost, lead.win_rate) == (3, 1, 1, 0.5)
    qualified = stages["qualified"]
    assert (qualified.entered, qualified.won, qualified.lost) == (1, 1, 0)
    assert (stages["proposal"].entered, stages["proposal"].mean_days) == (0, None)


def test_bad_input_names_the_field(client: Any, crew: Crew, enter: Any) -> None:
    resp = client.post(
        "/api/v1/auth/token", json={"username": crew.member.username, "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    cases = [
        ({"title": ""}, ["title"]),
        ({"title": "x", "probability": 120}, ["probability"]),
        ({"title": "x", "expected_revenue": -1}, ["expected_revenue"]),
        ({"title": "x", "stage": "won"}, ["stage"]),
        ({"title": "x", "customer_id": 999999}, ["customer_id"]),
        ({"title": "x", "next_step_due": "2027-01-01"}, ["next_step"]),
        ({"title": "x", "owner_id": crew.outsider.id}, ["owner_id"]),
    ]
    for body, fields in cases:
        resp = client.post("/api/v1/sales/opportunities", json=body, headers=headers)
        assert resp.status_code == 422, (body, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == fields, body
    opp = enter(crew.member, "改阶段")
    resp = client.post(
        f"/api/v1/sales/opportunities/{opp.id}/stage",
        json={"stage": "closed", "version": 1},
        headers=headers,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["stage"]
