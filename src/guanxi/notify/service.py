"""Notifying users: in the app and, for users with an e-mail address, by e-mail through the
outbox (both inside the caller's transaction; the e-mail goes out after commit)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import Notification
from guanxi.notify.outbox import queue_email
from guanxi.security.models import User


@dataclass(frozen=True)
class Note:
    """One notification to send to some users (``key`` makes it once per user)."""

    user_ids: tuple[int, ...]
    key: str
    kind: str
    subject: str
    body: str | None = None
    link: str | None = None


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
    return notify_many(session, [Note(tuple(user_ids), key, kind, subject, body, link)])


# Keys per "already notified?" lookup (bound parameters stay well under SQLite's limit).
_CHUNK = 500


def notify_many(session: Session, notes: Sequence[Note]) -> int:
    """Send many notifications at once (the SLA sweep's batch): one lookup of who already
    has each key, one multi-row insert, one lookup of e-mail addresses. Same rules as
    :func:`notify`; returns how many notifications were added."""
    wanted = {(uid, n.key) for n in notes for uid in n.user_ids}
    if not wanted:
        return 0
    keys = sorted({n.key for n in notes})
    users = sorted({uid for uid, _key in wanted})
    have: set[tuple[int, str]] = set()
    # Both columns constrained: the lookup walks the (user_id, key) unique index.
    for i in range(0, len(keys), _CHUNK):
        for j in range(0, len(users), _CHUNK):
            have.update(
                (uid, key)
                for uid, key in session.execute(
                    select(Notification.user_id, Notification.key).where(
                        Notification.user_id.in_(users[j : j + _CHUNK]),
                        Notification.key.in_(keys[i : i + _CHUNK]),
                    )
                )
            )
    now = clock.now()
    rows: list[dict[str, object]] = []
    fresh: list[tuple[Note, int]] = []
    for note in notes:
        for uid in sorted(set(note.user_ids)):
            if (uid, note.key) in have:
                continue
            have.add((uid, note.key))
            fresh.append((note, uid))
            rows.append(
                {
                    "user_id": uid,
                    "key": note.key,
                    "kind": note.kind,
                    "subject": note.subject[:200],
                    "body": note.body,
                    "link": note.link,
                    "created_at": now,
                    "read_at": None,
                }
            )
    if rows:
        session.execute(insert(Notification), rows)
        _queue_emails(session, fresh)
    return len(rows)


def _queue_emails(session: Session, fresh: list[tuple[Note, int]]) -> None:
    """Queue the e-mail twin of each new notification for active users with an address."""
    users = sorted({uid for _note, uid in fresh})
    addresses: dict[int, str] = {}
    for i in range(0, len(users), _CHUNK):
        addresses.update(
            (uid, email)
            for uid, email in session.execute(
                select(User.id, User.email).where(
                    User.id.in_(users[i : i + _CHUNK]),
                    User.is_active.is_(True),
                    User.email.is_not(None),
                )
            )
            if email
        )
    for note, uid in fresh:
        if uid in addresses:
            text = "\n\n".join(p for p in (note.body, _absolute(note.link)) if p) or note.subject
            queue_email(
                session,
                key=f"{note.key}:{uid}",
                to=addresses[uid],
                subject=note.subject,
                body=text,
            )


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
