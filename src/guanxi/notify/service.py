"""Notifying users: in the app and, for users with an e-mail address, by e-mail through the
outbox (both inside the caller's transaction; the e-mail goes out after commit)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import Notification
from guanxi.notify.outbox import queue_email
from guanxi.security.models import User


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
    many notifications were added. Runs in the caller's transaction.

    Each newly notified user who is active and has an e-mail address is also sent an
    e-mail (outbox key ``"{key}:{user_id}"``) whose body ends with the link made absolute.
    """
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
    fresh: list[int] = []
    for uid in wanted:
        if uid in have:
            continue
        fresh.append(uid)
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
    session.flush()
    if fresh:
        _queue_emails(session, user_ids=fresh, key=key, subject=subject, body=body, link=link)
    return len(fresh)


def _queue_emails(
    session: Session,
    *,
    user_ids: list[int],
    key: str,
    subject: str,
    body: str | None,
    link: str | None,
) -> None:
    """Queue the e-mail twin of a notification for each active user with an address."""
    addresses = session.execute(
        select(User.id, User.email)
        .where(User.id.in_(user_ids), User.is_active.is_(True), User.email.is_not(None))
        .order_by(User.id)
    ).all()
    if not addresses:
        return
    text = "\n\n".join(part for part in (body, _absolute(link)) if part) or subject
    for uid, email in addresses:
        if email:
            queue_email(session, key=f"{key}:{uid}", to=email, subject=subject, body=text)


def _absolute(link: str | None) -> str | None:
    """A page path as a URL a mail reader can open (``GUANXI_BASE_URL`` in front)."""
    if not link:
        return None
    if link.startswith(("http://", "https://")):
        return link
    from guanxi.config import get_settings

    return get_settings().base_url.rstrip("/") + "/" + link.lstrip("/")


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
