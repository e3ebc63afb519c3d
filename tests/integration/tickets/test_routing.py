"""Routing: the first matching rule picks the team; workload, round-robin or the team queue
picks the agent among members with the skill (inherited through the category tree) and
the region; assignments are notified and on the timeline; concurrent creation on both
databases hands round-robin turns out one at a time."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker
from guanxi.core.errors import ValidationFailed
from guanxi.notify.models import Notification
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets import categories, service, teams
from guanxi.tickets.models import Ticket
from guanxi.tickets.schemas import TicketCreate


def _new(db: Session, actor: Any, **kw: Any) -> Ticket:
    data = {"type": "complaint", "channel": "hotline", "subject": "快件延误"} | kw
    return service.create_ticket(db, ticket_in=TicketCreate(**data), actor=actor)


def _team(db: Session, admin: Any, code: str, agents: list[Any], **member: Any) -> int:
    team = teams.save_team(db, actor=admin, code=code, name=code.title())
    for agent in agents:
        teams.set_member(db, actor=admin, team_id=team.id, user_id=agent.id, **member)
    return team.id


def test_least_loaded_then_ties_take_turns(db: Session, make_user: Any) -> None:
    admin = make_user("admin")
    a1, a2, a3 = (make_user("agent") for _ in range(3))
    team = _team(db, admin, "desk", [a1, a2, a3])
    # a1 already works two open tickets (taken before the rule existed).
    for _ in range(2):
        service.take(db, ticket_id=_new(db, admin).id, actor=a1)
    teams.save_rule(db, actor=admin, name="all", team_id=team, strategy="least_loaded")
    owners = [_new(db, admin).owner_id for _ in range(4)]
    # Loads (a1, a2, a3): (2,0,0) -> a2; (2,1,0) -> a3; (2,1,1) -> a2 (tie, a2's turn after
    # a3 wraps to a1 who has more); (2,2,1) -> a3.
    assert owners == [a2.id, a3.id, a2.id, a3.id]
    ticket = db.get(Ticket, db.scalar(select(Ticket.id).order_by(Ticket.id.desc())))
    assert ticket is not None
    assert (ticket.status, ticket.team_id, ticket.first_owner_id) == ("assigned", team, a3.id)
    actions = [e.action for e in service.events_of(db, ticket.id)]
    assert actions == ["create", "assign"]
    note = db.scalar(
        select(Notification)
        .where(Notification.user_id == a3.id, Notification.kind == "ticket_assigned")
        .order_by(Notification.id.desc())
    )
    assert note is not None
    assert note.link == f"/tickets/{ticket.id}"


def test_round_robin_wraps(db: Session, make_user: Any) -> None:
    admin = make_user("admin")
    agents = [make_user("agent") for _ in range(3)]
    team = _team(db, admin, "rr", agents)
    teams.save_rule(db, actor=admin, name="rr", team_id=team, strategy="round_robin")
    owners = [_new(db, admin).owner_id for _ in range(4)]
    assert owners == [agents[0].id, agents[1].id, agents[2].id, agents[0].id]


def test_skill_inherited_from_category_and_region_from_waybill(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    admin = make_user("admin")
    general, claims_north, claims_south = (make_user("agent") for _ in range(3))
    team = teams.save_team(db, actor=admin, code="care", name="Care").id
    teams.set_member(db, actor=admin, team_id=team, user_id=general.id, skills="logistics")
    teams.set_member(
        db, actor=admin, team_id=team, user_id=claims_north.id, skills="claims", regions="北京"
    )
    teams.set_member(
        db,
        actor=admin,
        team_id=team,
        user_id=claims_south.id,
        skills="claims,logistics",
        regions="广东,广西",
    )
    teams.save_rule(db, actor=admin, name="care", team_id=team, strategy="least_loaded")
    customer = make_customer()
    create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="SF1000000001", customer_id=customer.id, dest_province="广东省"
        ),
        actor=admin,
    )
    # damage.contents has no skill of its own: it inherits "claims" from damage.
    ticket = _new(db, admin, waybill_no="SF1000000001", category="damage.contents")
    assert (ticket.region, ticket.owner_id) == ("广东省", claims_south.id)
    # Without a region every claims agent qualifies: the least loaded (north) gets it.
    assert _new(db, admin, category="loss").owner_id == claims_north.id


def test_first_matching_rule_wins_and_queue_strategy(db: Session, make_user: Any) -> None:
    admin = make_user("admin")
    agent = make_user("agent")
    regulators = _team(db, admin, "regulator", [agent])
    general = _team(db, admin, "general", [agent])
    teams.save_rule(
        db,
        actor=admin,
        name="12305",
        team_id=regulators,
        channel="regulator",
        strategy="queue",
        position=1,
    )
    teams.save_rule(db, actor=admin, name="rest", team_id=general, position=2)
    referral = _new(db, admin, channel="regulator")
    assert (referral.team_id, referral.owner_id, referral.status) == (regulators, None, "new")
    other = _new(db, admin)
    assert (other.team_id, other.owner_id) == (general, agent.id)


def test_no_rule_no_candidate(db: Session, make_user: Any) -> None:
    admin = make_user("admin")
    assert (_new(db, admin).team_id, _new(db, admin).owner_id) == (None, None)
    busy = make_user("agent")
    team = _team(db, admin, "busy", [busy], accepting=False)
    teams.save_rule(db, actor=admin, name="r", team_id=team)
    ticket = _new(db, admin)
    assert (ticket.team_id, ticket.owner_id, ticket.status) == (team, None, "new")


def test_unknown_or_inactive_category_refused(db: Session, make_user: Any) -> None:
    admin = make_user("admin")
    with pytest.raises(ValidationFailed) as info:
        _new(db, admin, category="no.such")
    assert [(e.loc, e.code) for e in info.value.errors] == [(("category",), "category_unknown")]
    node = next(n for n in categories.tree(db) if n.code == "price.overcharge")
    categories.update_category(db, category_id=node.id, actor=admin, active=False)
    with pytest.raises(ValidationFailed):
        _new(db, admin, category="price.overcharge")
    assert _new(db, admin, category="price").category == "price"


def test_concurrent_round_robin_gives_each_turn_once(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        system = Actor.system("t")
        admin = create_user(
            s,
            user_in=UserCreate(
                username="admin", display_name="A", role="admin", password="longenough1"
            ),  # type: ignore[arg-type]
            actor=system,
        )
        agents = [
            create_user(
                s,
                user_in=UserCreate(
                    username=f"agent{n}", display_name=f"a{n}", role="agent", password="longenough1"
                ),  # type: ignore[arg-type]
                actor=system,
            )
            for n in range(4)
        ]
        team = teams.save_team(s, actor=admin, code="rr", name="RR").id
        for agent in agents:
            teams.set_member(s, actor=admin, team_id=team, user_id=agent.id)
        teams.save_rule(s, actor=admin, name="rr", team_id=team, strategy="round_robin")
        admin_id = admin.id
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        with sm() as s:
            me = s.get(type(admin), admin_id)
            barrier.wait()
            try:
                _new(s, me)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with sm() as s:
        owners = Counter(s.scalars(select(Ticket.owner_id)))
    # Eight tickets over four agents in strict turns: two each.
    assert owners == Counter({a.id: 2 for a in agents})


def test_major_and_repeat_alert_the_supervisors(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent, manager = make_user("agent"), make_user("manager")
    customer = make_customer()
    major = _new(db, agent, severity="critical", subject="媒体曝光")
    first = _new(db, agent, customer_id=customer.id)
    again = _new(db, agent, customer_id=customer.id)
    assert (first.is_repeat, again.is_repeat) == (False, True)
    alerts = sorted(
        (n.kind, n.user_id, n.link)
        for n in db.scalars(select(Notification).where(Notification.kind.like("ticket_%")))
    )
    assert alerts == [
        ("ticket_major", manager.id, f"/tickets/{major.id}"),
        ("ticket_repeat", manager.id, f"/tickets/{again.id}"),
    ]


def test_tags_from_the_form(client: Any, db: Session, make_user: Any) -> None:
    import re

    from tests.conftest import PASSWORD

    agent = make_user("agent")
    client.post("/login", data={"username": agent.username, "password": PASSWORD})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/tickets/new").text)
    assert csrf is not None
    resp = client.post(
        "/tickets",
        data={
            "csrf_token": csrf.group(1),
            "type": "complaint",
            "channel": "hotline",
            "severity": "minor",
            "subject": "带标签",
            "tags": "媒体关注， 大客户,媒体关注",
            "category": "damage",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    ticket = db.scalar(select(Ticket).where(Ticket.subject == "带标签"))
    assert ticket is not None
    assert (ticket.tags, ticket.category) == ("媒体关注,大客户", "damage")
