"""Periodic service-desk work for ``guanxi worker``: the SLA sweep.

Every open ticket's targets are checked against the working calendar: shortly before a
target falls due the owner is warned; when it is missed the breach is recorded and the
owner and the supervisors are told; when it is overdue by as long again the managers and
administrators are. Each of these happens once per ticket and target — recorded under a
unique key, notifications keyed the same way — so the sweep may run twice, concurrently or
after a crash without telling anyone twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.notify.service import notify
from guanxi.security.models import User
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.tickets.calendar import BusinessCalendar, elapsed
from guanxi.tickets.enums import DONE
from guanxi.tickets.models import SlaEvent, Ticket, TicketEvent
from guanxi.tickets.service import clock_spans, targets

# Warn when less than this share of a target's time is left.
WARN_SHARE = 0.25
BATCH = 500


@dataclass
class SweepResult:
    """What one sweep found and did."""

    checked: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0


def _people(session: Session) -> tuple[list[int], list[int]]:
    """(supervisors, managers and administrators) among active users."""
    supervisors, top = [], []
    for uid, role in session.execute(select(User.id, User.role).where(User.is_active.is_(True))):
        if role_has(role, Permission.ticket_manage):
            supervisors.append(uid)
        if role in (Role.manager.value, Role.admin.value):
            top.append(uid)
    return supervisors, top


def _record(
    session: Session, ticket_id: int, target: str, kind: str, due: datetime, now: datetime
) -> bool:
    """Record a moment once; False when it was recorded before (by any run)."""
    exists = session.scalar(
        select(SlaEvent.id).where(
            SlaEvent.ticket_id == ticket_id, SlaEvent.target == target, SlaEvent.kind == kind
        )
    )
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(
                insert(SlaEvent).values(
                    ticket_id=ticket_id, target=target, kind=kind, due_at=due, recorded_at=now
                )
            )
    except IntegrityError:  # another worker recorded it between our check and insert
        return False
    return True


def sweep_sla(session: Session, *, now: datetime, calendar: BusinessCalendar) -> SweepResult:
    """Check every open ticket once (in batches, each its own transaction)."""
    result = SweepResult()
    supervisors, top = _people(session)
    done = [s.value for s in DONE]
    last_id = 0
    while True:
        tickets = list(
            session.scalars(
                select(Ticket)
                .where(Ticket.id > last_id, Ticket.status.not_in(done))
                .order_by(Ticket.id)
                .limit(BATCH)
            )
        )
        if not tickets:
            break
        last_id = tickets[-1].id
        events: dict[int, list[TicketEvent]] = {t.id: [] for t in tickets}
        for event in session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id.in_(list(events)))
            .order_by(TicketEvent.id)
        ):
            events[event.ticket_id].append(event)
        with write_transaction(session):
            for ticket in tickets:
                result.checked += 1
                _check(session, ticket, events[ticket.id], now, calendar, supervisors, top, result)
        session.expunge_all()
    return result


def _check(
    session: Session,
    ticket: Ticket,
    events: list[TicketEvent],
    now: datetime,
    calendar: BusinessCalendar,
    supervisors: list[int],
    top: list[int],
    result: SweepResult,
) -> None:
    spans = clock_spans(ticket, events)
    paused = spans[-1].paused
    owner = [ticket.owner_id] if ticket.owner_id else []
    link = f"/tickets/{ticket.id}"
    for target in targets(ticket):
        if target.name == "first_response" and ticket.first_response_at is not None:
            continue
        cal = calendar if target.business_hours else None
        used = elapsed(spans, now, cal)
        goal = target.hours * 3600
        key = f"sla:{ticket.id}:{target.name}"
        if used >= 2 * goal and _record(session, ticket.id, target.name, "escalation", now, now):
            result.escalations += 1
            notify(
                session,
                user_ids=top,
                key=f"{key}:escalation",
                kind="sla_escalation",
                subject=f"#{ticket.id} {ticket.subject}",
                link=link,
            )
        if used >= goal and _record(session, ticket.id, target.name, "breach", now, now):
            result.breaches += 1
            notify(
                session,
                user_ids=owner + supervisors,
                key=f"{key}:breach",
                kind="sla_breach",
                subject=f"#{ticket.id} {ticket.subject}",
                link=link,
            )
        elif (
            not paused
            and goal * (1 - WARN_SHARE) <= used < goal
            and _record(session, ticket.id, target.name, "warning", now, now)
        ):
            result.warnings += 1
            notify(
                session,
                user_ids=owner or supervisors,
                key=f"{key}:warning",
                kind="sla_warning",
                subject=f"#{ticket.id} {ticket.subject}",
                link=link,
            )
