"""Service teams, their members (skills, regions) and working hours, and the routing rules
that send new tickets to them. Administration only; the choosing is in routing.py."""

from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of, has_permission
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.enums import TicketChannel, TicketType
from guanxi.tickets.models import RoutingRule, Team, TeamMember, TicketCategory

STRATEGIES = ("least_loaded", "round_robin", "queue")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_hours(text: str) -> tuple[tuple[time, time], ...]:
    """ "09:00-12:00,13:00-18:00" as spans; ValidationFailed naming ``work_hours``."""
    spans = []
    for part in (p.strip() for p in text.split(",")):
        m = _SPAN.match(part)
        if not m:
            raise _bad("work_hours", "team_hours", "Working hours like 09:00-12:00,13:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        spans.append((time(h1, m1), end))
    try:
        BusinessCalendar(hours=spans)
    except ValueError as exc:
        raise _bad(
            "work_hours", "team_hours", "Working hours like 09:00-12:00,13:00-18:00"
        ) from exc
    return tuple(spans)


@lru_cache(maxsize=64)
def team_calendar(work_hours: str, timezone: str) -> BusinessCalendar:
    """The working calendar of a team (China's holidays and 调休, the team's hours)."""
    return BusinessCalendar(tz=ZoneInfo(timezone), hours=parse_hours(work_hours))


def _bad(field: str, error: str, message: str, **params: object) -> ValidationFailed:
    return ValidationFailed([FieldError((field,), error, message, dict(params))])


def _audit(
    session: Session, actor: User, action: str, target: str, tid: int, **after: object
) -> None:
    record(
        session,
        actor=actor_of(actor),
        action=action,
        target_type=target,
        target_id=tid,
        after=dict(after),
    )


def list_teams(session: Session) -> list[Team]:
    """Every team, by name."""
    return list(session.scalars(select(Team).order_by(Team.name)))


def members_of(session: Session, team_id: int) -> list[tuple[TeamMember, User]]:
    """A team's members with their users, by name."""
    return list(
        session.execute(
            select(TeamMember, User)
            .join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id == team_id)
            .order_by(User.display_name)
        )
    )


def teams_of(session: Session, user_id: int) -> list[int]:
    """The ids of the teams a user belongs to."""
    return list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def save_team(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str,
    work_hours: str = "09:00-12:00,13:00-18:00",
    active: bool = True,
    team_id: int | None = None,
) -> Team:
    """Create a team (``team_id`` None) or change one; audited."""
    parse_hours(work_hours)
    if not re.match(r"^[a-z][a-z0-9_\-]{0,29}$", code):
        raise _bad("code", "team_code", "Use lower-case letters, digits, - and _")
    with write_transaction(session):
        clash = session.scalar(select(Team.id).where(Team.code == code))
        if clash is not None and clash != team_id:
            raise Conflict("team_exists", field="code", code=code)
        if team_id is None:
            team = Team(code=code, name=name, work_hours=work_hours, active=active, version=1)
            session.add(team)
        else:
            found = session.get(Team, team_id)
            if found is None:
                raise NotFound("team not found", team_id=team_id)
            team = found
            team.code, team.name, team.work_hours, team.active = code, name, work_hours, active
            team.version += 1
        session.flush()
        _audit(session, actor, "team.saved", "team", team.id, code=code, work_hours=work_hours)
    return team


def _csv(value: str | None) -> str | None:
    """A normalised comma list ("a, b,,c" -> "a,b,c"), None when empty."""
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return ",".join(dict.fromkeys(items)) or None


def set_member(
    session: Session,
    *,
    actor: User,
    team_id: int,
    user_id: int,
    skills: str | None = None,
    regions: str | None = None,
    is_lead: bool = False,
    accepting: bool = True,
) -> TeamMember:
    """Add an agent to a team or change their skills, regions, lead flag or availability."""
    with write_transaction(session):
        if session.get(Team, team_id) is None:
            raise NotFound("team not found", team_id=team_id)
        user = session.get(User, user_id)
        if user is None or not user.is_active or not has_permission(user, Permission.ticket_write):
            raise _bad("user_id", "ticket_receiver", "This user cannot work tickets")
        member = session.get(TeamMember, (team_id, user_id))
        if member is None:
            member = TeamMember(team_id=team_id, user_id=user_id)
            session.add(member)
        member.skills, member.regions = _csv(skills), _csv(regions)
        member.is_lead, member.accepting = is_lead, accepting
        session.flush()
        _audit(
            session,
            actor,
            "team.member_set",
            "team",
            team_id,
            user_id=user_id,
            skills=member.skills,
            regions=member.regions,
            is_lead=is_lead,
            accepting=accepting,
        )
    return member


def remove_member(session: Session, *, actor: User, team_id: int, user_id: int) -> None:
    """Take an agent out of a team (their open tickets stay theirs)."""
    with write_transaction(session):
        gone = session.execute(
            delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
        )
        if not getattr(gone, "rowcount", 0):
            raise NotFound("member not found", team_id=team_id, user_id=user_id)
        _audit(session, actor, "team.member_removed", "team", team_id, user_id=user_id)


def list_rules(session: Session) -> list[RoutingRule]:
    """Routing rules in the order they are tried."""
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def save_rule(
    session: Session,
    *,
    actor: User,
    name: str,
    team_id: int,
    position: int = 0,
    ticket_type: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    region: str | None = None,
    skill: str | None = None,
    strategy: str = "least_loaded",
    active: bool = True,
    rule_id: int | None = None,
) -> RoutingRule:
    """Create or change a routing rule; every condition is checked against its domain."""
    errors = []
    if strategy not in STRATEGIES:
        errors.append(
            FieldError(
                ("strategy",),
                "enum",
                "Must be one of: {expected}",
                {"expected": ", ".join(STRATEGIES)},
            )
        )
    if ticket_type and ticket_type not in {t.value for t in TicketType}:
        errors.append(
            FieldError(
                ("ticket_type",),
                "enum",
                "Must be one of: {expected}",
                {"expected": ", ".join(t.value for t in TicketType)},
            )
        )
    if channel and channel not in {c.value for c in TicketChannel}:
        errors.append(
            FieldError(
                ("channel",),
                "enum",
                "Must be one of: {expected}",
                {"expected": ", ".join(c.value for c in TicketChannel)},
            )
        )
    if errors:
        raise ValidationFailed(errors)
    with write_transaction(session):
        if session.get(Team, team_id) is None:
            raise _bad("team_id", "team_unknown", "No such team")
        if (
            category
            and session.scalar(select(TicketCategory.id).where(TicketCategory.code == category))
            is None
        ):
            raise _bad("category", "category_unknown", "No such category", code=category)
        if rule_id is None:
            rule = RoutingRule()
            session.add(rule)
        else:
            found = session.get(RoutingRule, rule_id)
            if found is None:
                raise NotFound("rule not found", rule_id=rule_id)
            rule = found
        rule.name, rule.team_id, rule.position = name, team_id, position
        rule.ticket_type, rule.category = ticket_type or None, category or None
        rule.channel, rule.region = channel or None, region or None
        rule.skill, rule.strategy, rule.active = skill or None, strategy, active
        session.flush()
        _audit(
            session,
            actor,
            "routing_rule.saved",
            "routing_rule",
            rule.id,
            name=name,
            team_id=team_id,
            position=position,
            ticket_type=rule.ticket_type,
            category=rule.category,
            channel=rule.channel,
            region=rule.region,
            skill=rule.skill,
            strategy=strategy,
            active=active,
        )
    return rule


def delete_rule(session: Session, *, actor: User, rule_id: int) -> None:
    """Remove a routing rule; audited."""
    with write_transaction(session):
        rule = session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("rule not found", rule_id=rule_id)
        session.delete(rule)
        _audit(session, actor, "routing_rule.deleted", "routing_rule", rule_id, name=rule.name)
