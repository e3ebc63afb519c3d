"""Periodic service-desk work for ``guanxi worker``: the SLA sweep.

Every open ticket's targets are checked against the working calendar: shortly before a
target falls due the owner is warned; when it is missed the breach is recorded and the
owner and the supervisors are told; when it is overdue by as long again the managers and
administrators are. Each of these happens once per ticket and target — recorded under a
unique key, notifications keyed the same way — so the sweep may run twice, concurrently or
after a crash without telling anyone twice.

The sweep reads only tickets whose materialised ``sla_check_at`` has come (every change to a
ticket re-materialises it), so its cost follows what is due, not how many tickets are open;
a full sweep (hourly in the worker, and after a policy change) recomputes every open one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.notify.service import notify
from guanxi.security.models import User
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.tickets.calendar import BusinessCalendar, elapsed
from guanxi.tickets.enums import DONE
from guanxi.tickets.models import SlaEvent, Ticket, TicketEvent
from guanxi.tickets.sla import (
    WARN_SHARE,
    SlaContext,
    clock_spans,
    recorded_moments,
    sla_context,
    sla_moments,
    targets,
)

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
    session: Session,
    ticket_id: int,
    target: str,
    kind: str,
    due: datetime,
    now: datetime,
    recorded: set[tuple[str, str]],
) -> bool:
    """Record a moment once; False when it was recorded before (by any run)."""
    if (target, kind) in recorded:
        return False
    try:
        with session.begin_nested():
            session.execute(
                insert(SlaEvent).values(
                    ticket_id=ticket_id, target=target, kind=kind, due_at=due, recorded_at=now
                )
            )
    except IntegrityError:  # another worker recorded it between our read and insert
        return False
    recorded.add((target, kind))
    return True


# Only the materialised columns are written, and only if nobody changed the ticket since it
# was read (an agent's change re-materialises them itself).
_TICKETS = cast(Table, Ticket.__table__)
_SET_MOMENTS = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"), _TICKETS.c.version == bindparam("seen_version"))
    .values(sla_due_at=bindparam("due"), sla_check_at=bindparam("check"))
)


def sweep_sla(
    session: Session, *, now: datetime, calendar: BusinessCalendar, full: bool = False
) -> SweepResult:
    """Look at every open ticket whose next SLA moment has come (``full``: every open
    ticket, e.g. after the policy changed or an upgrade), record and tell what is due,
    and re-materialise its next moment. In batches, each its own transaction."""
    result = SweepResult()
    ctx = sla_context(session, calendar=calendar)
    supervisors, top = _people(session)
    done = [s.value for s in DONE]
    last_id = 0
    while True:
        stmt = select(Ticket).where(Ticket.id > last_id, Ticket.status.not_in(done))
        if not full:
            stmt = stmt.where(Ticket.sla_check_at <= now)
        tickets = list(session.scalars(stmt.order_by(Ticket.id).limit(BATCH)))
        if not tickets:
            break
        last_id = tickets[-1].id
        ids = [t.id for t in tickets]
        events: dict[int, list[TicketEvent]] = {tid: [] for tid in ids}
        for event in session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id.in_(ids)).order_by(TicketEvent.id)
        ):
            events[event.ticket_id].append(event)
        recorded = recorded_moments(session, ids)
        with write_transaction(session):
            moments = []
            for ticket in tickets:
                result.checked += 1
                done_before = recorded[ticket.id]
                _check(
                    session,
                    ticket,
                    events[ticket.id],
                    now,
                    ctx,
                    supervisors,
                    top,
                    result,
                    done_before,
                )
                due, check = sla_moments(ticket, events[ticket.id], now, ctx, done_before)
                moments.append(
                    {"tid": ticket.id, "seen_version": ticket.version, "due": due, "check": check}
                )
            session.execute(_SET_MOMENTS, moments)
        session.expunge_all()
    return result


def _check(
    session: Session,
    ticket: Ticket,
    events: list[TicketEvent],
    now: datetime,
    ctx: SlaContext,
    supervisors: list[int],
    top: list[int],
    result: SweepResult,
    recorded: set[tuple[str, str]],
) -> None:
    spans = clock_spans(ticket, events)
    paused = spans[-1].paused
    owner = [ticket.owner_id] if ticket.owner_id else []
    link = f"/tickets/{ticket.id}"
    calendar = ctx.calendar_of(ticket)
    for target in targets(ticket, ctx.policy):
        if target.name == "first_response" and ticket.first_response_at is not None:
            continue
        cal = calendar if target.business_hours else None
        used = elapsed(spans, now, cal)
        goal = target.hours * 3600
        key = f"sla:{ticket.id}:{target.name}"
        subject = f"#{ticket.id} {ticket.subject}"
        if used >= 2 * goal and _record(
            session, ticket.id, target.name, "escalation", now, now, recorded
        ):
            result.escalations += 1
            notify(
                session,
                user_ids=top,
                key=f"{key}:escalation",
                kind="sla_escalation",
                subject=subject,
                link=link,
            )
        if used >= goal and _record(session, ticket.id, target.name, "breach", now, now, recorded):
            result.breaches += 1
            notify(
                session,
                user_ids=owner + supervisors,
                key=f"{key}:breach",
                kind="sla_breach",
                subject=subject,
                link=link,
            )
        elif (
            not paused
            and goal * (1 - WARN_SHARE) <= used < goal
            and _record(session, ticket.id, target.name, "warning", now, now, recorded)
        ):
            result.warnings += 1
            notify(
                session,
                user_ids=owner or supervisors,
                key=f"{key}:warning",
                kind="sla_warning",
                subject=subject,
                link=link,
            )
