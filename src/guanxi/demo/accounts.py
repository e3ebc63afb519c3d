"""Demo sign-ins: one user per role plus a team of account managers who own customers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.security.models import User
from guanxi.security.permissions import Role
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user

DEMO_PASSWORD = "guanxi-demo"  # noqa: S105 - documented demo credential, development only

DEMO_USERS: list[tuple[str, str, Role]] = [
    ("admin", "系统管理员", Role.admin),
    ("manager", "客服主管 王敏", Role.manager),
    ("agent", "客服专员 李娜", Role.agent),
    ("agent2", "客服专员 张伟", Role.agent),
    ("analyst", "数据分析师 陈晨", Role.analyst),
    ("auditor", "合规审计 周洁", Role.auditor),
    ("dpo", "个人信息保护负责人 刘芳", Role.privacy_officer),
    ("sales", "客户经理 赵磊", Role.sales),
    ("sales2", "客户经理 孙悦", Role.sales),
    ("sales3", "客户经理 吴昊", Role.sales),
    ("sales4", "客户经理 郑爽", Role.sales),
]


def ensure_demo_users(session: Session) -> list[int]:
    """Create the demo users that do not exist yet; return the account managers' ids."""
    actor = Actor.system("demo")
    for username, display, role in DEMO_USERS:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            create_user(
                session,
                user_in=UserCreate(
                    username=username, display_name=display, role=role, password=DEMO_PASSWORD
                ),
                actor=actor,
            )
    session.commit()
    _ensure_demo_desk(session)
    return list(
        session.scalars(select(User.id).where(User.role == Role.sales.value).order_by(User.id))
    )


def _ensure_demo_desk(session: Session) -> None:
    """A hotline team of the two agents and one rule sending every new ticket to whichever
    of them has less open work (once; an administrator changes it under Desk settings)."""
    from guanxi.tickets.teams import list_teams, save_rule, save_team, set_member

    if list_teams(session):
        return
    users = {u.username: u for u in session.scalars(select(User))}
    admin = users["admin"]
    team = save_team(session, actor=admin, code="hotline", name="热线客服组")
    set_member(
        session,
        actor=admin,
        team_id=team.id,
        user_id=users["agent"].id,
        skills="logistics,claims,service,billing",
        is_lead=True,
    )
    set_member(
        session,
        actor=admin,
        team_id=team.id,
        user_id=users["agent2"].id,
        skills="logistics,service",
    )
    save_rule(session, actor=admin, name="全部工单", team_id=team.id, strategy="least_loaded")
