"""The rules of the customer self-service page (the web-form channel of the service desk).

Tracking: a waybill number and the last four digits of the sender's or the receiver's phone
show the shipment's public tracking (names masked, the phone as its last four digits, no
fees). Any mismatch, an unknown waybill included, is the same "no match"; the digits are
compared in constant time against every candidate.

Filing: a successful lookup issues a *proof*, a short-lived token signed with the secret key
(itsdangerous) naming the shipment and bound to a random value kept in an HttpOnly cookie;
the filing form carries the proof, never the digits. The ticket is created by
``tickets.service.create_ticket`` with channel ``web_form`` for the shipment's customer and
waybill, its actor the system actor :data:`CUSTOMER`.

Private link: ``/s/{token}``. The token is derived, not stored::

    token = base64url(HMAC-SHA256(secret_key, "guanxi.selfservice.ticket:<id>:<created_at
            as Unix seconds>"))        # 43 characters, 256 bits

and only its SHA-256 is kept in ``ticket.public_token_hash``, so the database alone cannot
open a ticket page, while later mails (the resolution) can carry the same link again.
Changing the secret key gives every ticket a new link at its next mail; links handed out
before then stop working.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.config import Settings, get_settings
from guanxi.core import i18n
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound
from guanxi.core.i18n import N_
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.notify.outbox import queue_email
from guanxi.security.crypto import cipher
from guanxi.selfservice.schemas import (
    PublicReply,
    PublicTicketCreate,
    PublicTicketRead,
    TrackEventRead,
    TrackIn,
    TrackRead,
)
from guanxi.shipments.models import Shipment
from guanxi.shipments.service import find_by_waybill
from guanxi.tickets import service as tickets_service
from guanxi.tickets.enums import DONE, TicketChannel, TicketStatus, TicketType
from guanxi.tickets.models import Ticket, TicketEvent
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.service import create_ticket, events_of

# Who acted, in the audit log and on the ticket's timeline, when the customer did it.
CUSTOMER = Actor(None, "self-service")
# The timeline action of a message the customer wrote on the private page.
CUSTOMER_MESSAGE = tickets_service.CUSTOMER_MESSAGE
# The one answer to a lookup that does not match, whatever did not.
NO_MATCH = N_("No waybill matches these details.")
_PROOF_SALT = "guanxi.selfservice.proof"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Links:
    """What links need: the key they are signed with and where customers reach Guanxi."""

    secret_key: str
    base_url: str

    def ticket_url(self, token: str) -> str:
        """The absolute private link of a ticket."""
        return f"{self.base_url.rstrip('/')}/s/{token}"


_links: Links | None = None


def configure(settings: Settings) -> None:
    """Take the secret key and base URL from the app's settings (called by create_app);
    the resolved hook runs without a request and reads them from here."""
    global _links
    _links = Links(settings.secret_key, settings.base_url)
    tickets_service.set_link_secret(settings.secret_key)


def links() -> Links:
    """The configured links (from the environment if no app configured them)."""
    if _links is None:
        configure(get_settings())
    assert _links is not None  # noqa: S101 - set just above
    return _links


# --------------------------------------------------------------------------- masking


def mask_name(name: str | None) -> str | None:
    """A person's or company's name with only its first character: ``张三丰`` -> ``张**``,
    ``李四`` -> ``李*``; at most three stars, so length says little."""
    if not name or not name.strip():
        return None
    value = name.strip()
    return value[0] + "*" * min(max(len(value) - 1, 1), 3)


def mask_waybill(waybill_no: str | None) -> str | None:
    """A waybill number with its middle hidden: ``SF1234567890`` -> ``SF12****7890``."""
    if not waybill_no:
        return None
    if len(waybill_no) <= 8:
        return waybill_no[:2] + "*" * (len(waybill_no) - 2)
    return waybill_no[:4] + "****" + waybill_no[-4:]


def _place(province: str | None, city: str | None) -> str | None:
    parts = [p for p in (province, city) if p]
    # 北京市 北京市: a municipality names itself twice.
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return " ".join(parts) or None


# --------------------------------------------------------------------------- tracking


@dataclass(frozen=True)
class Tracked:
    """A successful lookup: the shipment's id (for the proof) and its public tracking."""

    shipment_id: int
    read: TrackRead


def _matches(digits: str, candidates: list[str]) -> bool:
    """Whether ``digits`` equals any candidate, comparing with every one in constant time
    (and with a dummy when there is none, so an unknown waybill costs the same)."""
    given = digits.encode()
    found = False
    for candidate in candidates or ["\x00\x00\x00\x00"]:
        found |= hmac.compare_digest(candidate.encode(), given)
    return found


def track(session: Session, *, track_in: TrackIn) -> Tracked | None:
    """The shipment's public tracking when the digits end the sender's (the customer's) or
    the receiver's phone; None for any mismatch, an unknown waybill included."""
    shipment = find_by_waybill(session, track_in.waybill_no)
    candidates: list[str] = []
    customer: Customer | None = None
    receiver_last4: str | None = None
    if shipment is not None:
        customer = session.get(Customer, shipment.customer_id)
        candidates += session.scalars(
            select(CustomerPhone.last4).where(CustomerPhone.customer_id == shipment.customer_id)
        )
        if shipment.receiver_phone_enc:
            receiver_last4 = cipher().decrypt("phone", shipment.receiver_phone_enc)[-4:]
            candidates.append(receiver_last4)
    matched = _matches(track_in.phone_last4, candidates)
    if shipment is None or not matched:
        return None
    return Tracked(shipment.id, _public_tracking(shipment, customer, receiver_last4))


def tracking_of(session: Session, *, proof: Proof) -> TrackRead | None:
    """The public tracking of the shipment a valid proof names (to show it again beside
    the filing form); None when the shipment is gone."""
    shipment = find_by_waybill(session, proof.waybill_no)
    if shipment is None or shipment.id != proof.shipment_id:
        return None
    customer = session.get(Customer, shipment.customer_id)
    receiver_last4 = (
        cipher().decrypt("phone", shipment.receiver_phone_enc)[-4:]
        if shipment.receiver_phone_enc
        else None
    )
    return _public_tracking(shipment, customer, receiver_last4)


def _public_tracking(
    shipment: Shipment, customer: Customer | None, receiver_last4: str | None
) -> TrackRead:
    return TrackRead(
        waybill_no=shipment.waybill_no,
        status=shipment.status,
        service_type=shipment.service_type,
        origin=_place(shipment.origin_province, shipment.origin_city),
        destination=_place(shipment.dest_province, shipment.dest_city),
        sender=mask_name(customer.name) if customer else None,
        receiver=mask_name(shipment.receiver_name),
        receiver_phone=f"****{receiver_last4}" if receiver_last4 else None,
        created_at=shipment.created_at,
        promised_at=shipment.promised_at,
        delivered_at=shipment.delivered_at,
        # Staff notes on steps are left out: they may name people ("签收人：张三").
        events=[
            TrackEventRead(occurred_at=e.occurred_at, status=e.status, location=e.location)
            for e in shipment.events
        ],
    )


# --------------------------------------------------------------------------- proofs


@dataclass(frozen=True)
class Proof:
    """What a valid proof names: the shipment looked up successfully."""

    shipment_id: int
    waybill_no: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_proof(secret_key: str, *, shipment_id: int, waybill_no: str) -> tuple[str, str]:
    """A proof of a successful lookup and the browser secret it is bound to:
    ``(proof for the form, value for the cookie)``. The proof carries only the cookie
    value's hash, so a copied form is useless without the cookie."""
    browser = secrets.token_urlsafe(24)
    payload = {"s": shipment_id, "w": waybill_no, "b": _digest(browser)}
    proof = URLSafeTimedSerializer(secret_key, salt=_PROOF_SALT).dumps(payload)
    return str(proof), browser


def read_proof(
    secret_key: str, *, proof: str, browser: str | None, max_age_seconds: int
) -> Proof | None:
    """The shipment a proof names, or None when it is forged, expired, malformed or not
    this browser's."""
    if not proof or not browser or len(proof) > 500:
        return None
    try:
        payload: Any = URLSafeTimedSerializer(secret_key, salt=_PROOF_SALT).loads(
            proof, max_age=max_age_seconds
        )
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict):
        return None
    shipment_id, waybill, bound = payload.get("s"), payload.get("w"), payload.get("b")
    if not (isinstance(shipment_id, int) and isinstance(waybill, str) and isinstance(bound, str)):
        return None
    if not hmac.compare_digest(bound.encode(), _digest(browser).encode()):
        return None
    return Proof(shipment_id, waybill)


# --------------------------------------------------------------------------- private links


def public_token(secret_key: str, ticket: Ticket) -> str:
    """The ticket's private-link secret (derived, see tickets.service.public_token)."""
    return tickets_service.public_token(ticket, secret_key)


token_hash = tickets_service.token_hash


def ticket_by_token(session: Session, token: str) -> Ticket | None:
    """The ticket a private link opens, or None."""
    if not _TOKEN.match(token):
        return None
    return session.scalar(
        select(Ticket)
        .where(Ticket.public_token_hash == token_hash(token))
        .execution_options(populate_existing=True)
    )


def _open(session: Session, token: str) -> Ticket:
    ticket = ticket_by_token(session, token)
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket


# --------------------------------------------------------------------------- filing

# Texts of the mails (both languages in one mail: a customer's language is not known).
FILED_SUBJECT = N_("We received your request #{id}")
FILED_BODY = N_(
    "Hello,\n\nwe received your request #{id} about waybill {waybill}. Follow it, read our "
    "replies and write to us on this private page (keep the link to yourself):\n\n{link}\n"
)
RESOLVED_SUBJECT = N_("Your request #{id} has been resolved")
RESOLVED_BODY = N_(
    "Hello,\n\nyour request #{id} about waybill {waybill} has been resolved.\n\n{reply}"
    "{survey}Read it again, or write to us, on this private page (keep the link to "
    "yourself):\n\n{link}\n"
)
RESOLVED_REPLY = N_("Our reply:\n{text}\n\n")
RESOLVED_SURVEY = N_("How did we do? Please answer our one-minute survey:\n\n{url}\n\n")


def _bilingual(message: str, sep: str = "\n——\n\n", /, **params: Any) -> str:
    """The message in Chinese, then in English (once when both read the same)."""
    zh = i18n.gettext("zh_CN", message, **params)
    en = i18n.gettext("en", message, **params)
    return zh if zh == en else f"{zh}{sep}{en}"


def _subject(ticket_in: PublicTicketCreate) -> str:
    """The ticket's subject for the queue: the first line of what the customer wrote."""
    first = ticket_in.description.splitlines()[0].strip()
    return first if len(first) <= 60 else first[:59] + "…"


@dataclass(frozen=True)
class Filed:
    """A ticket the customer filed and the secret of its private link (shown once)."""

    ticket: Ticket
    token: str


def file_ticket(
    session: Session, *, proof: Proof, ticket_in: PublicTicketCreate, link: Links
) -> Filed:
    """Create the customer's ticket (channel web_form, the shipment's customer and waybill),
    give it its private link, and mail the link when the customer left an address."""
    shipment = session.get(Shipment, proof.shipment_id)
    if shipment is None or shipment.waybill_no != proof.waybill_no:
        raise NotFound("shipment not found")
    # The category is checked by create_ticket (an active node of the tree).
    ticket = create_ticket(
        session,
        ticket_in=TicketCreate(
            type=TicketType(ticket_in.type.value),
            channel=TicketChannel.web_form,
            customer_id=shipment.customer_id,
            waybill_no=shipment.waybill_no,
            category=ticket_in.category,
            subject=_subject(ticket_in),
            description=ticket_in.description,
            contact_email=ticket_in.email,
        ),
        actor=CUSTOMER,
    )
    # The ticket is whole (its link's hash was stored with it); the confirmation mail is
    # queued after, and the page shows the link whether or not a mail goes.
    token = public_token(link.secret_key, ticket)
    if ticket_in.email:
        params = {
            "id": ticket.id,
            "waybill": mask_waybill(ticket.waybill_no),
            "link": link.ticket_url(token),
        }
        with write_transaction(session):
            queue_email(
                session,
                key=f"selfservice-filed:{ticket.id}",
                to=ticket_in.email,
                subject=_bilingual_subject(FILED_SUBJECT, id=ticket.id),
                body=_bilingual(FILED_BODY, **params),
            )
    return Filed(ticket, token)


def _bilingual_subject(message: str, **params: Any) -> str:
    return _bilingual(message, " / ", **params)


# --------------------------------------------------------------------------- the private page


def _is_reply(event: TicketEvent) -> bool:
    return not event.internal and bool(event.note)


def view(session: Session, *, token: str) -> PublicTicketRead:
    """The ticket as its customer sees it; NotFound for an unknown link."""
    ticket = _open(session, token)
    events = events_of(session, ticket.id)
    done = ticket.status in {s.value for s in DONE}
    return PublicTicketRead(
        id=ticket.id,
        type=ticket.type,
        status=ticket.status,
        waybill=mask_waybill(ticket.waybill_no),
        created_at=ticket.created_at,
        description=ticket.description if ticket.channel == TicketChannel.web_form else None,
        replies=[
            PublicReply(
                occurred_at=e.occurred_at,
                from_customer=e.action == CUSTOMER_MESSAGE,
                text=e.note or "",
            )
            for e in events
            if _is_reply(e)
        ],
        satisfaction=ticket.satisfaction,
        may_rate=done and _survey.is_open is not None and _survey.is_open(session, ticket.id),
        may_message=ticket.status != TicketStatus.closed.value,
    )


def add_message(session: Session, *, token: str, text: str) -> TicketEvent:
    """The customer writes on the private page (tickets.service.add_customer_message)."""
    ticket = _open(session, token)
    return tickets_service.add_customer_message(
        session, ticket_id=ticket.id, text=text, actor=CUSTOMER
    )


# --------------------------------------------------------------------------- resolution mail


def _answer_address(session: Session, ticket: Ticket) -> str | None:
    """Where the resolution goes: the address given for this case; otherwise the
    customer's own address - except for a web-form ticket, which may have been filed by
    the receiver rather than the customer of record (no address given: no mail)."""
    given = tickets_service.contact_email(ticket)
    if given is not None or ticket.channel == TicketChannel.web_form.value:
        return given
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    if customer is None or not customer.email_enc:
        return None
    return cipher().decrypt("email", customer.email_enc)


@dataclass
class SurveyHooks:
    """What the satisfaction survey (surveys/, wired in domains.py) offers this page:
    ``invite(session, ticket, mailed)`` creates the resolved ticket's survey invitation and
    returns its link for the resolution mail (``mailed``: that mail will go); ``is_open(
    session, ticket_id)`` says whether the private page offers the survey."""

    invite: Callable[[Session, Ticket, bool], str | None] | None = None
    is_open: Callable[[Session, int], bool] | None = None


_survey = SurveyHooks()


def register_survey(
    *,
    invite: Callable[[Session, Ticket, bool], str | None],
    is_open: Callable[[Session, int], bool],
) -> None:
    """Let the survey invite resolved tickets' customers through this page and its mail."""
    _survey.invite = invite
    _survey.is_open = is_open


def mail_resolution(session: Session, ticket: Ticket) -> None:
    """Resolved hook: invite the customer to the satisfaction survey, and mail them the
    reply with the survey link and the private link, once per resolution (the outbox key
    names the ticket and its reopen count).

    Goes to the customer's own e-mail address; the address typed into the filing form is
    used only for the confirmation mail (there is no column to keep it).
    """
    address = _answer_address(session, ticket)
    survey_url = _survey.invite(session, ticket, address is not None) if _survey.invite else None
    if address is None:
        return
    link = links()
    token = tickets_service.ensure_public_link(session, ticket)
    replies = [e for e in events_of(session, ticket.id) if _is_reply(e)]
    staff = [e for e in replies if e.action != CUSTOMER_MESSAGE]
    reply = staff[-1].note if staff else None
    with write_transaction(session):
        params = {
            "id": ticket.id,
            "waybill": mask_waybill(ticket.waybill_no) or "—",
            "link": link.ticket_url(token),
        }
        zh_reply = i18n.gettext("zh_CN", RESOLVED_REPLY, text=reply) if reply else ""
        en_reply = i18n.gettext("en", RESOLVED_REPLY, text=reply) if reply else ""
        zh_survey = i18n.gettext("zh_CN", RESOLVED_SURVEY, url=survey_url) if survey_url else ""
        en_survey = i18n.gettext("en", RESOLVED_SURVEY, url=survey_url) if survey_url else ""
        body = (
            i18n.gettext("zh_CN", RESOLVED_BODY, reply=zh_reply, survey=zh_survey, **params)
            + "\n——\n\n"
            + i18n.gettext("en", RESOLVED_BODY, reply=en_reply, survey=en_survey, **params)
        )
        queue_email(
            session,
            key=f"selfservice-resolved:{ticket.id}:{ticket.reopened}",
            to=address,
            subject=_bilingual_subject(RESOLVED_SUBJECT, id=ticket.id),
            body=body,
        )
