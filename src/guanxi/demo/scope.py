"""A demo user with a row-level scope: ``agent_gd``, a service agent who sees only the
customers of Guangdong (and their tickets and shipments) plus the first desk team's
tickets, so signing in as them shows what a scope does."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.demo.accounts import DEMO_PASSWORD
from guanxi.security.models import User
from guanxi.security.permissions import Role
from guanxi.security.schemas import UserCreate
from guanxi.security.scope import read_scope, set_scope
from guanxi.security.service import create_user
from guanxi.tickets.models import Team

SCOPED_USER = "agent_gd"
SCOPED_REGIONS = ["广东"]


def seed_scope(session: Session) -> int | None:
    """Create ``agent_gd`` with its scope once; the user's id (None when it already had
    a scope: loading the demo again changes nothing)."""
    user = session.scalar(select(User).where(User.username == SCOPED_USER))
    if user is None:
        user = create_user(
            session,
            user_in=UserCreate(
                username=SCOPED_USER,
                display_name="客服专员 黄珊（广东）",
                role=Role.agent,
                password=DEMO_PASSWORD,
            ),
            actor=Actor.system("demo"),
        )
    found = read_scope(session, user_id=user.id)
    if found.regions or found.team_ids:
        return None
    admin = session.scalar(select(User).where(User.username == "admin"))
    team = session.scalar(select(Team.id).where(Team.active.is_(True)).order_by(Team.id))
    set_scope(
        session,
        user_id=user.id,
        regions=SCOPED_REGIONS,
        team_ids=[team] if team is not None else [],
        actor=admin or user,
    )
    return user.id
