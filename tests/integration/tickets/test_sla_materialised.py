"""Materialised SLA moments: every change re-computes the nearest due time and the next
moment the sweep must look; the sweep reads only tickets whose moment has come; a full
sweep fills tickets written before; the breaching-soon queue is ordered by due time."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.tickets import service
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.jobs import sweep_sla
from guanxi.tickets.models import Ticket
from guanxi.tickets.schemas import TicketCreate

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar()


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def _new(db: Session, actor: Any, subject: str = "破损", **kw: Any) -> Ticket:
    data = {"type": "complaint", "channel": "hotline", "subject": subject} | kw
    return service.create_ticket(db, ticket_in=TicketCreate(**data), actor=actor)


def test_moments_follow_every_change(db: Session, make_user: Any) -> None:
    agent = make_user("agent")
    with clock.frozen(_at(2, 9)):  # Monday 09:00, complaint normal: 2 h / 48 h
        ticket = _new(db, agent)
    # Due 11:00; warning at 1 h 30 (a quarter left) is the first moment to look.
    assert (ticket.sla_due_at, ticket.sla_check_at) == (_at(2, 11), _at(2, 10, 30))
    with clock.frozen(_at(2, 10)):
        ticket = service.take(db, ticket_id=ticket.id, actor=agent)
        ticket = service.act(
            db, ticket_id=ticket.id, action=TicketAction.start, actor=agent, version=ticket.version
        )
    # First response met at 10:00: resolution 48 working hours of 09:00-18:00 days from
    # Monday 09:00 is five full days (45 h) and three hours: next Monday 12:00.
    assert ticket.sla_due_at == _at(9, 12)
    # The warning at 36 h used (four full days) comes at Thursday 18:00.
    assert ticket.sla_check_at == _at(5, 18)
    with clock.frozen(_at(2, 11)):
        ticket = service.act(
            db,
            ticket_id=ticket.id,
            action=TicketAction.wait_customer,
            actor=agent,
            version=ticket.version,
        )
    assert (ticket.sla_due_at, ticket.sla_check_at) == (None, None)  # paused
    with clock.frozen(_at(3, 9)):
        ticket = service.act(
            db, ticket_id=ticket.id, action=TicketAction.resume, actor=agent, version=ticket.version
        )
    # Paused from Monday 11:00 to Tuesday 09:00 (7 working hours): due 7 h later.
    assert ticket.sla_due_at == _at(10, 10)
    with clock.frozen(_at(3, 10)):
        ticket = service.act(
            db,
            ticket_id=ticket.id,
            action=TicketAction.resolve,
            actor=agent,
            version=ticket.version,
        )
    assert (ticket.sla_due_at, ticket.sla_check_at) == (None, None)  # done


def test_sweep_reads_only_what_is_due_and_full_sweep_fills(db: Session, make_user: Any) -> None:
    agent = make_user("agent")
    with clock.frozen(_at(2, 9)):
        early = _new(db, agent, "早")
    with clock.frozen(_at(2, 10)):
        late = _new(db, agent, "晚")
    assert sweep_sla(db, now=_at(2, 10, 0), calendar=CAL).checked == 0
    first = sweep_sla(db, now=_at(2, 10, 31), calendar=CAL)  # early's warning moment
    assert (first.checked, first.warnings) == (1, 1)
    db.expire_all()
    # Early's next moment is its breach at 11:00; late's warning at 11:30 is untouched.
    assert db.get(Ticket, early.id).sla_check_at == _at(2, 11)  # type: ignore[union-attr]
    assert db.get(Ticket, late.id).sla_check_at == _at(2, 11, 30)  # type: ignore[union-attr]
    assert sweep_sla(db, now=_at(2, 10, 45), calendar=CAL).checked == 0
    # A ticket written before the moments existed (NULL) is found by the full sweep only.
    db.execute(update(Ticket).values(sla_due_at=None, sla_check_at=None))
    db.commit()
    assert sweep_sla(db, now=_at(2, 10, 50), calendar=CAL).checked == 0
    full = sweep_sla(db, now=_at(2, 10, 50), calendar=CAL, full=True)
    assert (full.checked, full.warnings, full.breaches) == (2, 0, 0)
    db.expire_all()
    assert db.get(Ticket, early.id).sla_check_at == _at(2, 11)  # type: ignore[union-attr]
    assert db.get(Ticket, late.id).sla_due_at == _at(2, 12)  # type: ignore[union-attr]


def _ids(html: str) -> list[str]:
    """Ticket ids in the queue table, in order (each row links the id and the subject)."""
    import re

    return list(dict.fromkeys(re.findall(r'<td><a href="/tickets/(\d+)">', html)))


def test_breaching_soon_queue(client: Any, db: Session, make_user: Any) -> None:
    from tests.conftest import PASSWORD

    agent = make_user("agent")
    now = clock.now()
    with clock.frozen(now):
        soon = _new(db, agent, "快超时")  # first response due in 2 working hours at most
    db.execute(
        update(Ticket).where(Ticket.id == soon.id).values(sla_due_at=now.replace(microsecond=0))
    )
    later = _new(db, agent, "不急")
    db.execute(
        update(Ticket)
        .where(Ticket.id == later.id)
        .values(sla_due_at=datetime(2099, 1, 1, tzinfo=SH))
    )
    db.commit()
    client.post("/login", data={"username": agent.username, "password": PASSWORD})
    page = client.get("/tickets?view=soon")
    assert page.status_code == 200
    listed = _ids(page.text)
    assert listed == [str(soon.id)]
    everyone = _ids(client.get("/tickets?view=open").text)
    assert sorted(everyone) == sorted([str(soon.id), str(later.id)])
    # The type filter narrows the queue.
    none = client.get("/tickets?view=open&type=inquiry").text
    assert _ids(none) == []
