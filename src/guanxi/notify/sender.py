"""Sending what the outbox holds: claim each due row, resolve its address and consent,
hand it to its channel (SMTP, an SMS gateway, an HTTP POST), record the outcome.

Claiming is one conditional UPDATE (status, attempts and due time as they were read), so
of two workers that pick the same row exactly one sends it, on SQLite and PostgreSQL alike.
A worker that dies between sending and recording the success leaves the row to be claimed
again when its lease ends: delivery is at least once, and the key travels as the
provider's idempotency token so the copy can be recognised there.

Decided when a row is claimed, before anything is sent:

- the address: an explicit one (decrypted), else the customer's primary mobile / e-mail
  as of now; none -> cancelled;
- consent: service messages need the customer not to have opted out of surveys,
  marketing ones a granted marketing consent for the channel; otherwise -> cancelled
  ("consent withdrawn");
- quiet hours: an SMS of category service or marketing due inside them waits for their
  end (no attempt is counted);
- webhooks: an endpoint switched off -> cancelled.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import rowcount, write_transaction
from guanxi.customers.consent import Purpose, current, is_allowed
from guanxi.customers.queries import ContactPoints, contact_points
from guanxi.notify import unsubscribe
from guanxi.notify.mail import MESSAGE_ERRORS, Mail, MailConnection, Mailer
from guanxi.notify.models import OutboxMessage, WebhookEndpoint
from guanxi.notify.outbox import (
    ADDRESS_FIELD,
    BACKOFF,
    ERROR_MAX,
    LEASE,
    MAX_ATTEMPTS,
    OPEN,
    QUIET_CATEGORIES,
    Category,
    Channel,
    OutboxStatus,
)
from guanxi.notify.outbox_admin import describe_error
from guanxi.notify.policy import QuietHours, quiet_hours
from guanxi.notify.sms.base import (
    PermanentSmsError,
    SmsError,
    SmsGateway,
    SmsRequest,
    TransientSmsError,
    scrub,
)
from guanxi.notify.sms.templates import get_template
from guanxi.notify.webhooks import SECRET_FIELD, signature_header
from guanxi.security.crypto import cipher

log = logging.getLogger("guanxi.notify.outbox")

WEBHOOK_TIMEOUT = 10.0
GONE = "the receiver answered 410 Gone"


@dataclass
class SendResult:
    """What one run of the sender did."""

    sent: int = 0
    retrying: int = 0  # failed this time, another attempt is scheduled
    failed: int = 0  # gave up: a permanent error, or after the last attempt
    skipped: int = 0  # due, but another worker claimed it first
    waiting: int = 0  # due, but its channel is off (no SMTP host / no SMS gateway)
    cancelled: int = 0  # consent withdrawn, no address, endpoint switched off
    deferred: int = 0  # an SMS that would have landed in the quiet hours

    def figures(self) -> dict[str, int]:
        """The counts as a dict (for the worker's log and ``guanxi worker --once``)."""
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "skipped": self.skipped,
            "waiting": self.waiting,
            "cancelled": self.cancelled,
            "deferred": self.deferred,
        }


@dataclass(frozen=True)
class _WebhookJob:
    url: str
    secret: str
    event: str
    body: bytes
    endpoint_id: int


@dataclass(frozen=True)
class _Claim:
    id: int
    key: str
    attempts: int
    channel: Channel
    mail: Mail | None = None
    sms: SmsRequest | None = None
    webhook: _WebhookJob | None = None
    # Known before sending to fail at once (e.g. an SMS template that does not exist).
    problem: str | None = None


@dataclass
class _Batch:
    """What one run shares: the cut-off, the channels, the quiet hours once read."""

    cutoff: datetime
    mailer: Mailer | None
    sms: SmsGateway | None
    http: httpx.Client | None
    result: SendResult = field(default_factory=SendResult)
    quiet: QuietHours | None = None
    # The instant the caller fixed (a replay, a test), None for the live clock: claims
    # then judge the quiet hours at that instant, not at the wall clock's.
    at: datetime | None = None


_disabled_logged: set[str] = set()


def send_due(
    session_factory: Callable[[], Session],
    *,
    mailer: Mailer | None = None,
    sms: SmsGateway | None = None,
    http: httpx.Client | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> SendResult:
    """Send up to ``limit`` committed messages that are due at ``now`` (default: the clock).

    E-mails go over one SMTP connection for the whole batch, opened at the first mail
    actually claimed; SMS through ``sms``; webhooks with ``http`` (a client of our own if
    None). Each message is claimed, sent and recorded in short transactions of its own, so
    a long batch holds no lock and a crash loses at most the message in flight.

    ``mailer`` None means e-mail is off, ``sms`` None that texts are off: their messages
    stay pending and the fact is logged once per process. Safe to run twice or on several
    workers at once.
    """
    batch = _Batch(now or clock.now(), mailer, sms, http, at=now)
    result = batch.result
    enabled = [Channel.webhook.value]
    if mailer is not None:
        enabled.append(Channel.email.value)
    if sms is not None:
        enabled.append(Channel.sms.value)
    with session_factory() as session:
        due_where = (
            OutboxMessage.status.in_(OPEN),
            OutboxMessage.next_attempt_at <= batch.cutoff,
        )
        due = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(*due_where, OutboxMessage.channel.in_(enabled))
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
            )
        )
        off = [c.value for c in Channel if c.value not in enabled]
        if off:
            idle = list(
                session.execute(
                    select(OutboxMessage.channel)
                    .where(*due_where, OutboxMessage.channel.in_(off))
                    .limit(limit)
                ).scalars()
            )
            for channel in sorted(set(idle)):
                _log_disabled(channel, idle.count(channel))
            result.waiting = len(idle)
    if not due:
        return result
    with ExitStack() as stack:
        conn: MailConnection | None = None
        # Set once the SMTP connection could not be opened or broke: the rest of the
        # batch's mails fail with the same reason instead of waiting for a timeout each.
        broken: str | None = None
        for message_id in due:
            claim = _claim(session_factory, message_id, batch)
            if claim is None:
                continue
            if claim.problem is not None:
                _record_failure(session_factory, claim, claim.problem, result, permanent=True)
                continue
            if claim.mail is not None:
                if conn is None and broken is None:
                    try:
                        assert mailer is not None  # noqa: S101 - only claimed when on
                        conn = stack.enter_context(mailer.connect())
                    except Exception as exc:  # any reason the server cannot be reached
                        broken = describe_error(exc)
                if broken is not None or conn is None:
                    _record_failure(session_factory, claim, broken or "no connection", result)
                    continue
                try:
                    conn.send(claim.mail)
                except MESSAGE_ERRORS as exc:  # this message refused; the connection lives
                    error = describe_error(exc, claim.mail.to)
                    _record_failure(session_factory, claim, error, result)
                except Exception as exc:  # timeout, dropped line: the batch stops mailing
                    broken = describe_error(exc, claim.mail.to)
                    _record_failure(session_factory, claim, broken, result)
                else:
                    _record_sent(session_factory, claim, result)
            elif claim.sms is not None:
                assert sms is not None  # noqa: S101 - only claimed when on
                _send_sms(session_factory, sms, claim, result)
            elif claim.webhook is not None:
                if batch.http is None:
                    batch.http = stack.enter_context(httpx.Client(timeout=WEBHOOK_TIMEOUT))
                _send_webhook(session_factory, batch.http, claim, result)
    log.info("outbox: %s", result.figures())
    return result


def _log_disabled(channel: str, count: int) -> None:
    if channel in _disabled_logged:
        return
    _disabled_logged.add(channel)
    if channel == Channel.email.value:
        log.warning(
            "e-mail is off (GUANXI_SMTP_HOST is empty): %d due mail(s) stay in the outbox", count
        )
    else:
        log.warning("%s is off: %d due message(s) stay in the outbox", channel, count)


# --------------------------------------------------------------------------- claiming


_COLUMNS = (
    OutboxMessage.status,
    OutboxMessage.attempts,
    OutboxMessage.next_attempt_at,
    OutboxMessage.key,
    OutboxMessage.channel,
    OutboxMessage.category,
    OutboxMessage.customer_id,
    OutboxMessage.to_enc,
    OutboxMessage.template,
    OutboxMessage.params,
    OutboxMessage.subject,
    OutboxMessage.body,
)


def _purpose(channel: Channel, category: str) -> Purpose | None:
    """The consent a message needs (None: transactional, always sent)."""
    if category == Category.service.value:
        return Purpose.survey
    if category == Category.marketing.value:
        return Purpose.marketing_sms if channel is Channel.sms else Purpose.marketing_email
    return None


def _claim(session_factory: Callable[[], Session], message_id: int, batch: _Batch) -> _Claim | None:
    """Take one due row for this worker, or None (gone, taken, cancelled, deferred, or
    given up on)."""
    result = batch.result
    with session_factory() as session, write_transaction(session):
        row = session.execute(select(*_COLUMNS).where(OutboxMessage.id == message_id)).one_or_none()
        if row is None or row.status not in OPEN or row.next_attempt_at > batch.cutoff:
            result.skipped += 1
            return None
        now = batch.at or clock.now()
        # Exactly the row as read: a concurrent claim changes attempts and the due time,
        # so only one of two workers that read the same row gets rowcount 1.
        same = (
            OutboxMessage.id == message_id,
            OutboxMessage.status == row.status,
            OutboxMessage.attempts == row.attempts,
            OutboxMessage.next_attempt_at == row.next_attempt_at,
        )

        def change(**values: Any) -> bool:
            done = session.execute(update(OutboxMessage).where(*same).values(**values))
            if rowcount(done) == 1:
                return True
            result.skipped += 1
            return False

        if row.status == OutboxStatus.sending.value and row.attempts >= MAX_ATTEMPTS:
            # A worker died during the last attempt: its outcome is unknown, give up.
            if change(
                status=OutboxStatus.failed.value,
                last_error="the worker stopped during the last attempt",
            ):
                result.failed += 1
                log.warning(
                    "outbox message %d: gave up after %d attempts", message_id, row.attempts
                )
            return None
        channel = Channel(row.channel)
        built = _build(session, row, channel, message_id, batch, now)
        if isinstance(built, str):  # a reason not to send: cancel
            if change(status=OutboxStatus.cancelled.value, last_error=built[:ERROR_MAX]):
                result.cancelled += 1
                log.info("outbox message %d: cancelled (%s)", message_id, built)
            return None
        if isinstance(built, datetime):  # quiet hours: wait for their end
            if change(status=OutboxStatus.pending.value, next_attempt_at=built):
                result.deferred += 1
            return None
        attempts = row.attempts + 1
        if not change(
            status=OutboxStatus.sending.value, attempts=attempts, next_attempt_at=now + LEASE
        ):
            return None
        return _Claim(id=message_id, key=row.key, attempts=attempts, channel=channel, **built)


def _address(row: Any, channel: Channel, points: ContactPoints | None) -> str | None:
    if row.to_enc:
        return cipher().decrypt(ADDRESS_FIELD, row.to_enc)
    if points is None:
        return None
    return points.mobile if channel is Channel.sms else points.email


def _build(
    session: Session,
    row: Any,
    channel: Channel,
    message_id: int,
    batch: _Batch,
    now: datetime,
) -> dict[str, Any] | str | datetime:
    """What to send (the claim's fields), or why not (a cancel reason), or when (the end
    of the quiet hours)."""
    if channel is Channel.webhook:
        target = json.loads(row.params or "{}")
        endpoint = session.get(WebhookEndpoint, int(target.get("endpoint") or 0))
        if endpoint is None or not endpoint.active:
            return "webhook endpoint switched off"
        return {
            "webhook": _WebhookJob(
                url=endpoint.url,
                secret=cipher().decrypt(SECRET_FIELD, endpoint.secret_enc),
                event=row.template or row.subject,
                body=row.body.encode("utf-8"),
                endpoint_id=endpoint.id,
            )
        }
    purpose = _purpose(channel, row.category)
    if purpose is not None and row.customer_id is not None:
        if not is_allowed(session, row.customer_id, purpose):
            answer = current(session, row.customer_id, purpose)
            if answer is False:
                return "consent withdrawn"
            # Allowed by consent, so the customer is archived or merged away.
            return (
                "customer not active"
                if answer is True or purpose is Purpose.survey
                else "no consent"
            )
    if channel is Channel.sms and Category(row.category) in QUIET_CATEGORIES:
        if batch.quiet is None:
            batch.quiet = quiet_hours(session)
        if batch.quiet.contains(now):
            return batch.quiet.release(now)
    # Read once: the address (unless stored on the row) and the language both come from it.
    points = (
        contact_points(session, [row.customer_id]).get(row.customer_id)
        if row.customer_id is not None
        else None
    )
    address = _address(row, channel, points)
    if address is None:
        if row.customer_id is None and not row.to_enc:
            return "the customer no longer exists"
        return "no mobile number" if channel is Channel.sms else "no e-mail address"
    language = points.language if points is not None else "zh_CN"
    marketing = row.category == Category.marketing.value and row.customer_id is not None
    if channel is Channel.email:
        body = row.body
        headers: tuple[tuple[str, str], ...] = ()
        if marketing:
            url = unsubscribe.unsubscribe_url(row.customer_id, Purpose.marketing_email)
            body = f"{body.rstrip()}\n\n——\n{unsubscribe.email_footer(url, language)}\n"
            headers = (
                ("List-Unsubscribe", f"<{url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        return {
            "mail": Mail(
                key=row.key,
                to=address,
                subject=row.subject,
                body=body,
                date=now,
                headers=headers,
            )
        }
    # SMS
    assert batch.sms is not None  # noqa: S101 - only SMS of an enabled gateway are due here
    params: dict[str, str] = json.loads(row.params or "{}")
    template = get_template(session, row.template or "")
    if template is None or not template.active:
        return {"problem": f"template missing: {row.template}"}
    provider_id = template.provider_template(batch.sms.provider)
    if not provider_id:
        return {
            "problem": f"template {template.code} has no {batch.sms.provider} template id",
        }
    text = row.body or template.render(language, params)
    if marketing:
        text = unsubscribe.sms_suffix(text, language)
    return {
        "sms": SmsRequest(
            phone=address,
            sign=template.sign or batch.sms.default_sign,
            template_code=provider_id,
            params=params,
            out_id=row.key,
            param_order=template.param_order,
            text=text,
        )
    }


# --------------------------------------------------------------------------- sending


def _send_sms(
    session_factory: Callable[[], Session],
    gateway: SmsGateway,
    claim: _Claim,
    result: SendResult,
) -> None:
    assert claim.sms is not None  # noqa: S101 - the caller checked
    try:
        outcome = gateway.send(claim.sms)
    except PermanentSmsError as exc:
        _record_failure(session_factory, claim, _sms_error(exc), result, permanent=True)
    except TransientSmsError as exc:
        _record_failure(session_factory, claim, _sms_error(exc), result)
    except Exception as exc:  # a gateway bug must not stop the batch; retried like a timeout
        _record_failure(session_factory, claim, scrub(describe_error(exc)), result)
    else:
        _record_sent(session_factory, claim, result, provider_id=outcome.provider_id)


def _sms_error(exc: SmsError) -> str:
    return scrub(f"{type(exc).__name__}: {exc}")[:ERROR_MAX]


def _send_webhook(
    session_factory: Callable[[], Session], http: httpx.Client, claim: _Claim, result: SendResult
) -> None:
    job = claim.webhook
    assert job is not None  # noqa: S101 - the caller checked
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Guanxi-Webhooks/1",
        "X-Guanxi-Event": job.event,
        "X-Guanxi-Delivery": claim.key,
        "X-Guanxi-Signature": signature_header(job.secret, job.body, stamp),
    }
    try:
        response = http.post(job.url, content=job.body, headers=headers)
    except httpx.HTTPError as exc:
        _record_failure(session_factory, claim, f"{type(exc).__name__}", result)
        return
    if 200 <= response.status_code < 300:
        _record_sent(session_factory, claim, result)
    elif response.status_code == 410:
        _record_failure(
            session_factory,
            claim,
            "HTTP 410: the receiver is gone; endpoint switched off",
            result,
            permanent=True,
            disable_endpoint=job.endpoint_id,
        )
    else:
        _record_failure(session_factory, claim, f"HTTP {response.status_code}", result)


# --------------------------------------------------------------------------- recording


def _still_ours(claim: _Claim) -> tuple[ColumnElement[bool], ...]:
    """Conditions under which the claim still holds (no other worker took the row over)."""
    return (
        OutboxMessage.id == claim.id,
        OutboxMessage.status == OutboxStatus.sending.value,
        OutboxMessage.attempts == claim.attempts,
    )


def _record_sent(
    session_factory: Callable[[], Session],
    claim: _Claim,
    result: SendResult,
    *,
    provider_id: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": OutboxStatus.sent.value, "sent_at": clock.now()}
    if provider_id:
        values["provider_id"] = provider_id[:64]
    with session_factory() as session, write_transaction(session):
        done = session.execute(update(OutboxMessage).where(*_still_ours(claim)).values(**values))
    result.sent += 1
    if rowcount(done) != 1:
        # Our lease ran out and another worker took the message over: it may go twice.
        log.warning("outbox message %d: sent, but the claim had been taken over", claim.id)


def _disable_endpoint(session: Session, endpoint_id: int, now: datetime) -> None:
    """The receiver said 410 Gone: switch its endpoint off (audited)."""
    off = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.active.is_(True))
        .values(active=False, disabled_reason=GONE, updated_at=now)
    )
    if rowcount(off) == 1:
        record(
            session,
            actor=Actor.system("outbox"),
            action="notify.webhook_disabled",
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            before={"active": True},
            after={"active": False, "disabled_reason": GONE},
        )


def _record_failure(
    session_factory: Callable[[], Session],
    claim: _Claim,
    error: str,
    result: SendResult,
    *,
    permanent: bool = False,
    disable_endpoint: int | None = None,
) -> None:
    now = clock.now()
    last = permanent or claim.attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error[:ERROR_MAX]}
    if last:
        values["status"] = OutboxStatus.failed.value
    else:
        values["status"] = OutboxStatus.pending.value
        values["next_attempt_at"] = now + BACKOFF[claim.attempts - 1]
    with session_factory() as session, write_transaction(session):
        done = session.execute(update(OutboxMessage).where(*_still_ours(claim)).values(**values))
        if disable_endpoint is not None and rowcount(done) == 1:
            _disable_endpoint(session, disable_endpoint, now)
    if rowcount(done) != 1:
        log.warning("outbox message %d: failed, but the claim had been taken over", claim.id)
        return
    if last:
        result.failed += 1
        log.warning(
            "outbox message %d: attempt %d failed (%s); giving up", claim.id, claim.attempts, error
        )
    else:
        result.retrying += 1
        log.warning(
            "outbox message %d: attempt %d failed (%s); next attempt at %s",
            claim.id,
            claim.attempts,
            error,
            values["next_attempt_at"],
        )
