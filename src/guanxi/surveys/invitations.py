"""Invitations: the single-use link, the message that carries it, and finding it again.

A link's secret is 128 random bits (22 URL-safe characters: short enough for an SMS);
only its SHA-256 is stored, so the database alone cannot open a survey. The message is
queued in the notify outbox inside the caller's transaction (category ``service``: the
outbox skips customers who withdrew the ``survey`` consent and holds SMS back during quiet
hours): an SMS (template ``survey_invite``) when the customer has a mobile number, else an
e-mail. The one reminder gets a second secret, since the first cannot be recovered.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from guanxi.core import clock, i18n
from guanxi.core.db import HotSelect, reserve_ids, table_of
from guanxi.core.i18n import N_
from guanxi.customers.queries import contact_points
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from guanxi.surveys.enums import InvitationStatus, InviteChannel, Trigger
from guanxi.surveys.models import SurveyInvitation, SurveyTemplate

TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
# SMS template codes of the notify registry.
INVITE_TEMPLATE = "survey_invite"
REMINDER_TEMPLATE = "survey_reminder"
# Rows per IN list or insert batch.
_CHUNK = 900

INVITE_SUBJECT = N_("How did we do? A one-minute survey")
INVITE_BODY = N_(
    "Hello {name},\n\nthank you for choosing us. Please tell us how we did — it takes a "
    "minute:\n\n{link}\n\nThe link is for you only and works for {days} days.\n"
)
INVITE_SMS = N_("Thank you for choosing us. Please rate our service (1 minute): {link}")
REMINDER_SUBJECT = N_("A reminder: how did we do?")
REMINDER_BODY = N_(
    "Hello {name},\n\nwe would still like to hear how we did. The survey takes a minute:"
    "\n\n{link}\n\nThe link works until {until}.\n"
)
REMINDER_SMS = N_("A reminder: please rate our service (1 minute): {link}")


def new_token() -> str:
    """A fresh link secret: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def hash_token(token: str) -> str:
    """What is stored of a link secret: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def survey_url(token: str) -> str:
    """The absolute link of a survey (the base URL customers reach Guanxi at)."""
    from guanxi.selfservice.service import links

    return f"{links().base_url.rstrip('/')}/q/{token}"


@dataclass(frozen=True)
class InviteRequest:
    """One invitation to create. ``key`` makes it idempotent. ``email`` is an address to
    use when the customer has none (a ticket's contact address); ``email_elsewhere``: an
    e-mail invitation is carried by another mail (the ticket's resolution mail), so none
    is queued here (an SMS still is)."""

    key: str
    trigger: Trigger
    customer_id: int | None = None
    ticket_id: int | None = None
    shipment_id: int | None = None
    email: str | None = None
    email_elsewhere: bool = False


@dataclass(frozen=True)
class Invited:
    """A new invitation and its secret (known only now)."""

    id: int
    key: str
    customer_id: int | None
    channel: str
    expires_at: datetime
    token: str

    @property
    def url(self) -> str:
        """The survey link."""
        return survey_url(self.token)


def _existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        found.update(
            session.scalars(
                select(SurveyInvitation.key).where(SurveyInvitation.key.in_(keys[i : i + _CHUNK]))
            )
        )
    return found


def _text(lang: str, message: str, **params: Any) -> str:
    return i18n.gettext("en" if lang == "en" else "zh_CN", message, **params)


def invite_many(
    session: Session,
    *,
    template: SurveyTemplate,
    version_id: int,
    requests: Sequence[InviteRequest],
    expiry_days: int,
    now: datetime | None = None,
) -> list[Invited]:
    """Create the invitations whose keys are new and queue their messages, inside the
    caller's transaction; returns the new ones (with their secrets).

    The channel is SMS when the customer has a mobile number, else e-mail (the customer's
    address or the request's), else ``link`` (the link travels only in another message
    or on the ticket's private page).
    """
    moment = now or clock.now()
    wanted = list({r.key: r for r in requests}.values())
    taken = _existing_keys(session, [r.key for r in wanted])
    fresh = [r for r in wanted if r.key not in taken]
    if not fresh:
        return []
    points = contact_points(session, [r.customer_id for r in fresh if r.customer_id is not None])
    expires = moment + timedelta(days=expiry_days)
    table = table_of(SurveyInvitation)
    ids = reserve_ids(session, table, len(fresh))
    rows: list[dict[str, Any]] = []
    invited: list[Invited] = []
    messages: list[Outbound] = []
    for inv_id, req in zip(ids, fresh, strict=True):
        contact = points.get(req.customer_id) if req.customer_id is not None else None
        mobile = contact.mobile if contact else None
        email = (contact.email if contact else None) or req.email
        if mobile:
            channel = InviteChannel.sms
        elif email:
            channel = InviteChannel.email
        else:
            channel = InviteChannel.link
        token = new_token()
        rows.append(
            {
                "id": inv_id,
                "key": req.key,
                "template_id": template.id,
                "version_id": version_id,
                "customer_id": req.customer_id,
                "ticket_id": req.ticket_id,
                "shipment_id": req.shipment_id,
                "trigger": req.trigger.value,
                "channel": channel.value,
                "token_hash": hash_token(token),
                "reminder_token_hash": None,
                "status": InvitationStatus.open.value,
                "created_at": moment,
                "expires_at": expires,
                "reminded_at": None,
                "answered_at": None,
            }
        )
        found = Invited(inv_id, req.key, req.customer_id, channel.value, expires, token)
        invited.append(found)
        if channel is InviteChannel.sms or (
            channel is InviteChannel.email and not req.email_elsewhere
        ):
            lang = contact.language if contact else "zh_CN"
            name = contact.name if contact else ""
            messages.append(
                _message(
                    key=f"survey-invite:{inv_id}",
                    inv_id=inv_id,
                    channel=channel,
                    customer_id=req.customer_id,
                    # The request's address only where the customer has none of their own.
                    to=req.email
                    if channel is InviteChannel.email and not (contact and contact.email)
                    else None,
                    lang=lang,
                    subject=_text(lang, INVITE_SUBJECT),
                    body=_text(
                        lang,
                        INVITE_SMS if channel is InviteChannel.sms else INVITE_BODY,
                        name=name,
                        link=found.url,
                        days=expiry_days,
                    ),
                    template=INVITE_TEMPLATE,
                    params={"link": found.url, "days": str(expiry_days)},
                )
            )
    for i in range(0, len(rows), _CHUNK):
        session.execute(insert(table), rows[i : i + _CHUNK])
    if messages:
        queue_messages(session, messages, now=moment)
    return invited


def _message(
    *,
    key: str,
    inv_id: int,
    channel: InviteChannel,
    customer_id: int | None,
    to: str | None,
    lang: str,
    subject: str,
    body: str,
    template: str,
    params: dict[str, str],
) -> Outbound:
    return Outbound(
        key=key,
        channel=Channel.sms if channel is InviteChannel.sms else Channel.email,
        category=Category.service,
        customer_id=customer_id,
        to=to,
        template=template if channel is InviteChannel.sms else None,
        params=params if channel is InviteChannel.sms else {},
        subject=subject,
        body=body,
        source=f"survey:{inv_id}",
    )


# --------------------------------------------------------------------------- reminders


def remind(session: Session, *, now: datetime, after_days: int, limit: int = 5000) -> list[Invited]:
    """Queue the one reminder of every open invitation at least ``after_days`` old that
    has not expired and was sent by SMS or e-mail, inside the caller's transaction; each
    gets a second secret. Idempotent: an invitation is reminded once."""
    due = list(
        session.execute(
            select(
                SurveyInvitation.id,
                SurveyInvitation.customer_id,
                SurveyInvitation.channel,
                SurveyInvitation.expires_at,
            )
            .where(
                SurveyInvitation.status == InvitationStatus.open.value,
                SurveyInvitation.created_at <= now - timedelta(days=after_days),
                SurveyInvitation.expires_at > now,
                SurveyInvitation.reminded_at.is_(None),
                SurveyInvitation.customer_id.is_not(None),
                SurveyInvitation.channel.in_([InviteChannel.sms.value, InviteChannel.email.value]),
            )
            .order_by(SurveyInvitation.id)
            .limit(limit)
        )
    )
    if not due:
        return []
    points = contact_points(session, [r.customer_id for r in due])
    out: list[Invited] = []
    messages: list[Outbound] = []
    for row in due:
        token = new_token()
        # Conditional: of two workers reminding at once, one sets it.
        claimed = session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == row.id, SurveyInvitation.reminded_at.is_(None))
            .values(reminded_at=now, reminder_token_hash=hash_token(token))
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        found = Invited(row.id, "", row.customer_id, row.channel, row.expires_at, token)
        out.append(found)
        contact = points.get(row.customer_id)
        lang = contact.language if contact else "zh_CN"
        channel = InviteChannel(row.channel)
        until = row.expires_at.astimezone(_zone()).strftime("%Y-%m-%d")
        messages.append(
            _message(
                key=f"survey-reminder:{row.id}",
                inv_id=row.id,
                channel=channel,
                customer_id=row.customer_id,
                to=None,
                lang=lang,
                subject=_text(lang, REMINDER_SUBJECT),
                body=_text(
                    lang,
                    REMINDER_SMS if channel is InviteChannel.sms else REMINDER_BODY,
                    name=contact.name if contact else "",
                    link=found.url,
                    until=until,
                ),
                template=REMINDER_TEMPLATE,
                params={"link": found.url, "until": until},
            )
        )
    if messages:
        queue_messages(session, messages, now=now)
    return out


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    from guanxi.config import get_settings

    return ZoneInfo(get_settings().timezone)


# --------------------------------------------------------------------------- finding


@dataclass(frozen=True)
class InvitationView:
    """What the answer page needs of an invitation."""

    id: int
    template_id: int
    version_id: int
    customer_id: int | None
    ticket_id: int | None
    shipment_id: int | None
    trigger: str
    channel: str
    status: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        """Whether the link no longer works."""
        return self.expires_at <= now


_COLUMNS = (
    SurveyInvitation.id,
    SurveyInvitation.template_id,
    SurveyInvitation.version_id,
    SurveyInvitation.customer_id,
    SurveyInvitation.ticket_id,
    SurveyInvitation.shipment_id,
    SurveyInvitation.trigger,
    SurveyInvitation.channel,
    SurveyInvitation.status,
    SurveyInvitation.expires_at,
)
# On the answer page's path: both secrets are unique-indexed.
_BY_TOKEN = HotSelect(
    select(*_COLUMNS).where(
        or_(
            SurveyInvitation.token_hash == bindparam("h"),
            SurveyInvitation.reminder_token_hash == bindparam("h"),
        )
    )
)


def by_token(session: Session, token: str) -> InvitationView | None:
    """The invitation a link opens, or None for a malformed or unknown secret."""
    if not TOKEN.match(token):
        return None
    row = _BY_TOKEN.first(session, {"h": hash_token(token)})
    return InvitationView(*tuple(row)) if row is not None else None


def of_ticket(session: Session, ticket_id: int) -> InvitationView | None:
    """The newest invitation of a ticket (its survey after the last resolution)."""
    row = session.execute(
        select(*_COLUMNS)
        .where(SurveyInvitation.ticket_id == ticket_id)
        .order_by(SurveyInvitation.id.desc())
        .limit(1)
    ).first()
    return InvitationView(*tuple(row)) if row is not None else None
