"""Retention of sent messages' contents: after the retention period the body, subject,
template parameters and the explicit address of a finished message are cleared, while the
metadata (channel, category, customer, template, status, times, delivery) is kept as the
record of what was sent when (consent evidence, frequency caps, campaign figures).

Called by the retention purge (:mod:`guanxi.privacy.retention`) inside its transaction.
Deletion as anonymisation clears an anonymised customer's messages at once
(:func:`anonymise_notify_data`) and their names in users' notifications
(:func:`anonymise_notification_texts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from guanxi.core.db import rowcount
from guanxi.core.scrub import replace_in
from guanxi.notify.models import Notification, OutboxMessage

# Messages that will not be sent again (pending / sending ones still need their body).
FINISHED = ("sent", "failed", "cancelled")


def _finished_before(before: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.status.in_(FINISHED),
        func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at) < before,
    )


def _has_content() -> ColumnElement[bool]:
    return or_(
        OutboxMessage.body != "",
        OutboxMessage.subject != "",
        OutboxMessage.params.is_not(None),
        OutboxMessage.to_enc.is_not(None),
    )


def count_message_contents(session: Session, *, before: datetime) -> int:
    """Finished messages older than ``before`` whose contents are still stored."""
    return int(
        session.scalar(
            select(func.count(OutboxMessage.id)).where(_finished_before(before), _has_content())
        )
        or 0
    )


def clear_message_contents(session: Session, *, before: datetime, limit: int) -> int:
    """Clear the contents of up to ``limit`` finished messages older than ``before``
    (metadata kept); the number cleared."""
    ids = list(
        session.scalars(
            select(OutboxMessage.id)
            .where(_finished_before(before), _has_content())
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(body="", subject="", params=None, to_enc=None)
        )
    )


def oldest_message_content(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest message whose contents are still stored was created."""
    kept = true() if before is None else ~_finished_before(before)
    return session.scalar(select(func.min(OutboxMessage.created_at)).where(_has_content(), kept))


def anonymise_notify_data(session: Session, customer_ids: list[int]) -> tuple[int, set[str]]:
    """Remove recipients, parameters and contents of these customers' outbox messages
    inside the caller's transaction (deletion as anonymisation). Returns how many
    messages were changed and their keys (the local SMS file's lines carry them)."""
    keys = set(
        session.scalars(
            select(OutboxMessage.key).where(OutboxMessage.customer_id.in_(customer_ids))
        )
    )
    changed = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.customer_id.in_(customer_ids))
            .values(to_enc=None, params=None, subject="", body="", last_error=None)
        )
    )
    return changed, keys


def anonymise_notification_texts(
    session: Session, names: Iterable[str], *, placeholder: str
) -> int:
    """Replace these people's names by ``placeholder`` in users' notifications (subjects
    and bodies) inside the caller's transaction (deletion as anonymisation,
    :mod:`guanxi.privacy.anonymise`). Only names are searched for: staff texts never hold
    identifiers in clear (they are masked wherever such texts are written), and the table
    is large. The notifications themselves (who, what kind, when, read or not) stay.
    Returns how many texts were changed: a notification whose subject and body both named
    one counts twice."""
    wanted = list(names)
    return sum(
        replace_in(session, Notification, column, wanted, placeholder=placeholder)
        for column in (Notification.subject, Notification.body)
    )
