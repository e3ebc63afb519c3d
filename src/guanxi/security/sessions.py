"""A user's browser sessions and API tokens: listing, revoking, last-seen, scopes.

Sessions end after ``session_idle_minutes`` without a request and after ``session_hours``
in all; last-seen is written at most once a minute (``TOUCH_EVERY``), so a busy user's
requests do not each write. Client addresses are masked before they are stored.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound
from guanxi.security.models import UserToken

TOUCH_EVERY = timedelta(minutes=1)
# Only these are a user's sessions and tokens; "mfa"/"enrol" are sign-ins half done.
LISTED_KINDS = ("web", "api")


def mask_address(address: str | None) -> str | None:
    """An address coarse enough to recognise a place, not a device: the /24 of an IPv4
    address (``203.0.113.*``), the /48 of an IPv6 one (``2001:db8:1:*``)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv4Address):
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return ":".join(format(int(group, 16), "x") for group in ip.exploded.split(":")[:3]) + ":*"


def summarise_agent(agent: str | None) -> str | None:
    """The browser and system named in a User-Agent header, cut to the stored length."""
    return agent.strip()[:200] if agent and agent.strip() else None


def is_stale(last_seen_at: datetime | None, created_at: datetime, now: datetime) -> bool:
    """Whether last-seen is old enough to be written again."""
    return now - (last_seen_at or created_at) >= TOUCH_EVERY


# Per process: when this process last wrote last-seen of a token (keyed by the hash of
# its secret), so 32 concurrent requests of one client that all find it due write once.
_claimed: dict[int, datetime] = {}


def claim_touch(key: int, now: datetime) -> bool:
    """Whether this request should write last-seen (no other request of this process
    did in the last minute)."""
    last = _claimed.get(key)
    if last is not None and timedelta(0) <= now - last < TOUCH_EVERY:
        return False
    if len(_claimed) > 50_000:
        _claimed.clear()  # a bound, not a cache policy: the worst case is one extra write
    _claimed[key] = now
    return True


def touch(session: Session, *, token_id: int) -> None:
    """Record that the session or token was used now."""
    with write_transaction(session):
        session.execute(
            update(UserToken).where(UserToken.id == token_id).values(last_seen_at=clock.now())
        )


def list_live(session: Session, *, user_id: int) -> list[UserToken]:
    """The user's sessions and tokens that are neither revoked nor expired, newest first."""
    return list(
        session.scalars(
            select(UserToken)
            .where(
                UserToken.user_id == user_id,
                UserToken.kind.in_(LISTED_KINDS),
                UserToken.revoked_at.is_(None),
                UserToken.expires_at > clock.now(),
            )
            .order_by(UserToken.created_at.desc(), UserToken.id.desc())
        )
    )


def revoke(session: Session, *, user_id: int, token_id: int, actor: Actor) -> None:
    """End one of the user's own sessions or tokens (another user's is not found)."""
    with write_transaction(session):
        row = session.get(UserToken, token_id)
        if row is None or row.user_id != user_id or row.kind not in LISTED_KINDS:
            raise NotFound("session not found", token_id=token_id)
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            record(
                session,
                actor=actor,
                action="user.session_revoked",
                target_type="user",
                target_id=user_id,
                after={"kind": row.kind, "token": row.id},
            )


def revoke_all(session: Session, *, user_id: int) -> int:
    """End every session and token of the user (inside the caller's transaction, whose
    audit entry says why); returns how many were live."""
    result = session.execute(
        update(UserToken)
        .where(UserToken.user_id == user_id, UserToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
