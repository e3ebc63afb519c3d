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

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.notify.service import Note, notify_many
from guanxi.tickets.calendar import BusinessCalendar, elapsed
from guanxi.tickets.enums import DONE
from guanxi.tickets.models import SlaEvent, Ticket, TicketEvent
from guanxi.tickets.service import escalation_people
from guanxi.tickets.sla import (
    WARN_SHARE,
    ClockEvent,
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


@dataclass(frozen=True)
class _Moment:
    """A moment the sweep found due: which ticket, target and kind, and whom to tell."""

    ticket: Ticket
    target: str
    kind: str
    users: tuple[int, ...]


_NOTE_KIND = {"warning": "sla_warning", "breach": "sla_breach", "escalation": "sla_escalation"}
# Rows per multi-row insert of moments (5 values each, under SQLite's parameter limit).
_INSERT_ROWS = 1000


def _record_all(session: Session, moments: list[_Moment], now: datetime) -> list[_Moment]:
    """Record the moments in bulk, each once: a moment another run recorded meanwhile is
    skipped by the unique key (ON CONFLICT DO NOTHING), and only the rows this run
    inserted come back (RETURNING) - so a racing worker tells nobody twice."""
    if not moments:
        return []
    dialect = session.get_bind().dialect.name
    make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted: set[tuple[int, str, str]] = set()
    for i in range(0, len(moments), _INSERT_ROWS):
        chunk = moments[i : i + _INSERT_ROWS]
        stmt = (
            make_insert(SlaEvent)
            .values(
                [
                    {
                        "ticket_id": m.ticket.id,
                        "target": m.target,
                        "kind": m.kind,
                        "due_at": now,
                        "recorded_at": now,
                    }
                    for m in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["ticket_id", "target", "kind"])
            .returning(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.kind)
        )
        inserted.update((t, g, k) for t, g, k in session.execute(stmt))
    return [m for m in moments if (m.ticket.id, m.target, m.kind) in inserted]


# Only the materialised columns are written, and only if nobody changed the ticket since it
# was read (an agent's change re-materialises them itself).
_TICKETS = cast(Table, Ticket.__table__)
_SET_MOMENTS = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"), _TICKETS.c.version == bindparam("seen_version"))
    .values(sla_due_at=bindparam("due"), sla_check_at=bindparam("check"))
)


# What the sweep reads of a ticket (sla.py and _check use nothing else).
_SWEEP_COLUMNS = (
    Ticket.id,
    Ticket.status,
    Ticket.type,
    Ticket.priority,
    Ticket.channel,
    Ticket.team_id,
    Ticket.created_at,
    Ticket.first_response_at,
    Ticket.resolved_at,
    Ticket.owner_id,
    Ticket.subject,
    Ticket.version,
    Ticket.sla_due_at,
    Ticket.sla_check_at,
)


def _due_ids(session: Session, now: datetime) -> list[int]:
    """Ids of the tickets whose next moment has come, answered from the covering index
    ``ix_ticket_sla_check_at`` (done tickets carry none). With ``ORDER BY id LIMIT`` or a
    status test SQLite would walk the primary key over every ticket instead."""
    return sorted(session.scalars(select(Ticket.id).where(Ticket.sla_check_at <= now)))


def sweep_sla(
    session: Session, *, now: datetime, calendar: BusinessCalendar, full: bool = False
) -> SweepResult:
    """Look at every open ticket whose next SLA moment has come (``full``: every open
    ticket, e.g. after the policy changed or an upgrade), record and tell what is due,
    and re-materialise its next moment. In batches, each its own transaction."""
    result = SweepResult()
    ctx = sla_context(session, calendar=calendar)
    supervisors, top = escalation_people(session)
    done = [s.value for s in DONE]
    last_id = 0
    pending = [] if full else _due_ids(session, now)
    while True:
        if full:
            stmt = select(*_SWEEP_COLUMNS).where(Ticket.id > last_id, Ticket.status.not_in(done))
            rows = session.execute(stmt.order_by(Ticket.id).limit(BATCH))
        else:
            batch, pending = pending[:BATCH], pending[BATCH:]
            rows = session.execute(
                select(*_SWEEP_COLUMNS)
                .where(Ticket.id.in_(batch or [-1]), Ticket.status.not_in(done))
                .order_by(Ticket.id)
            )
        # Plain rows with the columns the SLA arithmetic reads (they answer the same
        # attribute names as a Ticket): a full sweep reads 100,000 of them.
        tickets = [cast(Ticket, row) for row in rows]
        if not tickets:
            break
        last_id = tickets[-1].id
        ids = [t.id for t in tickets]
        # Plain rows, not ORM events: the clock needs two columns of each, and a full sweep
        # reads half a million of them.
        events: dict[int, list[ClockEvent]] = {tid: [] for tid in ids}
        for event in session.execute(
            select(TicketEvent.ticket_id, TicketEvent.occurred_at, TicketEvent.to_status)
            .where(TicketEvent.ticket_id.in_(ids))
            .order_by(TicketEvent.id)
        ):
            events[event.ticket_id].append(cast(ClockEvent, event))
        recorded = recorded_moments(session, ids)
        with write_transaction(session):
            found: list[_Moment] = []
            for ticket in tickets:
                result.checked += 1
                found.extend(
                    _check(ticket, events[ticket.id], now, ctx, supervisors, top, recorded)
                )
            new = _record_all(session, found, now)
            _tell(session, new, result)
            for moment in new:
                recorded[moment.ticket.id].add((moment.target, moment.kind))
            changed = []
            for ticket in tickets:
                due, check = sla_moments(ticket, events[ticket.id], now, ctx, recorded[ticket.id])
                if (due, check) != (ticket.sla_due_at, ticket.sla_check_at):
                    changed.append(
                        {
                            "tid": ticket.id,
                            "seen_version": ticket.version,
                            "due": due,
                            "check": check,
                        }
                    )
            if changed:
                session.execute(_SET_MOMENTS, changed)
    return result


def _tell(session: Session, moments: list[_Moment], result: SweepResult) -> None:
    """Count the new moments and notify their people in one go."""
    notes = []
    for m in moments:
        if m.kind == "warning":
            result.warnings += 1
        elif m.kind == "breach":
            result.breaches += 1
        else:
            result.escalations += 1
        notes.append(
            Note(
                m.users,
                f"sla:{m.ticket.id}:{m.target}:{m.kind}",
                _NOTE_KIND[m.kind],
                f"#{m.ticket.id} {m.ticket.subject}",
                link=f"/tickets/{m.ticket.id}",
            )
        )
    notify_many(session, notes)


def _check(
    ticket: Ticket,
    events: list[ClockEvent],
    now: datetime,
    ctx: SlaContext,
    supervisors: list[int],
    top: list[int],
    recorded: dict[int, set[tuple[str, str]]],
) -> list[_Moment]:
    """The moments of one ticket that have come and are not recorded yet: the escalation
    (to managers) at twice the target, the breach (to the owner and supervisors), or else
    the warning (to the owner) when less than a quarter is left and the clock runs."""
    spans = clock_spans(ticket, events)
    paused = spans[-1].paused
    owner = (ticket.owner_id,) if ticket.owner_id else ()
    calendar = ctx.calendar_of(ticket)
    have = recorded[ticket.id]
    out = []
    for target in targets(ticket, ctx.policy):
        if target.name == "first_response" and ticket.first_response_at is not None:
            continue
        cal = calendar if target.business_hours else None
        used = elapsed(spans, now, cal)
        goal = target.hours * 3600
        name = target.name
        if used >= 2 * goal and (name, "escalation") not in have:
            out.append(_Moment(ticket, name, "escalation", tuple(top)))
        if used >= goal:
            if (name, "breach") not in have:
                out.append(_Moment(ticket, name, "breach", owner + tuple(supervisors)))
        elif not paused and goal * (1 - WARN_SHARE) <= used and (name, "warning") not in have:
            out.append(_Moment(ticket, name, "warning", owner or tuple(supervisors)))
    return out
