"""Service levels of tickets: the targets that apply (the desk policy), the ticket's clock
as counting and paused stretches derived from its timeline, due times on the team's
working calendar, and the moments the sweep acts on (warning, breach, escalation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.config import get_settings
from guanxi.tickets.calendar import BusinessCalendar, ClockSpan, due_at
from guanxi.tickets.desk import DEFAULT_POLICY, DeskPolicy, load_policy
from guanxi.tickets.enums import DONE, PAUSED, TicketChannel, TicketStatus
from guanxi.tickets.models import SlaEvent, Team, Ticket
from guanxi.tickets.schemas import SlaRead
from guanxi.tickets.teams import team_calendar


def calendar_for(timezone: str) -> BusinessCalendar:
    """The service desk's default working calendar (teams have their own hours)."""
    from zoneinfo import ZoneInfo

    return BusinessCalendar(tz=ZoneInfo(timezone))


@dataclass(frozen=True)
class Target:
    """One service-level target: hours, counted in business hours or around the clock."""

    name: str  # "first_response" | "resolution"
    hours: float
    business_hours: bool


def targets(ticket: Ticket, policy: DeskPolicy = DEFAULT_POLICY) -> list[Target]:
    """The service-level targets that apply to a ticket (its type x priority policy;
    regulator referrals by their legal deadline, around the clock)."""
    if ticket.channel == TicketChannel.regulator.value:
        reg = policy.regulator
        return [
            Target("first_response", reg.first_response_hours, False),
            Target("resolution", reg.resolution_hours, False),
        ]
    rule = policy.policy_for(ticket.type, ticket.priority)
    return [
        Target("first_response", rule.first_response_hours, rule.business_hours),
        Target("resolution", rule.resolution_hours, rule.business_hours),
    ]


@dataclass(frozen=True)
class SlaContext:
    """What SLA arithmetic needs besides the ticket: the policy in force, the desk's
    default calendar and each team's working hours (a team's own calendar)."""

    policy: DeskPolicy
    calendar: BusinessCalendar
    team_hours: dict[int, str]

    def calendar_of(self, ticket: Ticket) -> BusinessCalendar:
        """The calendar the ticket's clock runs on: its team's, else the desk's."""
        hours = self.team_hours.get(ticket.team_id) if ticket.team_id else None
        return team_calendar(hours, self.calendar.tz.key) if hours else self.calendar


def sla_context(
    session: Session, timezone: str | None = None, calendar: BusinessCalendar | None = None
) -> SlaContext:
    """The SLA context of this moment (one small read of policy and teams)."""
    cal = calendar or calendar_for(timezone or get_settings().timezone)
    hours = {tid: hours for tid, hours in session.execute(select(Team.id, Team.work_hours))}
    return SlaContext(load_policy(session), cal, hours)


class ClockEvent(Protocol):
    """What the clock needs of a timeline step: when, and the status it led to (an ORM
    event, or a plain row where thousands are read at once)."""

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def to_status(self) -> str: ...


def clock_spans(ticket: Ticket, events: Sequence[ClockEvent]) -> list[ClockSpan]:
    """The ticket's life as counting and paused stretches, from its timeline."""
    spans: list[ClockSpan] = []
    start, paused = ticket.created_at, False
    for event in events:
        to = TicketStatus(event.to_status)
        now_paused = to in PAUSED or to in DONE
        if now_paused != paused:
            spans.append(ClockSpan(start, event.occurred_at, paused))
            start, paused = event.occurred_at, now_paused
    spans.append(ClockSpan(start, None, paused))
    return spans


def _until(spans: list[ClockSpan], moment: datetime) -> list[ClockSpan]:
    """The clock's spans cut off at ``moment`` (the last one left running there)."""
    out = []
    for span in spans:
        if span.start >= moment:
            break
        if span.end is not None and span.end <= moment:
            out.append(span)
        else:
            out.append(ClockSpan(span.start, None, span.paused))
            break
    return out


_DONE_VALUES = frozenset(s.value for s in DONE)


def sla(
    ticket: Ticket,
    events: Sequence[ClockEvent],
    now: datetime,
    calendar: BusinessCalendar,
    policy: DeskPolicy = DEFAULT_POLICY,
) -> list[SlaRead]:
    """Each target's due time, whether it was met (and when), and whether it is breached."""
    spans = clock_spans(ticket, events)
    out = []
    for target in targets(ticket, policy):
        cal = calendar if target.business_hours else None
        met = ticket.first_response_at if target.name == "first_response" else ticket.resolved_at
        if target.name == "resolution" and ticket.status not in {s.value for s in DONE}:
            met = None
        if met is not None:
            # A met target is judged by the clock as it stood when it was met.
            due = due_at(_until(spans, met), target.hours * 3600, met, cal)
        else:
            due = due_at(spans, target.hours * 3600, now, cal)
        breached = due is not None and ((met or now) > due)
        out.append(
            SlaRead(
                target=target.name,
                hours=target.hours,
                business_hours=target.business_hours,
                due_at=due,
                met_at=met,
                breached=breached,
                paused=due is None,
            )
        )
    return out


# Shares of a target at which the sweep acts: warn the owner when a quarter of the time
# is left, record the breach when it is all used, escalate when it is used twice over.
WARN_SHARE = 0.25
THRESHOLDS = (("warning", 1 - WARN_SHARE), ("breach", 1.0), ("escalation", 2.0))


def sla_moments(
    ticket: Ticket,
    events: Sequence[ClockEvent],
    now: datetime,
    ctx: SlaContext,
    recorded: set[tuple[str, str]],
) -> tuple[datetime | None, datetime | None]:
    """(nearest unmet due time, next moment the sweep must look) of an open ticket.

    ``recorded`` holds the (target, kind) moments already recorded. A moment in the past
    that is not recorded yet is returned as is, so the next sweep catches up; a warning
    whose breach has come, and any warning while the clock is paused, is not looked for.
    Both are None for a done ticket.
    """
    if ticket.status in _DONE_VALUES:
        return None, None
    spans = clock_spans(ticket, events)
    paused = spans[-1].paused
    calendar = ctx.calendar_of(ticket)
    nearest: datetime | None = None
    check: datetime | None = None
    for target in targets(ticket, ctx.policy):
        if target.name == "first_response" and ticket.first_response_at is not None:
            continue
        cal = calendar if target.business_hours else None
        goal = target.hours * 3600
        due = due_at(spans, goal, now, cal)
        if due is not None and not paused:
            nearest = due if nearest is None else min(nearest, due)
        for kind, share in THRESHOLDS:
            if (target.name, kind) in recorded:
                continue
            if kind == "warning" and (
                paused or (target.name, "breach") in recorded or (due is not None and due <= now)
            ):
                continue
            moment = due if share == 1.0 else due_at(spans, goal * share, now, cal)
            if moment is not None:
                check = moment if check is None else min(check, moment)
    return nearest, check


def recorded_moments(session: Session, ticket_ids: list[int]) -> dict[int, set[tuple[str, str]]]:
    """The SLA moments already recorded per ticket."""
    out: dict[int, set[tuple[str, str]]] = {tid: set() for tid in ticket_ids}
    if ticket_ids:
        for tid, target, kind in session.execute(
            select(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.kind).where(
                SlaEvent.ticket_id.in_(ticket_ids)
            )
        ):
            out[tid].add((target, kind))
    return out
