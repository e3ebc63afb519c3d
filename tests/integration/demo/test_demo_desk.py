"""The demo service desk: tickets on demo waybills, routed to the demo hotline team, worked
to every stage through the services; loading twice opens nothing more."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, select

from guanxi.core.db import make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.desk import seed_desk
from guanxi.demo.generator import generate
from guanxi.tickets.models import Claim, Team, Ticket, TicketEvent


def test_demo_desk(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=300, seed=3, owner_ids=owners, duplicate_rate=0.0)
    with sm() as session:
        assert seed_desk(session, seed=7, count=25) == 25
        assert seed_desk(session, seed=7, count=25) == 0  # once
        [team] = session.scalars(select(Team))
        tickets = list(session.scalars(select(Ticket)))
        assert team.code == "hotline"
        assert {t.team_id for t in tickets} == {team.id}
        # Routing gave every ticket an owner at once (least loaded of the two agents).
        assert all(t.owner_id is not None for t in tickets)
        statuses = Counter(t.status for t in tickets)
        assert set(statuses) <= {
            "assigned",
            "in_progress",
            "waiting_customer",
            "resolved",
            "closed",
        }
        assert statuses["assigned"] == 5  # every fifth ticket is left untouched
        for t in tickets:
            if t.status != "assigned":
                assert t.first_response_at is not None
            if t.status == "closed":
                assert t.satisfaction == 5
            if t.status in ("resolved", "closed"):
                assert (t.resolution_code, t.sla_due_at) == ("redelivered", None)
        replies = session.scalars(select(TicketEvent).where(TicketEvent.internal.is_(False)))
        assert all(e.note for e in replies)
        claimed = {c.ticket_id for c in session.scalars(select(Claim))}
        assert claimed
        assert claimed <= {t.id for t in tickets if t.status != "assigned"}
