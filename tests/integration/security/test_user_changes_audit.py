"""The administrators' changes that end a user's sessions and tokens, through the
service: which end them, and the audit entry each writes (with how many ended)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.security import service
from guanxi.security.models import UserToken
from guanxi.security.permissions import Role
from tests.integration.security.helpers import audit


def _live(db: Session, user_id: int) -> int:
    rows = db.scalars(
        select(UserToken.id).where(UserToken.user_id == user_id, UserToken.revoked_at.is_(None))
    )
    return len(rows.all())


def test_each_change_ends_the_sessions_it_should_and_says_how_many(
    db: Session, make_user: Any
) -> None:
    admin = service.actor_of(make_user("admin"))
    user = make_user("agent")

    def sign_in(times: int) -> None:
        for _ in range(times):
            service.issue_token(db, user=user, kind="web", hours=1)

    sign_in(2)
    service.change_role(db, user_id=user.id, role=Role.manager, actor=admin)
    assert _live(db, user.id) == 0
    sign_in(1)
    service.set_active(db, user_id=user.id, active=False, actor=admin)
    assert _live(db, user.id) == 0
    # Enabling an account ends nothing (there is nothing live) and says nothing of it.
    service.set_active(db, user_id=user.id, active=True, actor=admin)
    sign_in(3)
    service.reset_second_factor(db, user_id=user.id, actor=admin)
    assert _live(db, user.id) == 0
    changes = [e for e in audit(db, user.id) if e[0] not in ("user.created", "user.login")]
    assert changes == [
        ("user.role_changed", {"role": "agent"}, {"role": "manager", "sessions_ended": 2}),
        ("user.disabled", {"is_active": True}, {"is_active": False, "sessions_ended": 1}),
        ("user.enabled", {"is_active": False}, {"is_active": True}),
        ("user.second_factor_reset", None, {"sessions_ended": 3}),
    ]
