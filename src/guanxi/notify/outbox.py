"""The e-mail outbox: mails are written in the caller's transaction and sent by the worker.

Sent after commit, by construction: :func:`queue_email` only inserts a row inside the
transaction of the change it reports. The sender (:func:`send_due`) reads and claims rows
through sessions of its own, and another session sees a row only once the transaction that
wrote it has committed. A change that rolls back leaves no mail behind; a committed change's
mail survives a crash of the process that made it.

A row's life::

    pending --claim--> sending --ok--> sent
                          |
                          +--error--> pending, next_attempt_at = now + back-off
                          +--error on the last attempt--> failed
    sending whose lease ran out (the worker died) --> claimed again; the lost try counts

Claiming is one conditional UPDATE (status, attempts and due time as they were read), so of
two workers that pick the same row exactly one sends it, on SQLite and PostgreSQL alike. A
worker that dies between sending and recording the success leaves the row to be claimed
again when its lease ends: delivery is at least once, and the Message-ID derived from the
key lets the receiving side recognise the copy.

No personal data in errors or logs: the address is encrypted at rest, scrubbed from every
error text, and logs name mails by id.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import is_unique_violation, write_transaction
from guanxi.core.errors import Conflict, NotFound
from guanxi.notify.mail import MESSAGE_ERRORS, Mail, MailConnection, Mailer
from guanxi.notify.models import OutboxEmail
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_email

log = logging.getLogger("guanxi.notify.outbox")

# Wait after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# How long a claim holds a row. Must outlast one mail's sending (a few SMTP round trips of
# at most smtp_timeout each); after it, another worker may take the row over.
LEASE = timedelta(minutes=10)
KEY_MAX = 120
SUBJECT_MAX = 200
ERROR_MAX = 300
# The associated data of the address ciphertext (crypto binds each value to its column).
ADDRESS_FIELD = "outbox_to"


class OutboxStatus(StrEnum):
    """Where a mail is in its life (see the module docstring)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


_OPEN = (OutboxStatus.pending.value, OutboxStatus.sending.value)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]]+")


# --------------------------------------------------------------------------- queue


def queue_email(session: Session, *, key: str, to: str, subject: str, body: str) -> bool:
    """Queue one e-mail inside the caller's transaction; False if ``key`` is already queued.

    The key makes queuing idempotent (a job that runs twice queues once; two transactions
    racing on one key end with one row). The worker sends the mail after the caller commits;
    if the caller rolls back, nothing is sent.
    """
    if not key or len(key) > KEY_MAX:
        raise ValueError(f"an outbox key has 1 to {KEY_MAX} characters")
    address = to.strip()
    # The address goes into a header: refuse line breaks (header injection) outright.
    if "@" not in address or _CONTROL.search(address):
        raise ValueError("not an e-mail address")
    if session.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key)) is not None:
        return False
    now = clock.now()
    try:
        with session.begin_nested():
            session.execute(
                insert(OutboxEmail).values(
                    key=key,
                    to_enc=cipher().encrypt(ADDRESS_FIELD, address),
                    subject=_one_line(subject)[:SUBJECT_MAX],
                    body=body,
                    status=OutboxStatus.pending.value,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    except IntegrityError as exc:  # queued by a concurrent transaction since our check
        if not is_unique_violation(exc):
            raise
        return False
    return True


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


# --------------------------------------------------------------------------- send


@dataclass
class SendResult:
    """What one run of the sender did."""

    sent: int = 0
    retrying: int = 0  # failed this time, another attempt is scheduled
    failed: int = 0  # gave up after the last attempt
    skipped: int = 0  # due, but another worker claimed it first
    waiting: int = 0  # due, but e-mail is off (no SMTP host)

    def figures(self) -> dict[str, int]:
        """The counts as a dict (for the worker's log and ``guanxi worker --once``)."""
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "skipped": self.skipped,
            "waiting": self.waiting,
        }


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int
    mail: Mail


_disabled_logged = False


def send_due(
    session_factory: Callable[[], Session],
    *,
    mailer: Mailer | None,
    now: datetime | None = None,
    limit: int = 100,
) -> SendResult:
    """Send up to ``limit`` committed mails that are due at ``now`` (default: the clock).

    One connection for the whole batch, opened at the first mail actually claimed. Each
    mail is claimed, sent and recorded in short transactions of its own, so a long batch
    holds no lock and a crash loses at most the mail in flight. Times written (lease,
    next attempt, sent at) come from :func:`guanxi.core.clock.now` at that moment.

    ``mailer`` None means e-mail is off: mails stay pending and the fact is logged once per
    process. Safe to run twice or on several workers at once.
    """
    cutoff = now or clock.now()
    result = SendResult()
    with session_factory() as session:
        due = list(
            session.scalars(
                select(OutboxEmail.id)
                .where(OutboxEmail.status.in_(_OPEN), OutboxEmail.next_attempt_at <= cutoff)
                .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
                .limit(limit)
            )
        )
    if not due:
        return result
    if mailer is None:
        _log_disabled(len(due))
        result.waiting = len(due)
        return result
    with ExitStack() as stack:
        conn: MailConnection | None = None
        # Set once the connection could not be opened or broke: the rest of the batch
        # fails with the same reason instead of waiting for a timeout each.
        broken: str | None = None
        for email_id in due:
            claim = _claim(session_factory, email_id, cutoff, result)
            if claim is None:
                continue
            if conn is None and broken is None:
                try:
                    conn = stack.enter_context(mailer.connect())
                except Exception as exc:  # any reason the server cannot be reached
                    broken = describe_error(exc)
            if broken is not None or conn is None:
                _record_failure(session_factory, claim, broken or "no connection", result)
                continue
            try:
                conn.send(claim.mail)
            except MESSAGE_ERRORS as exc:  # this message refused; the connection lives on
                _record_failure(session_factory, claim, describe_error(exc, claim.mail.to), result)
            except Exception as exc:  # timeout, dropped line: the batch stops sending
                broken = describe_error(exc, claim.mail.to)
                _record_failure(session_factory, claim, broken, result)
            else:
                _record_sent(session_factory, claim, result)
    log.info("outbox: %s", result.figures())
    return result


def _log_disabled(count: int) -> None:
    global _disabled_logged
    if not _disabled_logged:
        _disabled_logged = True
        log.warning(
            "e-mail is off (GUANXI_SMTP_HOST is empty): %d due mail(s) stay in the outbox", count
        )


def _claim(
    session_factory: Callable[[], Session], email_id: int, cutoff: datetime, result: SendResult
) -> _Claim | None:
    """Take one due row for this worker, or None (gone, taken, or given up on)."""
    with session_factory() as session, write_transaction(session):
        row = session.execute(
            select(
                OutboxEmail.status,
                OutboxEmail.attempts,
                OutboxEmail.next_attempt_at,
                OutboxEmail.key,
                OutboxEmail.to_enc,
                OutboxEmail.subject,
                OutboxEmail.body,
            ).where(OutboxEmail.id == email_id)
        ).one_or_none()
        if row is None or row.status not in _OPEN or row.next_attempt_at > cutoff:
            result.skipped += 1
            return None
        now = clock.now()
        # Exactly the row as read: a concurrent claim changes attempts and the due time,
        # so only one of two workers that read the same row gets rowcount 1.
        same = (
            OutboxEmail.id == email_id,
            OutboxEmail.status == row.status,
            OutboxEmail.attempts == row.attempts,
            OutboxEmail.next_attempt_at == row.next_attempt_at,
        )
        if row.status == OutboxStatus.sending.value and row.attempts >= MAX_ATTEMPTS:
            # A worker died during the last attempt: its outcome is unknown, give up.
            gave_up = session.execute(
                update(OutboxEmail)
                .where(*same)
                .values(
                    status=OutboxStatus.failed.value,
                    last_error="the worker stopped during the last attempt",
                )
            )
            if _rowcount(gave_up) == 1:
                result.failed += 1
                log.warning("outbox mail %d: gave up after %d attempts", email_id, row.attempts)
            else:
                result.skipped += 1
            return None
        attempts = row.attempts + 1
        taken = session.execute(
            update(OutboxEmail)
            .where(*same)
            .values(
                status=OutboxStatus.sending.value,
                attempts=attempts,
                next_attempt_at=now + LEASE,
            )
        )
        if _rowcount(taken) != 1:
            result.skipped += 1
            return None
        mail = Mail(
            key=row.key,
            to=cipher().decrypt(ADDRESS_FIELD, row.to_enc),
            subject=row.subject,
            body=row.body,
            date=now,
        )
    return _Claim(email_id, attempts, mail)


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _still_ours(claim: _Claim) -> tuple[ColumnElement[bool], ...]:
    """Conditions under which the claim still holds (no other worker took the row over)."""
    return (
        OutboxEmail.id == claim.id,
        OutboxEmail.status == OutboxStatus.sending.value,
        OutboxEmail.attempts == claim.attempts,
    )


def _record_sent(session_factory: Callable[[], Session], claim: _Claim, result: SendResult) -> None:
    with session_factory() as session, write_transaction(session):
        done = session.execute(
            update(OutboxEmail)
            .where(*_still_ours(claim))
            .values(status=OutboxStatus.sent.value, sent_at=clock.now())
        )
    result.sent += 1
    if _rowcount(done) != 1:
        # Our lease ran out and another worker took the mail over: it may go twice.
        log.warning("outbox mail %d: sent, but the claim had been taken over", claim.id)


def _record_failure(
    session_factory: Callable[[], Session], claim: _Claim, error: str, result: SendResult
) -> None:
    now = clock.now()
    last = claim.attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error[:ERROR_MAX]}
    if last:
        values["status"] = OutboxStatus.failed.value
    else:
        values["status"] = OutboxStatus.pending.value
        values["next_attempt_at"] = now + BACKOFF[claim.attempts - 1]
    with session_factory() as session, write_transaction(session):
        done = session.execute(update(OutboxEmail).where(*_still_ours(claim)).values(**values))
    if _rowcount(done) != 1:
        log.warning("outbox mail %d: failed, but the claim had been taken over", claim.id)
        return
    if last:
        result.failed += 1
        log.warning(
            "outbox mail %d: attempt %d failed (%s); giving up", claim.id, claim.attempts, error
        )
    else:
        result.retrying += 1
        log.warning(
            "outbox mail %d: attempt %d failed (%s); next attempt at %s",
            claim.id,
            claim.attempts,
            error,
            values["next_attempt_at"],
        )


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
    return _one_line(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)[
        :ERROR_MAX
    ]


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


# --------------------------------------------------------------------------- admin view


@dataclass(frozen=True)
class OutboxItem:
    """A mail as the administrators' view shows it: the address masked."""

    id: int
    key: str
    to: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def _item(row: OutboxEmail) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        key=row.key,
        to=mask_email(cipher().decrypt(ADDRESS_FIELD, row.to_enc)),
        subject=row.subject,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def list_outbox(
    session: Session,
    *,
    statuses: tuple[OutboxStatus, ...] = (
        OutboxStatus.pending,
        OutboxStatus.sending,
        OutboxStatus.failed,
    ),
    before_id: int | None = None,
    limit: int = 100,
) -> list[OutboxItem]:
    """Mails in the given states, newest first (keyset: pass the last id as ``before_id``)."""
    stmt = select(OutboxEmail).where(OutboxEmail.status.in_([s.value for s in statuses]))
    if before_id is not None:
        stmt = stmt.where(OutboxEmail.id < before_id)
    rows = session.scalars(stmt.order_by(OutboxEmail.id.desc()).limit(limit))
    return [_item(r) for r in rows]


def retry_email(session: Session, *, email_id: int, actor: Actor) -> OutboxItem:
    """Send a pending or failed mail at the next run; a failed one gets all its attempts
    again. A sent mail, or one being sent right now, is a conflict."""
    with write_transaction(session):
        row = session.get(OutboxEmail, email_id)
        if row is None:
            raise NotFound("e-mail not found", email_id=email_id)
        now = clock.now()
        if row.status == OutboxStatus.sent.value:
            raise Conflict("outbox_sent", field="id")
        if row.status == OutboxStatus.sending.value and row.next_attempt_at > now:
            raise Conflict("outbox_sending", field="id")
        before = {"status": row.status, "attempts": row.attempts}
        attempts = 0 if row.status == OutboxStatus.failed.value else row.attempts
        # Conditional, like a worker's claim: if a worker claimed the row since we read it,
        # nothing changes and the administrator is told it is being sent.
        changed = session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                OutboxEmail.status == row.status,
                OutboxEmail.attempts == row.attempts,
            )
            .values(status=OutboxStatus.pending.value, attempts=attempts, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(changed) != 1:
            raise Conflict("outbox_sending", field="id")
        session.refresh(row)
        record(
            session,
            actor=actor,
            action="outbox.retried",
            target_type="outbox_email",
            target_id=email_id,
            before=before,
            after={"status": row.status, "attempts": row.attempts},
        )
        return _item(row)
