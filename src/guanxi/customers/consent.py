"""The consent ledger (PIPL 明示同意): what each customer agreed to be contacted for.

Two tables: ``customer_consent_event`` is the append-only evidence (who, what, when, on
which notice and legal basis, through which channel) and ``customer_consent`` the current
state per customer and purpose, so audience filters are one indexed join.

The rules of contact:

- ``marketing_sms`` / ``marketing_email``: only with a granted consent (opt-in);
- ``survey``: allowed unless withdrawn (service messages the customer may refuse);
- ``third_party`` / ``cross_border``: sharing with others or abroad, opt-in like marketing.

A withdrawal takes effect at once: the outbox re-checks consent when it sends, so a
message queued before the withdrawal is cancelled rather than sent. Only active customers
are contactable (archived and merged records are not written to).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerConsent, CustomerConsentEvent
from guanxi.customers.schemas import ConsentUpdate
from guanxi.security.models import User
from guanxi.security.service import actor_of


class Purpose(StrEnum):
    """What a customer may be contacted or have their data used for."""

    marketing_sms = "marketing_sms"
    marketing_email = "marketing_email"
    survey = "survey"
    third_party = "third_party"
    cross_border = "cross_border"


class ConsentSource(StrEnum):
    """Where a consent was given or withdrawn."""

    web = "web"
    api = "api"
    agent = "agent"
    import_file = "import"
    sms_reply = "sms_reply"
    email_link = "email_link"
    demo = "demo"


class LegalBasis(StrEnum):
    """The PIPL article 13 basis the processing rests on."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"


# Purposes that need a granted consent; the others are allowed until withdrawn.
OPT_IN = frozenset(
    {Purpose.marketing_sms, Purpose.marketing_email, Purpose.third_party, Purpose.cross_border}
)

LABELS: dict[str, str] = {
    "marketing_sms": N_("Marketing by SMS"),
    "marketing_email": N_("Marketing by e-mail"),
    "survey": N_("Satisfaction surveys"),
    "third_party": N_("Sharing with partners"),
    "cross_border": N_("Transfer abroad"),
    "web": N_("Web form"),
    "api": N_("API"),
    "agent": N_("Agent (phone or counter)"),
    "import": N_("Import"),
    "sms_reply": N_("SMS reply"),
    "email_link": N_("Unsubscribe link"),
    "demo": N_("Demo data"),
    "consent": N_("Based on consent"),
    "contract": N_("Needed for the contract"),
    "legal_obligation": N_("Legal obligation"),
}


# Called after each consent recorded, in the same transaction: (session, customer id,
# purpose, granted, source). Other domains listen without this module importing them
# (notify emits the "consent.withdrawn" webhook); wired in guanxi.domains.
ConsentListener = Callable[[Session, int, "Purpose", bool, str], None]
_listeners: list[ConsentListener] = []


def register_consent_listener(listener: ConsentListener) -> None:
    """Be told of every consent recorded (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _actor(actor: Actor | User) -> Actor:
    return actor if isinstance(actor, Actor) else actor_of(actor)


def _upsert_state(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write the current state rows (insert, or replace the purpose's previous state)."""
    table = table_of(CustomerConsent)
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(table)
        stmt: Any = pg.on_conflict_do_update(
            index_elements=["customer_id", "purpose"],
            set_={
                "granted": pg.excluded.granted,
                "source": pg.excluded.source,
                "updated_at": pg.excluded.updated_at,
            },
        )
    else:
        lite = sqlite.insert(table)
        stmt = lite.on_conflict_do_update(
            index_elements=["customer_id", "purpose"],
            set_={
                "granted": lite.excluded.granted,
                "source": lite.excluded.source,
                "updated_at": lite.excluded.updated_at,
            },
        )
    session.execute(stmt, rows)


def record_consent(
    session: Session,
    *,
    customer_id: int,
    purpose: Purpose,
    granted: bool,
    source: str,
    actor: Actor | User,
    legal_basis: str = "consent",
    notice_version: str | None = None,
) -> None:
    """Record a consent given (``granted``) or withdrawn, in the caller's transaction and
    audited on the customer. The withdrawal takes effect at once (the outbox re-checks
    consent when it sends). A purpose, source or legal basis outside the lists is a
    validation error naming the field; an unknown customer is a 404."""
    errors: list[FieldError] = []
    for loc, value, enum in (
        ("purpose", purpose, Purpose),
        ("source", source, ConsentSource),
        ("legal_basis", legal_basis, LegalBasis),
    ):
        if value not in {e.value for e in enum}:
            errors.append(
                FieldError(
                    (loc,),
                    "enum",
                    "Must be one of: {expected}",
                    {"expected": ", ".join(e.value for e in enum)},
                )
            )
    if notice_version is not None and len(notice_version) > 30:
        errors.append(
            FieldError(
                ("notice_version",),
                "string_too_long",
                "Too long (at most {max_length} characters)",
                {"max_length": 30},
            )
        )
    if errors:
        raise ValidationFailed(errors)
    if session.get(Customer, customer_id) is None:
        raise NotFound("customer not found", customer_id=customer_id)
    who = _actor(actor)
    purpose = Purpose(purpose)
    before = session.scalar(
        select(CustomerConsent.granted).where(
            CustomerConsent.customer_id == customer_id, CustomerConsent.purpose == purpose.value
        )
    )
    now = clock.now()
    session.execute(
        insert(CustomerConsentEvent).values(
            customer_id=customer_id,
            purpose=purpose.value,
            granted=granted,
            legal_basis=legal_basis,
            notice_version=notice_version,
            source=source,
            actor_id=who.id,
            actor_name=who.name[:100],
            at=now,
        )
    )
    _upsert_state(
        session,
        [
            {
                "customer_id": customer_id,
                "purpose": purpose.value,
                "granted": granted,
                "source": source,
                "updated_at": now,
            }
        ],
    )
    for listener in _listeners:
        listener(session, customer_id, purpose, granted, source)
    record(
        session,
        actor=who,
        action="customer.consent_granted" if granted else "customer.consent_withdrawn",
        target_type="customer",
        target_id=customer_id,
        before={"purpose": purpose.value, "granted": before},
        after={"purpose": purpose.value, "granted": granted, "source": source},
    )


def allowed_customers(purpose: Purpose, *, active_checked: bool = False) -> Select[int]:
    """SQL select of the ids of active customers that may be contacted for ``purpose``:
    opt-in purposes (marketing, third party, cross-border) need a granted consent; surveys
    are allowed unless withdrawn. Use it in IN / EXISTS / JOIN for bulk filters.

    ``active_checked``: the caller's statement already keeps only active customers (an
    audience count), so an opt-in purpose reads the consent table alone instead of joining
    the customer table a second time."""
    purpose = Purpose(purpose)
    active = Customer.status == CustomerStatus.active.value
    if purpose in OPT_IN:
        granted = select(CustomerConsent.customer_id).where(
            CustomerConsent.purpose == purpose.value,
            CustomerConsent.granted.is_(True),
        )
        if active_checked:
            return granted
        return granted.join(Customer, Customer.id == CustomerConsent.customer_id).where(active)
    withdrawn = exists().where(
        and_(
            CustomerConsent.customer_id == Customer.id,
            CustomerConsent.purpose == purpose.value,
            CustomerConsent.granted.is_(False),
        )
    )
    return select(Customer.id).where(active, ~withdrawn)


def current(session: Session, customer_id: int, purpose: Purpose) -> bool | None:
    """The customer's recorded answer for ``purpose``: granted, withdrawn, or None (never
    asked)."""
    return session.scalar(
        select(CustomerConsent.granted).where(
            CustomerConsent.customer_id == customer_id,
            CustomerConsent.purpose == Purpose(purpose).value,
        )
    )


def is_allowed(session: Session, customer_id: int, purpose: Purpose) -> bool:
    """Whether one customer may be contacted for ``purpose`` (same rules as
    :func:`allowed_customers`)."""
    purpose = Purpose(purpose)
    status = session.scalar(select(Customer.status).where(Customer.id == customer_id))
    if status != CustomerStatus.active.value:
        return False
    granted = session.scalar(
        select(CustomerConsent.granted).where(
            CustomerConsent.customer_id == customer_id, CustomerConsent.purpose == purpose.value
        )
    )
    if purpose in OPT_IN:
        return granted is True
    return granted is not False


def grant_many(
    session: Session,
    customer_ids: Sequence[int],
    purposes: Sequence[Purpose],
    *,
    source: str,
    at: datetime,
) -> int:
    """Record granted consents of many customers at once (demo data, imports), in the
    caller's transaction: one event and one state row per customer and purpose, and one
    audit entry for the batch. Returns how many consents were recorded."""
    ids = sorted(set(customer_ids))
    wanted = [Purpose(p) for p in dict.fromkeys(purposes)]
    if not ids or not wanted:
        return 0
    if source not in {s.value for s in ConsentSource}:
        raise ValidationFailed(
            [
                FieldError(
                    ("source",),
                    "enum",
                    "Must be one of: {expected}",
                    {"expected": ", ".join(s.value for s in ConsentSource)},
                )
            ]
        )
    who = Actor.system(source)
    events = [
        {
            "customer_id": cid,
            "purpose": p.value,
            "granted": True,
            "legal_basis": LegalBasis.consent.value,
            "notice_version": None,
            "source": source,
            "actor_id": None,
            "actor_name": who.name,
            "at": at,
        }
        for cid in ids
        for p in wanted
    ]
    states = [
        {
            "customer_id": e["customer_id"],
            "purpose": e["purpose"],
            "granted": True,
            "source": source,
            "updated_at": at,
        }
        for e in events
    ]
    step = 5000
    for i in range(0, len(events), step):
        session.execute(insert(CustomerConsentEvent), events[i : i + step])
        _upsert_state(session, states[i : i + step])
    record(
        session,
        actor=who,
        action="consent.granted_in_bulk",
        target_type="customer_consent",
        target_id=source,
        after={"customers": len(ids), "purposes": [p.value for p in wanted]},
    )
    return len(events)


# --------------------------------------------------------------------------- merging

# A state row in stored form for a merge record: [granted, source, updated_at ISO].
_StateRow = list[Any]


def _state_rows(session: Session, customer_id: int) -> dict[str, _StateRow]:
    return {
        purpose: [granted, source, at.isoformat()]
        for purpose, granted, source, at in session.execute(
            select(
                CustomerConsent.purpose,
                CustomerConsent.granted,
                CustomerConsent.source,
                CustomerConsent.updated_at,
            ).where(CustomerConsent.customer_id == customer_id)
        )
    }


def _put_state(session: Session, customer_id: int, purpose: str, row: _StateRow | None) -> None:
    if row is None:
        session.execute(
            CustomerConsent.__table__.delete().where(  # type: ignore[attr-defined]
                CustomerConsent.customer_id == customer_id, CustomerConsent.purpose == purpose
            )
        )
        return
    _upsert_state(
        session,
        [
            {
                "customer_id": customer_id,
                "purpose": purpose,
                "granted": row[0],
                "source": row[1],
                "updated_at": datetime.fromisoformat(row[2]),
            }
        ],
    )


def carry_on_merge(
    session: Session, *, survivor_id: int, duplicate_id: int
) -> tuple[list[int], list[list[Any]]]:
    """Carry the duplicate's consents to the survivor of a merge (caller's transaction).

    The duplicate's consent events (the evidence) move to the survivor; for each purpose
    the survivor's state becomes the stricter of the two: a withdrawal on either record
    wins over a grant, and a purpose only the duplicate answered is taken as it is.
    Returns what an undo needs: the moved event ids and, per purpose changed,
    ``[purpose, survivor's row before or None, row after]``."""
    events = list(
        session.scalars(
            select(CustomerConsentEvent.id)
            .where(CustomerConsentEvent.customer_id == duplicate_id)
            .order_by(CustomerConsentEvent.id)
        )
    )
    if events:
        session.execute(
            CustomerConsentEvent.__table__.update()  # type: ignore[attr-defined]
            .where(CustomerConsentEvent.id.in_(events))
            .values(customer_id=survivor_id)
        )
    mine = _state_rows(session, survivor_id)
    changed: list[list[Any]] = []
    for purpose, theirs in sorted(_state_rows(session, duplicate_id).items()):
        before = mine.get(purpose)
        # Withdrawal wins: the survivor keeps a withdrawal, and takes the duplicate's.
        if before is None or (before[0] is True and theirs[0] is False):
            _put_state(session, survivor_id, purpose, theirs)
            changed.append([purpose, before, theirs])
    return events, changed


def undo_carry(
    session: Session,
    *,
    events: Sequence[int],
    changed: Sequence[Sequence[Any]],
    survivor_id: int,
    duplicate_id: int,
) -> None:
    """Undo :func:`carry_on_merge`: the events go back to the duplicate and the
    survivor's states the merge changed are put back, unless a consent was recorded for
    that purpose since (the newer answer stands)."""
    if events:
        session.execute(
            CustomerConsentEvent.__table__.update()  # type: ignore[attr-defined]
            .where(
                CustomerConsentEvent.id.in_(list(events)),
                CustomerConsentEvent.customer_id == survivor_id,
            )
            .values(customer_id=duplicate_id)
        )
    now = _state_rows(session, survivor_id)
    for purpose, before, after in changed:
        if now.get(purpose) == list(after):
            _put_state(session, survivor_id, purpose, list(before) if before else None)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ConsentState:
    """A customer's standing for one purpose: granted, withdrawn, or never asked (None),
    and whether that allows contact."""

    purpose: Purpose
    granted: bool | None
    allowed: bool
    source: str | None
    updated_at: datetime | None


def consents_of(session: Session, customer_id: int) -> list[ConsentState]:
    """The customer's standing for every purpose, in the order of :class:`Purpose`."""
    rows = {
        r.purpose: r
        for r in session.scalars(
            select(CustomerConsent).where(CustomerConsent.customer_id == customer_id)
        )
    }
    out = []
    for purpose in Purpose:
        row = rows.get(purpose.value)
        granted = row.granted if row is not None else None
        allowed = granted is True if purpose in OPT_IN else granted is not False
        out.append(
            ConsentState(
                purpose=purpose,
                granted=granted,
                allowed=allowed,
                source=row.source if row is not None else None,
                updated_at=row.updated_at if row is not None else None,
            )
        )
    return out


def consent_history(
    session: Session, customer_id: int, *, limit: int = 100
) -> list[CustomerConsentEvent]:
    """The customer's consent events, newest first (the evidence)."""
    return list(
        session.scalars(
            select(CustomerConsentEvent)
            .where(CustomerConsentEvent.customer_id == customer_id)
            .order_by(CustomerConsentEvent.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- edges


def _visible(session: Session, customer_id: int, viewer: User) -> None:
    from guanxi.customers.service import get_customer

    get_customer(session, customer_id=customer_id, viewer=viewer)


def read_consents(
    session: Session, *, customer_id: int, viewer: User
) -> tuple[list[ConsentState], list[CustomerConsentEvent]]:
    """The customer's standing per purpose and the consent history (404 when the viewer
    may not see the customer)."""
    _visible(session, customer_id, viewer)
    return consents_of(session, customer_id), consent_history(session, customer_id)


def set_consent(
    session: Session, *, customer_id: int, consent_in: ConsentUpdate, actor: User
) -> None:
    """Record one consent given or withdrawn for a customer the user may see (the API and
    the 360 view's consent panel); one transaction, audited."""
    with write_transaction(session):
        _visible(session, customer_id, actor)
        record_consent(
            session,
            customer_id=customer_id,
            purpose=Purpose(consent_in.purpose),
            granted=consent_in.granted,
            source=consent_in.source,
            actor=actor,
            legal_basis=consent_in.legal_basis,
            notice_version=consent_in.notice_version,
        )
