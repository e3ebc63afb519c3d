"""Pipeline permissions (issue #7): a salesperson sees and changes their own opportunities
and the unowned leads (which they claim first); a manager sees the team's and the unowned;
an administrator all - enforced in the queries, checked on the API and on the pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.sales import service
from guanxi.sales.models import Opportunity
from tests.conftest import PASSWORD
from tests.integration.sales.conftest import Crew


def _token(client: Any, user: Any) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@pytest.fixture
def book(crew: Crew, enter: Any) -> dict[str, Opportunity]:
    return {
        "member": enter(crew.member, "李的机会"),
        "colleague": enter(crew.colleague, "赵的机会"),
        "outsider": enter(crew.outsider, "孙的机会"),
        "pool": enter(crew.manager, "公海线索", unowned=True),
    }


def test_each_role_sees_its_share_through_the_api(
    client: Any, db: Session, crew: Crew, book: dict[str, Opportunity], login: Any
) -> None:
    def seen(user: Any) -> set[str]:
        resp = client.get("/api/v1/sales/opportunities", headers=_token(client, user))
        assert resp.status_code == 200, resp.text
        return {o["title"] for o in resp.json()}

    assert seen(crew.member) == {"李的机会", "公海线索"}
    assert seen(crew.outsider) == {"孙的机会", "公海线索"}
    assert seen(crew.manager) == {"李的机会", "赵的机会", "公海线索"}
    assert seen(crew.admin) == {"李的机会", "赵的机会", "孙的机会", "公海线索"}
    # Roles without the pipeline get nothing.
    for role in ("agent", "analyst", "auditor"):
        _, headers = login(role)
        assert client.get("/api/v1/sales/opportunities", headers=headers).status_code == 403
    # Another's opportunity is not found (not even its existence is told).
    other = book["colleague"]
    resp = client.get(
        f"/api/v1/sales/opportunities/{other.id}", headers=_token(client, crew.member)
    )
    assert resp.status_code == 404


def test_changes_follow_the_same_lines(
    client: Any, db: Session, crew: Crew, book: dict[str, Opportunity]
) -> None:
    member = _token(client, crew.member)
    manager = _token(client, crew.manager)
    colleague = book["colleague"]
    move = {"stage": "qualified", "version": 1}
    # A member cannot move a colleague's card; the manager can.
    resp = client.post(
        f"/api/v1/sales/opportunities/{colleague.id}/stage", json=move, headers=member
    )
    assert resp.status_code == 404
    resp = client.post(
        f"/api/v1/sales/opportunities/{colleague.id}/stage", json=move, headers=manager
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["stage"], resp.json()["version"]) == ("qualified", 2)
    # The manager cannot reach outside the team.
    outsider = book["outsider"]
    resp = client.post(
        f"/api/v1/sales/opportunities/{outsider.id}/stage", json=move, headers=manager
    )
    assert resp.status_code == 404
    db.expire_all()
    assert db.get(Opportunity, outsider.id).stage == "lead"  # type: ignore[union-attr]
    # An unowned lead is claimed before a salesperson works it.
    pool = book["pool"]
    resp = client.post(f"/api/v1/sales/opportunities/{pool.id}/stage", json=move, headers=member)
    assert resp.status_code == 403
    db.expire_all()
    assert db.get(Opportunity, pool.id).stage == "lead"  # type: ignore[union-attr]
    resp = client.post(f"/api/v1/sales/opportunities/{pool.id}/claim", headers=member)
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner_id"] == crew.member.id
    # Claimed, it left the pool: others no longer see it.
    outsider_headers = _token(client, crew.outsider)
    resp = client.post(f"/api/v1/sales/opportunities/{pool.id}/claim", headers=outsider_headers)
    assert resp.status_code == 404  # no longer in the pool, so no longer theirs to see
    # Assigning and reopening are a manager's.
    resp = client.post(
        f"/api/v1/sales/opportunities/{pool.id}/assign",
        json={"owner_id": crew.colleague.id, "version": 2},
        headers=member,
    )
    assert resp.status_code == 403
    resp = client.post(
        f"/api/v1/sales/opportunities/{pool.id}/assign",
        json={"owner_id": crew.outsider.id, "version": 2},
        headers=manager,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["owner_id"]
    resp = client.post(
        f"/api/v1/sales/opportunities/{pool.id}/assign",
        json={"owner_id": crew.colleague.id, "version": 2},
        headers=manager,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner_id"] == crew.colleague.id


def test_claim_race_is_refused(db: Session, crew: Crew, enter: Any) -> None:
    lead = enter(crew.manager, "抢单线索", unowned=True)
    service.claim(db, opportunity_id=lead.id, actor=crew.member)
    from guanxi.core.errors import Conflict, NotFound

    # Claimed, it left the pool: a colleague no longer sees it, the manager finds it taken.
    with pytest.raises(NotFound):
        service.claim(db, opportunity_id=lead.id, actor=crew.colleague)
    with pytest.raises(Conflict):
        service.claim(db, opportunity_id=lead.id, actor=crew.manager)
    db.expire_all()
    assert db.get(Opportunity, lead.id).owner_id == crew.member.id  # type: ignore[union-attr]


def _sign_in(client: Any, username: str) -> str:
    client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    page = client.get("/sales").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_board_shows_each_role_its_share(
    client: Any, crew: Crew, book: dict[str, Opportunity]
) -> None:
    def titles(user: Any) -> set[str]:
        _sign_in(client, user.username)
        page = client.get("/sales", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200
        client.cookies.clear()
        return set(re.findall(r"<strong>([^<]*的机会|公海线索)</strong>", page.text))

    assert titles(crew.member) == {"李的机会", "公海线索"}
    assert titles(crew.manager) == {"李的机会", "赵的机会", "公海线索"}
    assert titles(crew.admin) == {"李的机会", "赵的机会", "孙的机会", "公海线索"}


def test_pages_refuse_what_is_not_yours(
    client: Any, crew: Crew, book: dict[str, Opportunity], make_user: Any
) -> None:
    csrf = _sign_in(client, crew.member.username)
    assert client.get(f"/sales/opportunities/{book['member'].id}").status_code == 200
    assert client.get(f"/sales/opportunities/{book['colleague'].id}").status_code == 404
    resp = client.post(
        f"/sales/opportunities/{book['colleague'].id}/stage",
        data={"csrf_token": csrf, "stage": "proposal", "version": "1"},
        follow_redirects=False,
    )
    assert resp.status_code == 404
    # Managing teams is a manager's.
    resp = client.post(
        "/sales/teams", data={"csrf_token": csrf, "name": "新组"}, follow_redirects=False
    )
    assert resp.status_code == 403
    client.cookies.clear()
    agent = make_user("agent")
    client.post("/login", data={"username": agent.username, "password": PASSWORD, "next": "/"})
    assert client.get("/sales").status_code == 403
    assert client.get("/sales/forecast").status_code == 403
