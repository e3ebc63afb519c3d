"""Sales teams and lost reasons (managers), and the board's stage change through htmx: the
board comes back with the card moved, or with a conflict banner when the card changed
meanwhile; without scripts, the card's select posts and redirects."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.sales import service
from guanxi.sales.enums import Stage
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import StageMove
from tests.conftest import PASSWORD
from tests.integration.sales.conftest import Crew


def _headers(client: Any, user: Any) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_teams_through_the_api(client: Any, crew: Crew, make_user: Any) -> None:
    manager = _headers(client, crew.manager)
    other_manager = make_user("manager", display_name="钱经理")
    newcomer = make_user("sales", display_name="周销售")
    resp = client.post(
        "/api/v1/sales/teams",
        json={"name": "华南组", "manager_id": other_manager.id, "member_ids": [newcomer.id]},
        headers=manager,
    )
    assert resp.status_code == 201, resp.text
    team = resp.json()
    assert (team["name"], team["manager_id"], team["member_ids"]) == (
        "华南组",
        other_manager.id,
        [newcomer.id],
    )
    # Each problem names its field.
    agent = make_user("agent")
    resp = client.post(
        "/api/v1/sales/teams",
        json={
            "name": "华南组",
            "manager_id": crew.member.id,
            "member_ids": [crew.member.id, agent.id],
        },
        headers=manager,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == [
        "name",
        "manager_id",
        "member_ids.0",
        "member_ids.1",
    ]
    # Members of the old team moved over: the team's manager now sees the newcomer's deals.
    resp = client.put(
        f"/api/v1/sales/teams/{team['id']}",
        json={"name": "华南组", "manager_id": crew.manager.id, "member_ids": [newcomer.id]},
        headers=manager,
    )
    assert resp.status_code == 200, resp.text
    listed = client.get("/api/v1/sales/teams", headers=_headers(client, crew.member)).json()
    assert [(t["name"], t["member_ids"]) for t in listed] == [
        ("华东大客户组", sorted([crew.member.id, crew.colleague.id])),
        ("华南组", [newcomer.id]),
    ]
    # A salesperson reads the teams but does not change them.
    resp = client.post(
        "/api/v1/sales/teams", json={"name": "私组"}, headers=_headers(client, crew.member)
    )
    assert resp.status_code == 403
    assert client.delete(f"/api/v1/sales/teams/{team['id']}", headers=manager).status_code == 204
    assert [t["name"] for t in client.get("/api/v1/sales/teams", headers=manager).json()] == [
        "华东大客户组"
    ]


def test_lost_reasons_are_the_managers_list(
    client: Any, db: Session, crew: Crew, enter: Any
) -> None:
    manager = _headers(client, crew.manager)
    codes = [r["code"] for r in client.get("/api/v1/sales/lost-reasons", headers=manager).json()]
    assert codes == [
        "price",
        "competitor",
        "service_area",
        "timing",
        "no_budget",
        "no_response",
        "other",
    ]
    resp = client.put(
        "/api/v1/sales/lost-reasons",
        json={
            "code": "price",
            "label_zh": "价格偏高",
            "label_en": "Too expensive",
            "active": False,
        },
        headers=manager,
    )
    assert resp.status_code == 200, resp.text
    opp = enter(crew.member, "原因已停用")
    member = _headers(client, crew.member)
    resp = client.post(
        f"/api/v1/sales/opportunities/{opp.id}/stage",
        json={"stage": "lost", "version": 1, "lost_reason": "price"},
        headers=member,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["lost_reason"]
    resp = client.put(
        "/api/v1/sales/lost-reasons",
        json={"code": "price", "label_zh": "价格偏高", "label_en": "Too expensive"},
        headers=member,
    )
    assert resp.status_code == 403


def test_the_board_moves_a_card_through_htmx_and_reports_a_conflict(
    client: Any, db: Session, crew: Crew, enter: Any
) -> None:
    opp = enter(crew.member, "拖拽卡片", expected_revenue=1_000_000)
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    board = client.get("/sales", headers={"Accept-Language": "zh-CN"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', board)
    assert csrf
    assert 'id="board-weighted">1,000.00<' in board
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf.group(1), "Accept-Language": "zh-CN"}
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={"stage": "proposal", "version": "1"},
        headers=htmx,
    )
    assert resp.status_code == 200
    column = resp.text.split('data-stage="proposal"')[1].split("</section>")[0]
    assert f'id="opp-{opp.id}"' in column
    assert 'id="board-weighted">5,000.00<' in resp.text
    # Someone else moves it meanwhile; the board drawn before that still says version 2.
    db.expire_all()
    service.move_stage(
        db,
        opportunity_id=opp.id,
        move=StageMove(stage=Stage.negotiation, version=2),
        actor=crew.manager,
    )
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={"stage": "won", "version": "2"},
        headers=htmx,
    )
    assert resp.status_code == 200
    assert (
        "其他人刚刚修改了这个销售机会；看板已显示其最新状态"
        in resp.text.split('id="board-banner"')[1]
    )
    column = resp.text.split('data-stage="negotiation"')[1].split("</section>")[0]
    assert f'id="opp-{opp.id}"' in column
    db.expire_all()
    assert db.get(Opportunity, opp.id).stage == "negotiation"  # type: ignore[union-attr]
    # Without scripts: the card's form posts and the board is drawn again.
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={"csrf_token": csrf.group(1), "stage": "won", "version": "3"},
        follow_redirects=False,
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/sales")
    # Lost from the board needs the reason: the card stays, the banner names the field.
    other = enter(crew.member, "要输的单")
    resp = client.post(
        f"/sales/opportunities/{other.id}/stage",
        data={"stage": "lost", "version": "1"},
        headers=htmx,
    )
    assert "输单原因: 请选择输单原因" in resp.text


def test_the_opportunity_page_closes_as_lost_and_a_manager_reopens(
    client: Any, db: Session, crew: Crew, enter: Any
) -> None:
    opp = enter(crew.member, "页面输单")
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get(f"/sales/opportunities/{opp.id}", headers={"Accept-Language": "en"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    assert 'id="reopen-form"' not in page
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={"csrf_token": csrf.group(1), "stage": "lost", "version": "1", "back": "detail"},
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 422
    assert "Reason lost: Choose why the opportunity was lost" in resp.text
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={
            "csrf_token": csrf.group(1),
            "stage": "lost",
            "lost_reason": "competitor",
            "version": "1",
            "back": "detail",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = client.get(f"/sales/opportunities/{opp.id}", headers={"Accept-Language": "en"}).text
    assert 'id="lost-reason">Chose a competitor<' in page
    client.cookies.clear()
    client.post(
        "/login", data={"username": crew.manager.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get(f"/sales/opportunities/{opp.id}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    assert 'id="reopen-form"' in page
    resp = client.post(
        f"/sales/opportunities/{opp.id}/reopen",
        data={"csrf_token": csrf.group(1), "reason": "客户重新询价", "version": "2"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.expire_all()
    assert db.get(Opportunity, opp.id).stage == "lead"  # type: ignore[union-attr]


def test_the_board_query_count_does_not_grow_with_cards(
    client: Any, crew: Crew, enter: Any, make_customer: Any, engine: Any
) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    client.post(
        "/login", data={"username": crew.manager.username, "password": PASSWORD, "next": "/"}
    )
    counts = []
    for batch in (2, 20):
        for n in range(batch):
            customer = make_customer(f"看板客户{batch}-{n}")
            owner = (crew.member, crew.colleague, crew.manager)[n % 3]
            enter(owner, f"看板{batch}-{n}", customer_id=customer.id)
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/sales").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    assert counts[0] == counts[1]


def test_page_forms_refuse_bad_input_by_field_never_500(
    client: Any, db: Session, crew: Crew, enter: Any
) -> None:
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get("/sales/opportunities/new", headers={"Accept-Language": "en"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    for revenue in ("abc", "inf", "nan", "-5"):
        resp = client.post(
            "/sales/opportunities",
            data={"csrf_token": csrf.group(1), "title": "表单", "expected_revenue": revenue},
            headers={"Accept-Language": "en"},
        )
        assert resp.status_code == 422, revenue
        errors = resp.text.split('id="sales-errors"')[1].split("</div>")[0]
        assert "Expected revenue (yuan): " in errors
    resp = client.post(
        "/sales/opportunities",
        data={"csrf_token": csrf.group(1), "title": "表单", "expected_revenue": "12,345.60"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.expire_all()
    created = db.scalars(select(Opportunity).where(Opportunity.title == "表单")).one()
    assert (created.expected_revenue, created.owner_id) == (1_234_560, crew.member.id)
    assert client.get("/sales?owner=99999999999999999999").status_code == 200
    opp = enter(crew.member, "版本")
    resp = client.post(
        f"/sales/opportunities/{opp.id}/stage",
        data={"csrf_token": csrf.group(1), "stage": "proposal", "version": "x"},
    )
    assert resp.status_code == 422


def test_the_page_edits_an_opportunity_and_converts_a_web_lead(
    client: Any, db: Session, crew: Crew, enter: Any
) -> None:
    from guanxi.sales import leads
    from guanxi.sales.schemas import WebLeadIn

    opp = enter(crew.member, "页面编辑", expected_revenue=1_000_000)
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get(f"/sales/opportunities/{opp.id}", headers={"Accept-Language": "en"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {
        "csrf_token": csrf.group(1),
        "version": "1",
        "title": "页面编辑",
        "expected_revenue": "20000",
        "probability": "60",
        "expected_close": "2027-02-01",
        "next_step": "",
        "next_step_due": "2027-01-15",
    }
    resp = client.post(
        f"/sales/opportunities/{opp.id}", data=form, headers={"Accept-Language": "en"}
    )
    assert resp.status_code == 422
    assert "Next step: Write the next step for its due date" in resp.text
    resp = client.post(
        f"/sales/opportunities/{opp.id}",
        data={**form, "next_step": "寄送合同"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = client.get(f"/sales/opportunities/{opp.id}").text
    assert 'id="weighted">¥12,000.00<' in page
    # The form read before that change is stale now.
    resp = client.post(
        f"/sales/opportunities/{opp.id}",
        data={**form, "next_step": "寄送合同", "title": "旧版本"},
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 409
    assert "Someone else changed this opportunity meanwhile" in resp.text
    db.expire_all()
    assert db.get(Opportunity, opp.id).title == "页面编辑"  # type: ignore[union-attr]

    lead = leads.submit_web_lead(
        db, lead_in=WebLeadIn(name="吴先生", company="嘉兴纺织有限公司", phone="13858312345")
    )
    service.claim(db, opportunity_id=lead.id, actor=crew.member)
    page = client.get(f"/sales/opportunities/{lead.id}").text
    assert 'id="contact">吴先生 · 嘉兴纺织有限公司 · 138****2345<' in page
    resp = client.post(
        f"/sales/opportunities/{lead.id}/convert",
        data={"csrf_token": csrf.group(1), "customer_id": ""},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = client.get(f"/sales/opportunities/{lead.id}").text
    assert re.search(r'<a href="/customers/\d+">嘉兴纺织有限公司</a>', page)
    assert 'id="contact"' not in page
