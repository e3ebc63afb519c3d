"""Shared helpers of the account-security tests."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from tests.conftest import PASSWORD


def audit(db: Session, user_id: int, prefix: str = "user.") -> list[tuple[str, Any, Any]]:
    """(action, before, after) of the audit entries about a user, oldest first."""
    rows = db.execute(
        select(AuditEntry.action, AuditEntry.before, AuditEntry.after)
        .where(
            AuditEntry.target_type == "user",
            AuditEntry.target_id == str(user_id),
            AuditEntry.action.startswith(prefix),
        )
        .order_by(AuditEntry.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def token(client: Any, username: str, password: str = PASSWORD, **extra: str) -> Any:
    """POST /api/v1/auth/token."""
    return client.post(
        "/api/v1/auth/token", json={"username": username, "password": password, **extra}
    )


def bearer(resp: Any) -> dict[str, str]:
    """The Authorization header of a token answer."""
    assert resp.status_code in (200, 201), resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def web_login(client: Any, username: str, password: str = PASSWORD, next: str = "/account") -> Any:
    """POST /login without following the redirect."""
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next},
        follow_redirects=False,
    )
