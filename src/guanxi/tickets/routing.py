"""Where a new ticket goes: the first matching routing rule picks a team, and the rule's
strategy picks an agent in it — the one with the fewest open tickets (workload), the next
in turn (round-robin), or nobody (the ticket waits in the team queue to be taken).

Only members who accept tickets, are active, may work tickets, have the skill the rule or
the category asks for, and cover the ticket's region are candidates. The team row is
locked while choosing (PostgreSQL ``FOR UPDATE``; SQLite's write lock is already held), so
two tickets created at once see each other's assignment and round-robin turns advance
one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.tickets.categories import lineage
from guanxi.tickets.enums import DONE
from guanxi.tickets.models import RoutingRule, Team, TeamMember, Ticket


@dataclass(frozen=True)
class Route:
    """The outcome for one ticket: the team, the rule that chose it, and the agent (None:
    left in the team queue)."""

    team_id: int
    rule_id: int
    owner_id: int | None


def _listed(values: str | None, wanted: str | None, *, prefix: bool = False) -> bool:
    """Whether a member's comma list covers ``wanted`` (an empty list covers everything;
    a ticket without the attribute is covered by anyone). Regions match by prefix, so
    "广东" covers "广东省"."""
    if not values or not wanted:
        return True
    items = values.split(",")
    if prefix:
        return any(wanted.startswith(item) for item in items)
    return wanted in items


def _matches(rule: RoutingRule, ticket: Ticket, categories: list[str]) -> bool:
    if rule.ticket_type and rule.ticket_type != ticket.type:
        return False
    if rule.channel and rule.channel != ticket.channel:
        return False
    if rule.region and not (ticket.region or "").startswith(rule.region):
        return False
    return not rule.category or rule.category in categories


def route(session: Session, ticket: Ticket) -> Route | None:
    """Choose the team and agent of a new ticket (inside the creating transaction)."""
    chain = lineage(session, ticket.category) if ticket.category else []
    codes = [c.code for c in chain]
    category_skill = next((c.skill for c in chain if c.skill), None)
    rules = session.scalars(
        select(RoutingRule)
        .where(RoutingRule.active.is_(True))
        .order_by(RoutingRule.position, RoutingRule.id)
    )
    for rule in rules:
        if not _matches(rule, ticket, codes):
            continue
        team = session.scalar(select(Team).where(Team.id == rule.team_id).with_for_update())
        if team is None or not team.active:
            continue
        if rule.strategy == "queue":
            return Route(team.id, rule.id, None)
        skill = rule.skill or category_skill
        candidates = [
            user.id
            for member, user in session.execute(
                select(TeamMember, User)
                .join(User, User.id == TeamMember.user_id)
                .where(
                    TeamMember.team_id == team.id,
                    TeamMember.accepting.is_(True),
                    User.is_active.is_(True),
                )
                .order_by(User.id)
            )
            if has_permission(user, Permission.ticket_write)
            and _listed(member.skills, skill)
            and _listed(member.regions, ticket.region, prefix=True)
        ]
        if not candidates:
            return Route(team.id, rule.id, None)
        chosen = _pick(session, team, candidates, rule.strategy)
        team.rr_last_user_id = chosen
        return Route(team.id, rule.id, chosen)
    return None


def _pick(session: Session, team: Team, candidates: list[int], strategy: str) -> int:
    """Round-robin: the next candidate after the last one served. Workload: the fewest open
    tickets, ties broken in round-robin order so equal agents take turns."""
    last = team.rr_last_user_id or 0
    # Candidates in turn order: those after the last served first, then from the start.
    turn = [u for u in candidates if u > last] + [u for u in candidates if u <= last]
    if strategy == "round_robin":
        return turn[0]
    done = [s.value for s in DONE]
    load: dict[int | None, int] = {
        owner: count
        for owner, count in session.execute(
            select(Ticket.owner_id, func.count())
            .where(Ticket.owner_id.in_(candidates), Ticket.status.not_in(done))
            .group_by(Ticket.owner_id)
        )
    }
    return min(turn, key=lambda uid: (load.get(uid, 0), turn.index(uid)))
