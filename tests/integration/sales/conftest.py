"""Fixtures of the sales tests: a team (manager and two members), a salesperson outside
it, and a way to enter opportunities without the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.sales import service, teams
from guanxi.sales.enums import Stage
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import OpportunityCreate, TeamIn
from guanxi.security.models import User


@dataclass
class Crew:
    """A sales team and the people around it."""

    manager: User
    member: User
    colleague: User
    outsider: User
    admin: User
    team_id: int


@pytest.fixture
def crew(db: Session, make_user: Any) -> Crew:
    manager = make_user("manager", display_name="王经理")
    member = make_user("sales", display_name="李销售")
    colleague = make_user("sales", display_name="赵销售")
    outsider = make_user("sales", display_name="孙销售")
    admin = make_user("admin", display_name="管理员")
    team = teams.save_team(
        db,
        team_in=TeamIn(
            name="华东大客户组", manager_id=manager.id, member_ids=[member.id, colleague.id]
        ),
        actor=admin,
    )
    return Crew(manager, member, colleague, outsider, admin, team.id)


@pytest.fixture
def enter(db: Session) -> Any:
    """Enter an opportunity as ``actor`` (owned by them, or unowned / given with kwargs)."""

    def do(actor: User, title: str, **kw: Any) -> Opportunity:
        data: dict[str, Any] = {"title": title, "stage": Stage.lead, **kw}
        return service.create_opportunity(db, opportunity_in=OpportunityCreate(**data), actor=actor)

    return do
