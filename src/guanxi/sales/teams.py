"""Sales teams (a manager and members) and the list of reasons an opportunity is lost;
both belong to the sales managers (``sales.manage``)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import guanxi.sales.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.sales.models import LostReason, SalesTeam, SalesTeamMember
from guanxi.sales.schemas import LostReasonIn, TeamIn, TeamRead
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of, has_permission


def active_users(session: Session) -> list[User]:
    """The active users by name (to choose managers and members from)."""
    return list(
        session.scalars(
            select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)
        )
    )


def list_teams(session: Session) -> list[TeamRead]:
    """Every team with its members, by name."""
    members: dict[int, list[int]] = defaultdict(list)
    for team_id, user_id in session.execute(
        select(SalesTeamMember.team_id, SalesTeamMember.user_id).order_by(SalesTeamMember.user_id)
    ):
        members[team_id].append(user_id)
    return [
        TeamRead(id=t.id, name=t.name, manager_id=t.manager_id, member_ids=members[t.id])
        for t in session.scalars(select(SalesTeam).order_by(SalesTeam.name))
    ]


def get_team(session: Session, team_id: int) -> TeamRead:
    """One team, or NotFound."""
    for team in list_teams(session):
        if team.id == team_id:
            return team
    raise NotFound("team_unknown", team_id=team_id)


def _validate(session: Session, team_in: TeamIn, team_id: int | None) -> list[FieldError]:
    errors: list[FieldError] = []
    clash = session.scalar(
        select(SalesTeam.id).where(SalesTeam.name == team_in.name, SalesTeam.id != (team_id or 0))
    )
    if clash is not None:
        errors.append(FieldError(("name",), "team_name_taken", "Another team has this name"))
    if team_in.manager_id is not None:
        manager = session.get(User, team_in.manager_id)
        if manager is None or not has_permission(manager, Permission.sales_manage):
            errors.append(
                FieldError(
                    ("manager_id",),
                    "team_manager_not_manager",
                    "The manager must hold the sales manager's rights",
                )
            )
    for n, user_id in enumerate(dict.fromkeys(team_in.member_ids)):
        user = session.get(User, user_id)
        if user is None or not has_permission(user, Permission.sales_pipeline):
            name = user.display_name if user is not None else str(user_id)
            errors.append(
                FieldError(
                    ("member_ids", n),
                    "team_member_not_sales",
                    f"{name} does not work the pipeline",
                    {"name": name},
                )
            )
            continue
        elsewhere = session.scalar(
            select(SalesTeamMember.team_id).where(
                SalesTeamMember.user_id == user_id, SalesTeamMember.team_id != (team_id or 0)
            )
        )
        if elsewhere is not None:
            errors.append(
                FieldError(
                    ("member_ids", n),
                    "team_member_elsewhere",
                    f"{user.display_name} is already in another team",
                    {"name": user.display_name},
                )
            )
    return errors


def save_team(
    session: Session, *, team_in: TeamIn, actor: User, team_id: int | None = None
) -> TeamRead:
    """Create a team, or replace a team's name, manager and members (audited)."""
    with write_transaction(session):
        existing = session.get(SalesTeam, team_id) if team_id is not None else None
        if team_id is not None and existing is None:
            raise NotFound("team_unknown", team_id=team_id)
        errors = _validate(session, team_in, team_id)
        if errors:
            raise ValidationFailed(errors)
        before = None
        if existing is None:
            team = SalesTeam(
                name=team_in.name, manager_id=team_in.manager_id, created_at=clock.now()
            )
            session.add(team)
            session.flush()
        else:
            team = existing
            before = get_team(session, team.id).model_dump(exclude={"id"})
            team.name = team_in.name
            team.manager_id = team_in.manager_id
            session.execute(delete(SalesTeamMember).where(SalesTeamMember.team_id == team.id))
        members = list(dict.fromkeys(team_in.member_ids))
        for user_id in members:
            session.add(SalesTeamMember(team_id=team.id, user_id=user_id))
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="sales.team_saved",
            target_type="sales_team",
            target_id=team.id,
            before=before,
            after={"name": team.name, "manager_id": team.manager_id, "member_ids": sorted(members)},
        )
        result = TeamRead(
            id=team.id, name=team.name, manager_id=team.manager_id, member_ids=sorted(members)
        )
    return result


def delete_team(session: Session, *, team_id: int, actor: User) -> None:
    """Remove a team (its members' opportunities stay theirs)."""
    with write_transaction(session):
        team = session.get(SalesTeam, team_id)
        if team is None:
            raise NotFound("team_unknown", team_id=team_id)
        before = get_team(session, team_id).model_dump(exclude={"id"})
        session.delete(team)
        record(
            session,
            actor=actor_of(actor),
            action="sales.team_deleted",
            target_type="sales_team",
            target_id=team_id,
            before=before,
        )


def list_lost_reasons(session: Session, *, active_only: bool = False) -> list[LostReason]:
    """The lost reasons in the list's order."""
    stmt = select(LostReason).order_by(LostReason.position, LostReason.code)
    if active_only:
        stmt = stmt.where(LostReason.active.is_(True))
    return list(session.scalars(stmt))


def save_lost_reason(session: Session, *, reason_in: LostReasonIn, actor: User) -> LostReason:
    """Add a reason to the lost list, or relabel / switch off an existing one (reasons are
    never deleted: closed opportunities keep naming them)."""
    with write_transaction(session):
        reason = session.get(LostReason, reason_in.code)
        before: dict[str, object] | None = None
        if reason is None:
            last = session.scalar(
                select(LostReason.position).order_by(LostReason.position.desc()).limit(1)
            )
            reason = LostReason(code=reason_in.code, position=(last or 0) + 1)
            session.add(reason)
        else:
            before = {
                "label_zh": reason.label_zh,
                "label_en": reason.label_en,
                "active": reason.active,
            }
        reason.label_zh = reason_in.label_zh
        reason.label_en = reason_in.label_en
        reason.active = reason_in.active
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="sales.lost_reason_saved",
            target_type="sales_lost_reason",
            target_id=reason.code,
            before=before,
            after=reason_in.model_dump(exclude={"code"}),
        )
    return reason
