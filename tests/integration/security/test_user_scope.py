"""A user's row-level scope: set through the API and the page (audited, ``user.manage``),
what it lets a scoped user see, and that unscoped users pay no query for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from guanxi.customers.models import Customer
from guanxi.customers.service import can_see, visible_clause
from guanxi.security.models import User, UserScope
from guanxi.security.scope import Scope, scope_of, set_scope
from guanxi.security.service import issue_token, resolve_token
from guanxi.tickets.models import Team, Ticket
from guanxi.tickets.service import can_see_ticket, ticket_clause
from tests.integration.security.helpers import audit

EN = {"Accept-Language": "en"}
# The flag column added beside the user (security/models.py), as a column for queries.
SCOPED = User.__table__.c.scoped


def _teams(db: Session, *codes: str) -> list[int]:
    teams = [Team(code=code, name=f"组{code}") for code in codes]
    db.add_all(teams)
    db.flush()
    return [t.id for t in teams]


def test_the_scope_through_the_api(client: Any, login: Any, make_user: Any, db: Session) -> None:
    admin, headers = login("admin")
    _, auditor = login("auditor")
    _, agent = login("agent")
    target = make_user("agent")
    north, south = _teams(db, "north", "south")
    db.commit()
    url = f"/api/v1/users/{target.id}/scope"
    assert client.get(url, headers=auditor).json() == {
        "user_id": target.id,
        "scoped": False,
        "regions": [],
        "team_ids": [],
    }
    body = {"regions": [" 广东 ", "上海市", "广东"], "team_ids": [south, north, south]}
    assert client.put(url, json=body, headers=auditor).status_code == 403
    assert client.get(url, headers=agent).status_code == 403
    assert client.put(url, json=body).status_code == 401
    assert client.get(f"/api/v1/users/{target.id}/scope", headers=agent).status_code == 403

    saved = client.put(url, json=body, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {
        "user_id": target.id,
        "scoped": True,
        "regions": ["上海市", "广东"],
        "team_ids": sorted([north, south]),
    }
    assert client.get(url, headers=auditor).json() == saved.json()
    rows = db.execute(
        select(UserScope.kind, UserScope.value)
        .where(UserScope.user_id == target.id)
        .order_by(UserScope.kind, UserScope.value)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("region", "上海市"),
        ("region", "广东"),
        *sorted(("team", str(t)) for t in (north, south)),
    ]
    assert db.scalar(select(SCOPED).where(User.id == target.id)) is True

    cleared = client.put(url, json={"regions": [], "team_ids": []}, headers=headers)
    assert cleared.json()["scoped"] is False
    assert db.scalar(select(SCOPED).where(User.id == target.id)) is False
    assert db.scalar(select(UserScope.id).where(UserScope.user_id == target.id)) is None
    assert audit(db, target.id, "user.scope_set") == [
        (
            "user.scope_set",
            {"regions": [], "team_ids": []},
            {"regions": ["上海市", "广东"], "team_ids": sorted([north, south])},
        ),
        (
            "user.scope_set",
            {"regions": ["上海市", "广东"], "team_ids": sorted([north, south])},
            {"regions": [], "team_ids": []},
        ),
    ]
    assert admin.id != target.id


def test_bad_scopes_are_refused_by_field(
    client: Any, login: Any, make_user: Any, db: Session
) -> None:
    _, headers = login("admin")
    target = make_user("agent")
    url = f"/api/v1/users/{target.id}/scope"
    cases = [
        ({"regions": [], "team_ids": [987654]}, "team_ids"),
        ({"regions": ["广" * 51], "team_ids": []}, "regions"),
        ({"regions": [""], "team_ids": []}, "regions"),
        ({"regions": ["广\x00东"], "team_ids": []}, "regions"),
        ({"regions": [], "team_ids": [0]}, "team_ids"),
        ({"regions": [], "team_ids": [], "owner": 1}, "owner"),
    ]
    for body, field in cases:
        resp = client.put(url, json=body, headers=headers)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["errors"][0]["field"].split(".")[0] == field, resp.text
    assert client.put("/api/v1/users/987654/scope", json={}, headers=headers).status_code == 404
    # Nothing was stored by the refusals.
    assert db.scalar(select(UserScope.id).where(UserScope.user_id == target.id)) is None
    assert audit(db, target.id, "user.scope_set") == []


def test_the_scope_page(client: Any, login: Any, make_user: Any, db: Session) -> None:
    _, admin = login("admin")
    _, auditor = login("auditor")
    target = make_user("agent")
    (north,) = _teams(db, "north")
    db.commit()
    url = f"/admin/users/{target.id}/scope"
    shown = client.get(url, headers={**auditor, **EN})
    assert shown.status_code == 200
    assert "<fieldset disabled>" in shown.text  # reading only
    assert client.post(url, data={"regions": "广东"}, headers=auditor).status_code == 403

    saved = client.post(
        url,
        data={"regions": "广东\n上海，广东", "team_ids": [str(north)]},
        headers=admin,
        follow_redirects=False,
    )
    assert (saved.status_code, saved.headers["location"]) == (303, url)
    page = client.get(url, headers={**admin, **EN}).text
    assert '<textarea id="f-regions" name="regions" rows="4">上海\n广东</textarea>' in page
    assert f'value="{north}" checked' in page

    bad_region = client.post(url, data={"regions": "北\x00京"}, headers={**admin, **EN})
    assert bad_region.status_code == 422
    assert 'id="err-regions">Invalid format<' in bad_region.text
    refused = client.post(
        url, data={"regions": "北京", "team_ids": ["987654"]}, headers={**admin, **EN}
    )
    assert refused.status_code == 422
    assert 'id="err-team_ids">No such team<' in refused.text
    assert ">北京</textarea>" in refused.text  # what was typed is kept
    assert (
        client.post(
            "/admin/users/987654/scope", data={"regions": "北京"}, headers=admin
        ).status_code
        == 404
    )
    assert [a for a, _, _ in audit(db, target.id, "user.scope_set")] == ["user.scope_set"]


def test_what_a_scoped_user_sees(db: Session, make_user: Any, make_customer: Any) -> None:
    admin = make_user("admin")
    agent = make_user("agent")
    only_team = make_user("agent")
    (north,) = _teams(db, "north")
    canton = make_customer(name="广州客户", region="广东省广州市")
    peking = make_customer(name="北京客户", region="北京市")
    percent = make_customer(name="百分号客户", region="%地区")
    set_scope(db, user_id=agent.id, regions=["广东"], team_ids=[], actor=admin)
    set_scope(db, user_id=only_team.id, regions=[], team_ids=[north], actor=admin)
    agent, only_team = db.get(User, agent.id), db.get(User, only_team.id)
    assert agent is not None
    assert only_team is not None
    assert scope_of(agent) == Scope(regions=("广东",), team_ids=())
    # customer.read_all, but the scope wins; the region is a prefix, matched literally.
    assert [can_see(agent, c) for c in (canton, peking, percent)] == [True, False, False]
    clause = visible_clause(agent)
    assert clause is not None
    ids = set(db.scalars(select(Customer.id).where(clause)))
    assert {canton.id, peking.id, percent.id} & ids == {canton.id}
    # A scope of teams only lists no region: no customers.
    assert [can_see(only_team, c) for c in (canton, peking)] == [False, False]

    tickets = [
        Ticket(type="complaint", channel="hotline", subject=s, customer_id=c, team_id=t)
        for s, c, t in (
            ("广州的", canton.id, None),
            ("北京的", peking.id, None),
            ("北方组的", peking.id, north),
            ("无客户", None, None),
        )
    ]
    db.add_all(tickets)
    db.flush()
    seen = [can_see_ticket(db, agent, t) for t in tickets]
    assert seen == [True, False, False, False]
    assert [can_see_ticket(db, only_team, t) for t in tickets] == [False, False, True, False]
    for user, expected in ((agent, seen), (only_team, [False, False, True, False])):
        where = ticket_clause(user)
        assert where is not None
        listed = set(db.scalars(select(Ticket.id).where(where)))
        assert [t.id in listed for t in tickets] == expected
    assert ticket_clause(admin) is None
    assert visible_clause(admin) is None


def test_unscoped_users_pay_no_query(
    client: Any, login: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    user = make_user("agent")
    customer = make_customer(name="无范围客户", region="北京市")
    db.commit()
    secret, _ = issue_token(db, user=user, kind="api", hours=1)
    db.expunge_all()
    live = resolve_token(db, secret=secret, kind="api")
    assert live is not None
    assert live.user.__dict__["scoped"] is False
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert scope_of(live.user) is None
        assert can_see(live.user, customer) is True
        assert visible_clause(live.user) is None
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    # Setting a scope flips the flag on the row the token lookup reads.
    db.execute(update(User).where(User.id == user.id).values({SCOPED: True}))
    db.commit()
    db.expunge_all()
    again = resolve_token(db, secret=secret, kind="api")
    assert again is not None
    assert again.user.__dict__["scoped"] is True
    assert scope_of(again.user) == Scope()  # flagged without rows: sees nothing


def test_the_demo_has_a_scoped_agent(db: Session, make_user: Any) -> None:
    from guanxi.demo.scope import SCOPED_USER, seed_scope

    make_user("admin", username="admin")
    (team,) = _teams(db, "demo-south")
    db.commit()
    first_team = db.scalar(select(Team.id).where(Team.active.is_(True)).order_by(Team.id))
    assert first_team is not None
    user_id = seed_scope(db)
    assert user_id is not None
    user = db.get(User, user_id)
    assert user is not None
    assert (user.username, user.role) == (SCOPED_USER, "agent")
    assert scope_of(user) == Scope(regions=("广东",), team_ids=(first_team,))
    assert team >= first_team
    assert seed_scope(db) is None  # loading the demo again changes nothing
