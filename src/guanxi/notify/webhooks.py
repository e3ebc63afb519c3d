"""Signed webhooks: other systems subscribe to events ("survey.detractor",
"loyalty.tier_changed" ...) and receive a JSON ``POST`` for each, through the outbox.

Every delivery carries::

    X-Guanxi-Event: survey.detractor
    X-Guanxi-Delivery: <the outbox key: the same on a retry, so the receiver can dedupe>
    X-Guanxi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

A receiver checks the signature with :func:`verify_signature` (the timestamp inside the
signed text, with a tolerance, stops replays). A 2xx answer is success; 410 Gone switches
the endpoint off; anything else (or no answer) is retried with the outbox's back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.notify import messages as _messages  # noqa: F401 - registers error texts
from guanxi.notify.models import OutboxMessage, WebhookEndpoint
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from guanxi.security.crypto import cipher
from guanxi.security.models import User
from guanxi.security.service import actor_of

# The associated data of the secret's ciphertext (not a secret itself).
SECRET_FIELD = "webhook_secret"  # noqa: S105
ALL_EVENTS = "*"
# The events Guanxi emits, with what they mean (an endpoint subscribes to some or all).
EVENTS: dict[str, str] = {
    "survey.answered": N_("A customer answered a survey"),
    "survey.detractor": N_("A survey answer was a detractor's (NPS 0–6)"),
    "loyalty.tier_changed": N_("A member's tier changed"),
    "loyalty.coupon_redeemed": N_("A coupon was redeemed"),
    "care.run_finished": N_("A care-automation run finished"),
    "consent.withdrawn": N_("A customer withdrew a consent"),
}
_EVENT = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


def _actor(actor: User | Actor) -> Actor:
    return actor if isinstance(actor, Actor) else actor_of(actor)


# --------------------------------------------------------------------------- signatures


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, *, now: float | None = None
) -> bool:
    """Whether ``header`` (X-Guanxi-Signature) signs ``body`` with ``secret`` and its time
    lies within ``tolerance`` seconds of now. For receivers::

        ok = verify_signature(SECRET, request.headers["X-Guanxi-Signature"], raw_body)

    Several ``v1=`` values are accepted (one matching is enough), so a receiver keeps
    working while a rotated secret rolls out.
    """
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        return False
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance:
        return False
    expected = signature_header(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as administrators see it (the secret never, except once on creation
    or rotation)."""

    id: int
    name: str
    url: str
    events: tuple[str, ...]
    active: bool
    disabled_reason: str | None
    created_at: Any
    secret: str | None = None


def _view(row: WebhookEndpoint, secret: str | None = None) -> EndpointView:
    return EndpointView(
        id=row.id,
        name=row.name,
        url=row.url,
        events=tuple(json.loads(row.events)),
        active=row.active,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        secret=secret,
    )


def _check(url: str, events: Sequence[str]) -> list[FieldError]:
    errors = []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        errors.append(FieldError(("url",), "webhook_url", "Give an http:// or https:// address"))
    if not events:
        errors.append(FieldError(("events",), "webhook_events", "Choose at least one event"))
    for event in events:
        if event != ALL_EVENTS and event not in EVENTS:
            errors.append(
                FieldError(
                    ("events",),
                    "webhook_event_unknown",
                    f"Unknown event: {event}",
                    {"event": event},
                )
            )
    return errors


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(
    session: Session, *, name: str, url: str, events: Sequence[str], actor: User | Actor
) -> EndpointView:
    """Register a receiver; the view carries its signing secret (shown this once)."""
    errors = _check(url, events)
    if errors:
        raise ValidationFailed(errors)
    secret = _new_secret()
    who = _actor(actor)
    with write_transaction(session):
        now = clock.now()
        row = WebhookEndpoint(
            name=name.strip()[:100] or urlsplit(url).hostname or url,
            url=url,
            secret_enc=cipher().encrypt(SECRET_FIELD, secret),
            events=json.dumps(sorted(set(events))),
            active=True,
            created_by=who.id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=who,
            action="notify.webhook_created",
            target_type="webhook_endpoint",
            target_id=row.id,
            after={"name": row.name, "url": url, "events": sorted(set(events))},
        )
        return _view(row, secret)


def _get(session: Session, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id)
    return row


def rotate_secret(session: Session, *, endpoint_id: int, actor: User | Actor) -> EndpointView:
    """Give the endpoint a new secret (shown this once); deliveries sent from now on are
    signed with it, including retries of older ones."""
    secret = _new_secret()
    with write_transaction(session):
        row = _get(session, endpoint_id)
        row.secret_enc = cipher().encrypt(SECRET_FIELD, secret)
        row.updated_at = clock.now()
        record(
            session,
            actor=_actor(actor),
            action="notify.webhook_secret_rotated",
            target_type="webhook_endpoint",
            target_id=row.id,
        )
        return _view(row, secret)


def set_active(
    session: Session,
    *,
    endpoint_id: int,
    active: bool,
    actor: User | Actor,
    reason: str | None = None,
) -> EndpointView:
    """Switch an endpoint off (its pending deliveries are cancelled when their turn comes)
    or on again."""
    with write_transaction(session):
        row = _get(session, endpoint_id)
        if row.active == active:
            if not active:
                raise Conflict("webhook_disabled", field="id")
            return _view(row)
        before = {"active": row.active, "disabled_reason": row.disabled_reason}
        row.active = active
        row.disabled_reason = None if active else (reason or "switched off by an administrator")
        row.updated_at = clock.now()
        record(
            session,
            actor=_actor(actor),
            action="notify.webhook_enabled" if active else "notify.webhook_disabled",
            target_type="webhook_endpoint",
            target_id=row.id,
            before=before,
            after={"active": row.active, "disabled_reason": row.disabled_reason},
        )
        return _view(row)


def list_endpoints(session: Session) -> list[EndpointView]:
    """Every endpoint, newest first."""
    rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id.desc()))
    return [_view(r) for r in rows]


def get_endpoint(session: Session, endpoint_id: int) -> EndpointView:
    """One endpoint (404 if unknown)."""
    return _view(_get(session, endpoint_id))


def _key_prefix(endpoint_id: int) -> str:
    return f"wh:{endpoint_id}:"


def recent_deliveries(
    session: Session, endpoint_id: int, *, limit: int = 50
) -> list[OutboxMessage]:
    """The endpoint's newest deliveries (outbox rows of channel webhook)."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == Channel.webhook.value,
                OutboxMessage.key.startswith(_key_prefix(endpoint_id), autoescape=True),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- emitting


def _subscribed(events_json: str, event: str) -> bool:
    events = json.loads(events_json)
    return event in events or ALL_EVENTS in events


def emit(session: Session, event: str, payload: Mapping[str, Any]) -> int:
    """Queue a signed delivery of ``event`` to every active endpoint subscribed to it, in
    the caller's transaction (sent after commit); returns how many were queued.

    The delivery id is derived from the event and its payload: emitting the same event
    with the same payload twice (a job run again) delivers it once per endpoint. The
    payload must be JSON-serialisable and should name records by id, not carry personal
    data.
    """
    if not _EVENT.match(event):
        raise ValueError(f"not an event name: {event!r}")
    endpoints = [
        (row_id, events)
        for row_id, events in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                WebhookEndpoint.active.is_(True)
            )
        )
        if _subscribed(events, event)
    ]
    if not endpoints:
        return 0
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{event}\n{data}".encode()).hexdigest()[:40]
    created = clock.now().astimezone(UTC).isoformat(timespec="seconds")
    messages = []
    for endpoint_id, _events in endpoints:
        key = f"{_key_prefix(endpoint_id)}{digest}"
        body = json.dumps(
            {"id": key, "event": event, "created_at": created, "data": json.loads(data)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        messages.append(
            Outbound(
                key=key,
                channel=Channel.webhook,
                category=Category.transactional,
                template=event,
                params={"endpoint": str(endpoint_id)},
                subject=event,
                body=body,
                source=f"webhook:{event}",
            )
        )
    return queue_messages(session, messages)


def consent_changed(
    session: Session, customer_id: int, purpose: str, granted: bool, source: str
) -> None:
    """Emit ``consent.withdrawn`` when a customer withdraws a consent (a consent listener:
    other systems that contact customers must stop too)."""
    if not granted:
        emit(
            session,
            "consent.withdrawn",
            {
                "customer_id": customer_id,
                "purpose": str(purpose),
                "source": source,
                "at": clock.now().astimezone(UTC).isoformat(timespec="seconds"),
            },
        )
