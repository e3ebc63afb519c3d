"""The SLA sweep: a warning before the first response is due, the breach, the escalation,
each recorded and notified once however often the sweep runs; paused tickets left alone."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.notify.models import Notification
from guanxi.notify.service import inbox
from guanxi.tickets import service
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.jobs import sweep_sla
from guanxi.tickets.models import SlaEvent
from guanxi.tickets.schemas import TicketCreate

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar()


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def _moments(db: Session) -> list[tuple[int, str, str]]:
    return [
        (t, target, kind)
        for t, target, kind in db.execute(
            select(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.kind).order_by(SlaEvent.id)
        )
    ]


def test_warning_breach_escalation_once(db: Session, make_user: Any) -> None:
    agent, manager = make_user("agent"), make_user("manager")
    with clock.frozen(_at(2, 9)):  # Monday 09:00: first response due 11:00
        ticket = service.create_ticket(
            db,
            ticket_in=TicketCreate(type="complaint", channel="hotline", subject="催件"),  # type: ignore[arg-type]
            actor=agent,
        )
        ticket = service.take(db, ticket_id=ticket.id, actor=agent)
    waiting = service.create_ticket(
        db,
        ticket_in=TicketCreate(type="inquiry", channel="hotline", subject="等客户回复"),  # type: ignore[arg-type]
        actor=agent,
    )
    waiting = service.take(db, ticket_id=waiting.id, actor=agent)
    waiting = service.act(
        db, ticket_id=waiting.id, action=TicketAction.start, actor=agent, version=waiting.version
    )
    waiting = service.act(
        db,
        ticket_id=waiting.id,
        action=TicketAction.wait_customer,
        actor=agent,
        version=waiting.version,
    )

    first = sweep_sla(db, now=_at(2, 10, 40), calendar=CAL)  # 1 h 40 of 2 h used
    assert (first.warnings, first.breaches, first.escalations) == (1, 0, 0)
    again = sweep_sla(db, now=_at(2, 10, 50), calendar=CAL)
    assert (again.warnings, again.breaches) == (0, 0)
    breach = sweep_sla(db, now=_at(2, 11, 30), calendar=CAL)
    assert (breach.breaches, breach.escalations) == (1, 0)
    late = sweep_sla(db, now=_at(2, 13, 5), calendar=CAL)  # 4 h 05 used: twice the target
    assert late.escalations == 1
    assert _moments(db) == [
        (ticket.id, "first_response", "warning"),
        (ticket.id, "first_response", "breach"),
        (ticket.id, "first_response", "escalation"),
    ]
    # Each told once: the owner of the warning and the breach, the manager of the breach
    # (supervisor) and of the escalation.
    assert [n.kind for n in reversed(inbox(db, user_id=agent.id))] == ["sla_warning", "sla_breach"]
    assert [n.kind for n in reversed(inbox(db, user_id=manager.id))] == [
        "sla_breach",
        "sla_escalation",
    ]
    assert sweep_sla(db, now=_at(2, 16), calendar=CAL).breaches == 0
    assert db.scalar(select(Notification.link).limit(1)) == f"/tickets/{ticket.id}"


def test_worker_once_from_the_command_line(
    committed_engine: Engine, tmp_path: Any, monkeypatch: Any
) -> None:
    import json

    from typer.testing import CliRunner

    from guanxi.cli import app
    from guanxi.config import get_settings
    from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY

    monkeypatch.setenv(
        "GUANXI_DATABASE_URL", committed_engine.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("GUANXI_ENV", "test")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GUANXI_FIELD_KEYS", json.dumps({"t1": TEST_FIELD_KEY}))
    monkeypatch.setenv("GUANXI_ACTIVE_FIELD_KEY", "t1")
    monkeypatch.setenv("GUANXI_BLIND_INDEX_KEY", TEST_BLIND_KEY)
    monkeypatch.setenv("GUANXI_SECRET_KEY", "test-secret")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["worker", "--once"])
        assert out.exit_code == 0, out.output
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        assert figures["sla_full_sweep"] == {
            "checked": 0,
            "warnings": 0,
            "breaches": 0,
            "escalations": 0,
        }
        assert figures["sla_sweep"] == {
            "checked": 0,
            "warnings": 0,
            "breaches": 0,
            "escalations": 0,
        }
    finally:
        get_settings.cache_clear()


def test_inbox_page_lists_and_opens(client: Any, db: Session, make_user: Any) -> None:
    import re

    from guanxi.notify.service import notify
    from tests.conftest import PASSWORD

    agent = make_user("agent")
    other = make_user("agent")
    notify(
        db, user_ids=[agent.id], key="k1", kind="sla_breach", subject="#7 催件", link="/tickets/7"
    )
    notify(
        db,
        user_ids=[other.id],
        key="k2",
        kind="sla_warning",
        subject="#8 别人的",
        link="/tickets/8",
    )
    client.post("/login", data={"username": agent.username, "password": PASSWORD, "next": "/"})
    page = client.get("/inbox", headers={"Accept-Language": "zh-CN"}).text
    assert "#7 催件" in page
    assert "别人的" not in page
    match = re.search(r'action="/inbox/(\d+)/open"', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    assert csrf
    opened = client.post(
        f"/inbox/{match.group(1)}/open", data={"csrf_token": csrf.group(1)}, follow_redirects=False
    )
    assert opened.headers["location"] == "/tickets/7"
    db.expire_all()
    assert [n.read_at is not None for n in inbox(db, user_id=agent.id)] == [True]
    # Someone else's notification neither opens nor changes.
    theirs = inbox(db, user_id=other.id)[0].id
    assert (
        client.post(
            f"/inbox/{theirs}/open", data={"csrf_token": csrf.group(1)}, follow_redirects=False
        ).headers["location"]
        == "/inbox"
    )


def test_two_sweeps_at_once_tell_once(committed_engine: Engine) -> None:
    import threading

    from guanxi.audit.service import Actor
    from guanxi.core.db import make_sessionmaker
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        system = Actor.system("t")
        agent = create_user(
            s,
            user_in=UserCreate(
                username="agent1", display_name="A", role="agent", password="longenough1"
            ),  # type: ignore[arg-type]
            actor=system,
        )
        create_user(
            s,
            user_in=UserCreate(
                username="manager1", display_name="M", role="manager", password="longenough1"
            ),  # type: ignore[arg-type]
            actor=system,
        )
        with clock.frozen(_at(2, 9)):
            for n in range(30):
                service.create_ticket(
                    s,
                    ticket_in=TicketCreate(type="complaint", channel="hotline", subject=f"#{n}"),  # type: ignore[arg-type]
                    actor=agent,
                )
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        with sm() as s:
            barrier.wait()
            results.append(sweep_sla(s, now=_at(2, 13, 5), calendar=CAL))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # 30 unassigned tickets, first response 2 h: each breached and escalated once in all.
    assert sum(r.breaches for r in results) == 30
    assert sum(r.escalations for r in results) == 30
    with sm() as s:
        kinds = Counter(k for (k,) in s.execute(select(SlaEvent.kind)))
        notes = Counter(k for (k,) in s.execute(select(Notification.kind)))
    assert kinds == Counter({"breach": 30, "escalation": 30})
    # Breaches go to the supervisor (no owner), escalations to the manager: one user each.
    assert notes == Counter({"sla_breach": 30, "sla_escalation": 30})
