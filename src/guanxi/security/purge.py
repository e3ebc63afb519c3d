"""Retention of sign-in sessions and API tokens (PIPL art. 19: kept no longer than needed).

A session or token that expired or was revoked keeps nothing a user needs; its row is kept
for a while only to show the user's recent sessions, then removed by the retention purge
(:mod:`guanxi.privacy.retention`), which calls these functions inside its transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, true
from sqlalchemy.orm import Session

from guanxi.core.db import rowcount
from guanxi.security.models import LoginFailure, UserToken


def _ended_before(before: datetime) -> ColumnElement[bool]:
    # Ended = revoked, or past its expiry; the later of the two never matters (a revoked
    # token is dead from the moment of revocation).
    return func.coalesce(UserToken.revoked_at, UserToken.expires_at) < before


def count_ended_tokens(session: Session, *, before: datetime) -> int:
    """Sessions and API tokens that ended (expired or revoked) before ``before``."""
    return int(session.scalar(select(func.count(UserToken.id)).where(_ended_before(before))) or 0)


def purge_ended_tokens(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` sessions and tokens that ended before ``before`` (inside the
    caller's transaction); the number deleted."""
    ids = list(
        session.scalars(
            select(UserToken.id).where(_ended_before(before)).order_by(UserToken.id).limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(UserToken).where(UserToken.id.in_(ids))))


def oldest_token(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest session or token still kept was created (``before``: not counting
    those a purge with that cut-off removes)."""
    kept = true() if before is None else ~_ended_before(before)
    return session.scalar(select(func.min(UserToken.created_at)).where(kept))


# Failed sign-ins per client address (rate-limit records): needed only for the lockout
# window (minutes); the lockout itself prunes an address's old rows when it fails again,
# this removes those of addresses that never came back.
def count_login_failures(session: Session, *, before: datetime) -> int:
    """Failed sign-in records older than ``before``."""
    return int(
        session.scalar(select(func.count(LoginFailure.id)).where(LoginFailure.at < before)) or 0
    )


def purge_login_failures(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` failed sign-in records older than ``before``."""
    ids = list(
        session.scalars(
            select(LoginFailure.id)
            .where(LoginFailure.at < before)
            .order_by(LoginFailure.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids))))


def oldest_login_failure(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest failed sign-in record still kept happened."""
    query = select(func.min(LoginFailure.at))
    if before is not None:
        query = query.where(LoginFailure.at >= before)
    return session.scalar(query)
