"""Tickets on both databases: intake, 首问负责制 through two hand-overs, the workflow with
its refusals, re-processing until satisfied, SLA clocks across the Spring Festival, and
two agents taking one ticket at once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.core.errors import Conflict, PermissionDenied, ValidationFailed
from guanxi.tickets import service, sla
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.models import Ticket
from guanxi.tickets.schemas import TicketCreate

SH = ZoneInfo("Asia/Shanghai")
A = TicketAction


def _at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


def _ticket(db: Session, actor: Any, **kw: Any) -> Ticket:
    body = {"type": "complaint", "channel": "hotline", "subject": "快件延误三天", **kw}
    return service.create_ticket(db, ticket_in=TicketCreate(**body), actor=actor)


def _act(db: Session, ticket: Ticket, action: A, actor: Any, **kw: Any) -> Ticket:
    return service.act(
        db, ticket_id=ticket.id, action=action, actor=actor, version=ticket.version, **kw
    )


def test_intake_checks_customer_and_waybill(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="投诉客户")
    ticket = _ticket(db, agent, customer_id=customer.id, severity="major")
    assert (ticket.status, ticket.priority, ticket.owner_id) == ("new", "high", None)
    with pytest.raises(ValidationFailed) as bad:
        _ticket(db, agent, waybill_no="SF0000000000")
    assert bad.value.errors[0].code == "waybill_unknown"
    audited = select(AuditEntry.action).where(
        AuditEntry.target_type == "ticket", AuditEntry.target_id == str(ticket.id)
    )
    assert db.scalars(audited).all() == ["ticket.created"]


def test_ownership_through_two_hand_overs(db: Session, make_user: Any) -> None:
    first, second, third = make_user("agent"), make_user("agent"), make_user("agent")
    ticket = _ticket(db, first)
    ticket = service.take(db, ticket_id=ticket.id, actor=first)
    assert (ticket.owner_id, ticket.first_owner_id, ticket.status) == (
        first.id,
        first.id,
        "assigned",
    )
    with pytest.raises(Conflict) as taken:
        service.take(db, ticket_id=ticket.id, actor=second)
    assert taken.value.message == "ticket_taken"
    with pytest.raises(PermissionDenied):
        service.hand_over(db, ticket_id=ticket.id, to_user_id=third.id, reason="越权", actor=second)
    service.hand_over(db, ticket_id=ticket.id, to_user_id=second.id, reason="转理赔组", actor=first)
    ticket = service.hand_over(
        db, ticket_id=ticket.id, to_user_id=third.id, reason="客户要求换人", actor=second
    )
    from guanxi.notify.service import inbox

    assert [(n.kind, n.body) for n in inbox(db, user_id=third.id)] == [
        ("ticket_handover", "客户要求换人")
    ]
    # The first owner stays accountable; the timeline keeps every hand-over and its reason.
    assert (ticket.owner_id, ticket.first_owner_id) == (third.id, first.id)
    steps = [(e.action, e.to_user_id, e.note) for e in service.events_of(db, ticket.id)]
    assert steps == [
        ("create", None, None),
        ("take", first.id, None),
        ("hand_over", second.id, "转理赔组"),
        ("hand_over", third.id, "客户要求换人"),
    ]
    sales = make_user("sales")
    with pytest.raises(ValidationFailed) as receiver:
        service.hand_over(db, ticket_id=ticket.id, to_user_id=sales.id, reason="试试", actor=third)
    assert receiver.value.errors[0].code == "ticket_receiver"


def test_workflow_refusals_and_reprocessing(db: Session, make_user: Any) -> None:
    agent = make_user("agent")
    ticket = service.take(db, ticket_id=_ticket(db, agent).id, actor=agent)
    with pytest.raises(Conflict) as illegal:
        _act(db, ticket, A.close, agent)
    assert illegal.value.message == "ticket_transition"
    assert illegal.value.params["status"] == "assigned"
    ticket = _act(db, ticket, A.start, agent)
    ticket = _act(db, ticket, A.wait_customer, agent, note="请提供照片", reply=True)
    stale = ticket.version - 1
    with pytest.raises(Conflict) as old:
        service.act(db, ticket_id=ticket.id, action=A.resume, actor=agent, version=stale)
    assert old.value.message == "version_conflict"
    ticket = _act(db, ticket, A.resume, agent)
    ticket = _act(db, ticket, A.resolve, agent, note="已补发", reply=True)
    assert ticket.resolved_at is not None
    # The customer is not satisfied: re-process until satisfied.
    ticket = _act(db, ticket, A.reopen, agent)
    assert (ticket.status, ticket.reopened, ticket.resolved_at) == ("in_progress", 1, None)
    ticket = _act(db, ticket, A.resolve, agent)
    ticket = _act(db, ticket, A.close, agent)
    with clock.frozen(ticket.closed_at + timedelta(days=8)):  # type: ignore[operator]
        with pytest.raises(Conflict) as late:
            _act(db, ticket, A.reopen, agent)
    assert late.value.message == "ticket_reopen_window"
    with clock.frozen(ticket.closed_at + timedelta(days=6)):  # type: ignore[operator]
        ticket = _act(db, ticket, A.reopen, agent)
    assert (ticket.status, ticket.reopened) == ("in_progress", 2)
    other = make_user("agent")
    with pytest.raises(PermissionDenied):
        _act(db, ticket, A.resolve, other)
    ticket = _act(db, ticket, A.resolve, make_user("manager"))  # a supervisor steps in
    assert ticket.status == "resolved"


def test_sla_across_the_spring_festival_with_a_pause(db: Session, make_user: Any) -> None:
    agent = make_user("agent")
    cal = BusinessCalendar()
    with clock.frozen(_at(2, 13, 17)):  # Friday before the holiday, 17:00
        ticket = _ticket(db, agent, severity="major")  # complaint, high: 2 h / 24 h
        ticket = service.take(db, ticket_id=ticket.id, actor=agent)
    with clock.frozen(_at(2, 14, 9, 30)):  # the worked Saturday (调休)
        ticket = _act(db, ticket, A.start, agent)
        ticket = _act(db, ticket, A.wait_customer, agent, reply=True)
    events = service.events_of(db, ticket.id)
    now = _at(2, 24, 12)
    first, resolution = sla.sla(ticket, events, now, cal)
    # First response due 2 business hours after Friday 17:00 = Saturday 10:00; met 09:30.
    assert (first.due_at, first.met_at, first.breached) == (
        _at(2, 14, 10),
        _at(2, 14, 9, 30),
        False,
    )
    # Paused while waiting on the customer: no resolution deadline.
    assert (resolution.due_at, resolution.paused) == (None, True)
    with clock.frozen(_at(2, 24, 12)):  # the customer answers after the holiday
        ticket = _act(db, ticket, A.resume, agent)
    events = service.events_of(db, ticket.id)
    resolution = sla.sla(ticket, events, _at(2, 24, 12), cal)[1]
    # 1.5 h counted before the pause (Fri 17-18, Sat 9-9:30); 22.5 h left from Tue 12:00:
    # Tue 6 h, Wed 9 h, Thu 7.5 h -> Thursday 16:30.
    assert resolution.due_at == _at(2, 26, 16, 30)
    assert resolution.breached is False
    assert sla.sla(ticket, events, _at(2, 27, 9), cal)[1].breached is True


def test_two_agents_take_one_ticket_at_once(committed_engine: Engine) -> None:
    from guanxi.audit.service import Actor
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    factory = make_sessionmaker(committed_engine)
    with factory() as session:
        agents = [
            create_user(
                session,
                user_in=UserCreate(
                    username=f"taker{i}", display_name="坐席", role="agent", password="longenough1"
                ),  # type: ignore[arg-type]
                actor=Actor.system("test"),
            )
            for i in range(2)
        ]
        ticket_id = _ticket(session, agents[0]).id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def grab(agent: Any) -> None:
        with factory() as own:
            barrier.wait()
            try:
                service.take(own, ticket_id=ticket_id, actor=agent)
                outcomes.append("won")
            except Conflict as exc:
                outcomes.append(exc.message)

    threads = [threading.Thread(target=grab, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ticket_taken", "won"]
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        assert ticket.owner_id in {a.id for a in agents}
        assert ticket.first_owner_id == ticket.owner_id
        assert len(service.events_of(session, ticket_id)) == 2


def test_repeat_and_major_flags(db: Session, make_user: Any, make_customer: Any) -> None:
    agent = make_user("agent")
    customer = make_customer(name="老投诉客户")
    with clock.frozen(_at(3, 1, 10)):
        first = _ticket(db, agent, customer_id=customer.id)
    assert (first.is_repeat, first.is_major) == (False, False)
    with clock.frozen(_at(3, 20, 10)):
        second = _ticket(db, agent, customer_id=customer.id)
    assert second.is_repeat is True
    with clock.frozen(_at(5, 1, 10)):  # outside the 30-day window
        third = _ticket(db, agent, customer_id=customer.id)
    assert third.is_repeat is False
    referral = _ticket(db, agent, channel="regulator", subject="邮政管理局转办")
    assert (referral.is_major, referral.priority) == (True, "urgent")
    # Regulator referrals run on calendar hours: 24 h to respond, 7 days to resolve.
    first_response, resolution = sla.targets(referral)
    assert (first_response.hours, first_response.business_hours) == (24.0, False)
    assert (resolution.hours, resolution.business_hours) == (168.0, False)


def test_resolution_satisfaction_and_the_resolved_hook(
    db: Session, make_user: Any, monkeypatch: Any
) -> None:
    agent = make_user("agent")
    seen: list[tuple[int, str]] = []
    monkeypatch.setattr(service, "_resolved_hooks", [lambda s, t: seen.append((t.id, t.status))])
    ticket = service.take(db, ticket_id=_ticket(db, agent).id, actor=agent)
    ticket = _act(db, ticket, A.start, agent)
    ticket = _act(
        db, ticket, A.resolve, agent, resolution_code="redelivered", root_cause="分拣错误"
    )
    assert (ticket.resolution_code, ticket.root_cause) == ("redelivered", "分拣错误")
    assert seen == [(ticket.id, "resolved")]
    with pytest.raises(ValidationFailed):
        service.record_satisfaction(db, ticket_id=ticket.id, score=11, actor=agent)
    # The survey's CSAT (1-10): a low one is "not satisfied" on the timeline; the ticket
    # stays resolved (the survey's follow-up ticket takes it further).
    ticket = service.record_satisfaction(
        db, ticket_id=ticket.id, score=2, actor=agent, comment="还是没收到"
    )
    assert (ticket.status, ticket.reopened, ticket.satisfaction) == ("resolved", 0, 2)
    ticket = service.record_satisfaction(db, ticket_id=ticket.id, score=9, actor=agent)
    assert (ticket.status, ticket.satisfaction) == ("resolved", 9)
    ticket = _act(db, ticket, A.close, agent)
    steps = [e.action for e in service.events_of(db, ticket.id)]
    assert steps[-4:] == ["resolve", "unsatisfied", "satisfaction", "close"]
    other = service.take(db, ticket_id=_ticket(db, agent).id, actor=agent)
    with pytest.raises(Conflict) as open_ticket:
        service.record_satisfaction(db, ticket_id=other.id, score=4, actor=agent)
    assert open_ticket.value.message == "ticket_transition"
