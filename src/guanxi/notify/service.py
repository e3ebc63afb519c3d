"""Sending and reading in-app notifications (inside the caller's transaction)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import Notification


def notify(
    session: Session,
    *,
    user_ids: Iterable[int],
    key: str,
    kind: str,
    subject: str,
    body: str | None = None,
    link: str | None = None,
) -> int:
    """Notify each user once per ``key`` (already notified users are skipped); returns how
    many notifications were added. Runs in the caller's transaction."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return 0
    have = set(
        session.scalars(
            select(Notification.user_id).where(
                Notification.key == key, Notification.user_id.in_(wanted)
            )
        )
    )
    now = clock.now()
    added = 0
    for uid in wanted:
        if uid in have:
            continue
        session.add(
            Notification(
                user_id=uid,
                key=key,
                kind=kind,
                subject=subject[:200],
                body=body,
                link=link,
                created_at=now,
            )
        )
        added += 1
    session.flush()
    return added


def inbox(
    session: Session, *, user_id: int, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """A user's notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return list(session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))


def mark_read(session: Session, *, notification_id: int, user_id: int) -> str | None:
    """Mark one of the user's notifications read; returns its link (None if not theirs)."""
    with write_transaction(session):
        item = session.get(Notification, notification_id)
        if item is None or item.user_id != user_id:
            return None
        if item.read_at is None:
            item.read_at = clock.now()
        return item.link
