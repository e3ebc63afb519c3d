"""Unsubscribe links and the "reply TD to unsubscribe" convention.

A link carries a token signed with the secret key (itsdangerous) that names the customer
and the purpose; it never expires (a mail read months later must still work) and reveals
nothing a reader could not see in the mail. The public page ``/u/{token}`` asks to confirm
and then withdraws the consent; mail clients may also POST to it directly (RFC 8058
one-click, announced by the ``List-Unsubscribe`` headers of every marketing mail).

A text reply of TD / T / N / 退订 / 取消 / unsubscribe (any case and width) withdraws the
SMS marketing and survey consents of every customer with the replying phone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.config import Settings, get_settings
from guanxi.core.db import write_transaction
from guanxi.customers import validation
from guanxi.customers.consent import ConsentSource, Purpose, current, is_allowed, record_consent
from guanxi.customers.models import ContactPerson, Customer, CustomerPhone
from guanxi.security.crypto import cipher

_SALT = "guanxi.unsubscribe"
# Replies that mean "no more texts" (carriers' and the MIIT's usual keywords).
STOP_WORDS = frozenset({"td", "t", "n", "退订", "取消", "unsubscribe", "stop"})
# Purposes one reply withdraws: texts are marketing or survey invitations.
SMS_PURPOSES = (Purpose.marketing_sms, Purpose.survey)
SMS_SUFFIX = {"zh_CN": "回TD退订", "en": "Reply TD to unsubscribe"}
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


@dataclass(frozen=True)
class _Links:
    serializer: URLSafeSerializer
    base_url: str


_links: _Links | None = None


def configure(settings: Settings) -> None:
    """Take the secret key and base URL from the app's (or worker's) settings."""
    global _links
    _links = _Links(URLSafeSerializer(settings.secret_key, salt=_SALT), settings.base_url)


def _configured() -> _Links:
    if _links is None:
        configure(get_settings())
    assert _links is not None  # noqa: S101 - set just above
    return _links


def make_token(customer_id: int, purpose: Purpose) -> str:
    """The signed token naming the customer and the purpose."""
    return str(_configured().serializer.dumps([int(customer_id), Purpose(purpose).value]))


def read_token(token: str) -> tuple[int, Purpose] | None:
    """(customer id, purpose) of a genuine token; None for a tampered or foreign one."""
    try:
        value = _configured().serializer.loads(token)
        customer_id, purpose = int(value[0]), Purpose(value[1])
    except (BadSignature, ValueError, TypeError, IndexError, KeyError):
        return None
    return customer_id, purpose


def unsubscribe_url(customer_id: int, purpose: Purpose) -> str:
    """The absolute URL of the public unsubscribe page for the customer and purpose."""
    links = _configured()
    return f"{links.base_url.rstrip('/')}/u/{make_token(customer_id, purpose)}"


@dataclass(frozen=True)
class UnsubscribeView:
    """What the public page shows: the purpose, and whether contact is still allowed."""

    customer_id: int
    purpose: Purpose
    allowed: bool


def view(session: Session, token: str) -> UnsubscribeView | None:
    """The page's state for a token (None: tampered, or the customer is gone)."""
    read = read_token(token)
    if read is None or session.get(Customer, read[0]) is None:
        return None
    customer_id, purpose = read
    return UnsubscribeView(customer_id, purpose, is_allowed(session, customer_id, purpose))


def unsubscribe(session: Session, token: str) -> UnsubscribeView | None:
    """Withdraw the consent a token names (source ``email_link``); idempotent. None for a
    tampered token or a customer that no longer exists."""
    read = read_token(token)
    if read is None:
        return None
    customer_id, purpose = read
    with write_transaction(session):
        if session.get(Customer, customer_id) is None:
            return None
        _withdraw(session, customer_id, purpose, ConsentSource.email_link, "unsubscribe link")
    return UnsubscribeView(customer_id, purpose, False)


def _withdraw(
    session: Session, customer_id: int, purpose: Purpose, source: ConsentSource, actor: str
) -> bool:
    """Withdraw one consent unless it already is (a repeated click or reply adds no ledger
    event); True when it was withdrawn now."""
    if current(session, customer_id, purpose) is False:
        return False
    record_consent(
        session,
        customer_id=customer_id,
        purpose=purpose,
        granted=False,
        source=source.value,
        actor=Actor.system(actor),
    )
    return True


def is_stop_reply(text: str) -> bool:
    """Whether an SMS reply asks to unsubscribe (TD, ＴＤ, td., 退订, Unsubscribe ...)."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return _EDGES.sub("", folded) in STOP_WORDS


def customers_with_phone(session: Session, e164: str) -> list[int]:
    """Customers having the number (their own or a contact person's), by blind index."""
    bidx = cipher().blind_index("phone", e164)
    ids = set(
        session.scalars(select(CustomerPhone.customer_id).where(CustomerPhone.phone_bidx == bidx))
    )
    ids.update(
        session.scalars(select(ContactPerson.customer_id).where(ContactPerson.phone_bidx == bidx))
    )
    return sorted(ids)


def stop_by_reply(session: Session, *, phone: str, text: str) -> list[int]:
    """Apply one SMS reply in the caller's transaction: a stop word withdraws the SMS
    marketing and survey consents of every customer with the phone (audited, source
    ``sms_reply``). Returns the customers whose consent was withdrawn."""
    if not is_stop_reply(text):
        return []
    try:
        e164 = validation.normalize_phone(phone)
    except validation.InvalidValue:
        return []
    withdrawn = []
    for customer_id in customers_with_phone(session, e164):
        # A list, not any(generator): every purpose is withdrawn, not just the first.
        changed = [
            _withdraw(session, customer_id, purpose, ConsentSource.sms_reply, "sms_reply")
            for purpose in SMS_PURPOSES
        ]
        if any(changed):
            withdrawn.append(customer_id)
    return withdrawn


def sms_suffix(text: str, language: str) -> str:
    """A marketing text with the opt-out line, unless the template already has one."""
    if "退订" in text or re.search(r"\bTD\b", text, re.IGNORECASE):
        return text
    suffix = SMS_SUFFIX.get(language, SMS_SUFFIX["zh_CN"])
    return f"{text}{suffix}" if language != "en" else f"{text} {suffix}"


EMAIL_FOOTER = {
    "zh_CN": "如不想再收到此类邮件，请点击退订：{url}",
    "en": "To stop receiving these e-mails, unsubscribe here: {url}",
}


def email_footer(url: str, language: str) -> str:
    """The unsubscribe line at the end of a marketing mail."""
    return EMAIL_FOOTER.get(language, EMAIL_FOOTER["zh_CN"]).format(url=url)
