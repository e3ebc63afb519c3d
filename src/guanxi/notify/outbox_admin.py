"""The administrators' view of the outbox: what waits, what went, what failed and why;
send a failed message again, cancel a pending one. Addresses are shown masked."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import rowcount, write_transaction
from guanxi.core.errors import Conflict, NotFound
from guanxi.notify import messages as _messages  # noqa: F401 - registers error texts
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import (
    ADDRESS_FIELD,
    ERROR_MAX,
    Channel,
    Delivery,
    OutboxStatus,
)
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_email, mask_phone

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]]+")


def describe_error(exc: BaseException, address: str | None = None) -> str:
    """A short text for ``last_error`` and logs, with every e-mail address taken out.

    SMTP servers like to quote the recipient ("5.1.1 <x@y>: user unknown"), and smtplib
    puts it into ``SMTPRecipientsRefused``: only codes and scrubbed texts are kept.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{code} {_text(message)}" for code, message in exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    else:
        detail = str(exc)
    if address:
        detail = re.sub(re.escape(address), "<address>", detail, flags=re.IGNORECASE)
    detail = _ADDRESS.sub("<address>", detail)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return _CONTROL.sub(" ", text).strip()[:ERROR_MAX]


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


@dataclass(frozen=True)
class OutboxItem:
    """A message as the administrators' view shows it: the address masked (or the
    customer it goes to)."""

    id: int
    key: str
    channel: str
    category: str
    customer_id: int | None
    to: str
    template: str | None
    subject: str
    source: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_id: str | None
    delivery: str
    delivered_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


def _masked(row: OutboxMessage) -> str:
    if not row.to_enc:
        return f"#{row.customer_id}" if row.customer_id is not None else "—"
    address = cipher().decrypt(ADDRESS_FIELD, row.to_enc)
    return mask_email(address) if row.channel == Channel.email.value else mask_phone(address)


def _item(row: OutboxMessage) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        key=row.key,
        channel=row.channel,
        category=row.category,
        customer_id=row.customer_id,
        to=_masked(row),
        template=row.template,
        subject=row.subject,
        source=row.source,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        provider_id=row.provider_id,
        delivery=row.delivery,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


DEFAULT_STATUSES = (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.failed)


@dataclass
class OutboxFilters:
    """Filters of the outbox list; empty means not filtered."""

    statuses: tuple[OutboxStatus, ...] = DEFAULT_STATUSES
    channels: tuple[Channel, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    source: str | None = None  # a prefix ("care:", "survey:12")
    customer_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def list_outbox(
    session: Session,
    *,
    filters: OutboxFilters | None = None,
    statuses: tuple[OutboxStatus, ...] | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[OutboxItem]:
    """Messages matching ``filters``, newest first (keyset: pass the last id as
    ``before_id``). ``statuses`` alone is the short form of the e-mail outbox's view."""
    f = filters or OutboxFilters()
    if statuses is not None:
        f.statuses = statuses
    stmt = select(OutboxMessage)
    if f.statuses:
        stmt = stmt.where(OutboxMessage.status.in_([s.value for s in f.statuses]))
    if f.channels:
        stmt = stmt.where(OutboxMessage.channel.in_([c.value for c in f.channels]))
    if f.deliveries:
        stmt = stmt.where(OutboxMessage.delivery.in_([d.value for d in f.deliveries]))
    if f.source:
        stmt = stmt.where(OutboxMessage.source.startswith(f.source, autoescape=True))
    if f.customer_id is not None:
        stmt = stmt.where(OutboxMessage.customer_id == f.customer_id)
    if before_id is not None:
        stmt = stmt.where(OutboxMessage.id < before_id)
    rows = session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit))
    return [_item(r) for r in rows]


def status_counts(session: Session) -> dict[str, dict[str, int]]:
    """Messages per channel and status (every status present, zeros included)."""
    counts = {c.value: {s.value: 0 for s in OutboxStatus} for c in Channel}
    for channel, status, n in session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.channel, OutboxMessage.status
        )
    ):
        counts.setdefault(channel, {})[status] = int(n)
    return counts


# The statuses of messages still to be sent (a failed one is retried or cancelled by hand).
QUEUED = ("pending", "sending", "failed")


def queued_counts(session: Session) -> list[tuple[str, str, int]]:
    """(channel, status, count) of the messages still to be sent, for the metrics scrape:
    only the queued statuses, so a scrape reads the status index, not the whole history
    :func:`status_counts` covers."""
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(QUEUED))
        .group_by(OutboxMessage.channel, OutboxMessage.status)
    ).all()
    return [(str(channel), str(status), int(n)) for channel, status, n in rows]


def get_item(session: Session, message_id: int) -> OutboxItem:
    """One message (404 if unknown)."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound("message not found", message_id=message_id)
    return _item(row)


def retry_message(session: Session, *, message_id: int, actor: Actor) -> OutboxItem:
    """Send a pending or failed message at the next run; a failed one gets all its
    attempts again. A sent message, one being sent right now, or a cancelled one is a
    conflict. Consent and quiet hours are checked again when it is sent."""
    with write_transaction(session):
        row = session.get(OutboxMessage, message_id)
        if row is None:
            raise NotFound("message not found", message_id=message_id)
        now = clock.now()
        if row.status == OutboxStatus.sent.value:
            raise Conflict("outbox_sent", field="id")
        if row.status == OutboxStatus.cancelled.value:
            raise Conflict("outbox_retry_cancelled", field="id")
        if row.status == OutboxStatus.sending.value and row.next_attempt_at > now:
            raise Conflict("outbox_sending", field="id")
        before = {"status": row.status, "attempts": row.attempts}
        attempts = 0 if row.status == OutboxStatus.failed.value else row.attempts
        # Conditional, like a worker's claim: if a worker claimed the row since we read it,
        # nothing changes and the administrator is told it is being sent.
        changed = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == row.status,
                OutboxMessage.attempts == row.attempts,
            )
            .values(status=OutboxStatus.pending.value, attempts=attempts, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(changed) != 1:
            raise Conflict("outbox_sending", field="id")
        session.refresh(row)
        record(
            session,
            actor=actor,
            action="outbox.retried",
            target_type="outbox_message",
            target_id=message_id,
            before=before,
            after={"status": row.status, "attempts": row.attempts},
        )
        return _item(row)


def cancel_message(session: Session, *, message_id: int, actor: Actor) -> OutboxItem:
    """Cancel a pending message (never sent). One being sent right now, sent, failed or
    already cancelled is a conflict naming its state."""
    with write_transaction(session):
        row = session.get(OutboxMessage, message_id)
        if row is None:
            raise NotFound("message not found", message_id=message_id)
        if row.status != OutboxStatus.pending.value:
            raise Conflict("outbox_cancel_state", field="id", status=row.status)
        changed = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == OutboxStatus.pending.value,
                OutboxMessage.attempts == row.attempts,
            )
            .values(status=OutboxStatus.cancelled.value, last_error="cancelled by an administrator")
            .execution_options(synchronize_session=False)
        )
        if rowcount(changed) != 1:
            raise Conflict("outbox_sending", field="id")
        session.refresh(row)
        record(
            session,
            actor=actor,
            action="outbox.cancelled",
            target_type="outbox_message",
            target_id=message_id,
            before={"status": OutboxStatus.pending.value},
            after={"status": row.status},
        )
        return _item(row)
