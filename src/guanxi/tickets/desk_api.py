"""JSON routes of the desk's configuration (``/api/v1/desk``): SLA policy and priority
matrix, the category tree, teams and members, routing rules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from guanxi.core.ids import PathId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets import categories, desk, teams
from guanxi.tickets.schemas import (
    CategoryIn,
    CategoryPatch,
    CategoryRead,
    MemberIn,
    MemberRead,
    RuleIn,
    RuleRead,
    TeamIn,
    TeamRead,
)

router = APIRouter(prefix="/api/v1/desk", tags=["desk"])

Reader = Annotated[User, require(Permission.ticket_read)]
Admin = Annotated[User, require(Permission.desk_configure)]


@router.get("/policy", response_model=desk.DeskPolicy)
def get_policy(session: SessionDep, user: Reader) -> desk.DeskPolicy:
    """The policy in force: windows, priority matrix, SLA targets."""
    return desk.load_policy(session)


@router.put("/policy", response_model=desk.DeskPolicy)
def put_policy(body: desk.DeskPolicy, session: SessionDep, user: Admin) -> desk.DeskPolicy:
    """Replace the policy (complete: every type x severity and type x priority)."""
    return desk.save_policy(session, policy=body, actor=user)


@router.get("/categories", response_model=list[CategoryRead])
def list_categories(
    session: SessionDep, user: Reader, active_only: bool = False
) -> list[categories.CategoryNode]:
    """The category tree, depth first."""
    return categories.tree(session, active_only=active_only)


@router.post("/categories", response_model=CategoryRead, status_code=201)
def create_category(body: CategoryIn, session: SessionDep, user: Admin) -> CategoryRead:
    """Add a category under a parent (or at the top)."""
    row = categories.create_category(session, actor=user, **body.model_dump())
    return next(CategoryRead.model_validate(n) for n in categories.tree(session) if n.id == row.id)


@router.patch("/categories/{category_id}", response_model=CategoryRead)
def update_category(
    category_id: PathId, body: CategoryPatch, session: SessionDep, user: Admin
) -> CategoryRead:
    """Rename, re-skill, reorder or (de)activate a category."""
    categories.update_category(
        session, category_id=category_id, actor=user, **body.model_dump(exclude_unset=True)
    )
    return next(
        CategoryRead.model_validate(n) for n in categories.tree(session) if n.id == category_id
    )


@router.get("/teams", response_model=list[TeamRead])
def list_teams(session: SessionDep, user: Reader) -> list[TeamRead]:
    """Every team."""
    return [TeamRead.model_validate(t) for t in teams.list_teams(session)]


@router.post("/teams", response_model=TeamRead, status_code=201)
def create_team(body: TeamIn, session: SessionDep, user: Admin) -> TeamRead:
    """Add a team."""
    return TeamRead.model_validate(teams.save_team(session, actor=user, **body.model_dump()))


@router.put("/teams/{team_id}", response_model=TeamRead)
def update_team(team_id: PathId, body: TeamIn, session: SessionDep, user: Admin) -> TeamRead:
    """Change a team's name, code, hours or activity."""
    return TeamRead.model_validate(
        teams.save_team(session, actor=user, team_id=team_id, **body.model_dump())
    )


@router.get("/teams/{team_id}/members", response_model=list[MemberRead])
def list_members(team_id: PathId, session: SessionDep, user: Reader) -> list[MemberRead]:
    """A team's members with their skills and regions."""
    return [MemberRead.model_validate(m) for m, _u in teams.members_of(session, team_id)]


@router.put("/teams/{team_id}/members/{user_id}", response_model=MemberRead)
def put_member(
    team_id: PathId, user_id: PathId, body: MemberIn, session: SessionDep, user: Admin
) -> MemberRead:
    """Add an agent to a team, or change their skills, regions, lead flag, availability."""
    member = teams.set_member(
        session, actor=user, team_id=team_id, user_id=user_id, **body.model_dump()
    )
    return MemberRead.model_validate(member)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204)
def delete_member(team_id: PathId, user_id: PathId, session: SessionDep, user: Admin) -> Response:
    """Take an agent out of a team."""
    teams.remove_member(session, actor=user, team_id=team_id, user_id=user_id)
    return Response(status_code=204)


@router.get("/routing-rules", response_model=list[RuleRead])
def list_rules(session: SessionDep, user: Reader) -> list[RuleRead]:
    """Routing rules in the order they are tried."""
    return [RuleRead.model_validate(r) for r in teams.list_rules(session)]


@router.post("/routing-rules", response_model=RuleRead, status_code=201)
def create_rule(body: RuleIn, session: SessionDep, user: Admin) -> RuleRead:
    """Add a routing rule."""
    return RuleRead.model_validate(teams.save_rule(session, actor=user, **_rule(body)))


@router.put("/routing-rules/{rule_id}", response_model=RuleRead)
def update_rule(rule_id: PathId, body: RuleIn, session: SessionDep, user: Admin) -> RuleRead:
    """Change a routing rule."""
    return RuleRead.model_validate(
        teams.save_rule(session, actor=user, rule_id=rule_id, **_rule(body))
    )


@router.delete("/routing-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: PathId, session: SessionDep, user: Admin) -> Response:
    """Remove a routing rule."""
    teams.delete_rule(session, actor=user, rule_id=rule_id)
    return Response(status_code=204)


def _rule(body: RuleIn) -> dict[str, Any]:
    data = body.model_dump()
    data["ticket_type"] = body.ticket_type.value if body.ticket_type else None
    data["channel"] = body.channel.value if body.channel else None
    return data
