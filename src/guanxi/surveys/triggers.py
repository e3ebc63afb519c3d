"""When surveys are sent: after a ticket is resolved, after delivery (sampled, at most once
per customer per N days), the periodic relationship survey; and the one reminder.

Each is idempotent by the invitation's key (``ticket:<id>:<reopened>``,
``delivery:<shipment id>``, ``relationship:<period>:<customer id>``) and the bulk ones run
their check-then-insert under one lock (``serialize_writers``: SQLite serialises writers
anyway, PostgreSQL takes an advisory lock), so two workers at once invite each customer
once and never twice within the gap. Sampling hashes the key: a re-run draws the same
sample.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.core.db import serialize_writers, write_transaction
from guanxi.customers.consent import Purpose, allowed_customers, is_allowed
from guanxi.security.models import User
from guanxi.shipments.models import Shipment
from guanxi.surveys import invitations
from guanxi.surveys.enums import InvitationStatus, Trigger
from guanxi.surveys.followups import FOLLOW_UP_TAG
from guanxi.surveys.invitations import InviteRequest
from guanxi.surveys.models import SurveyInvitation, SurveySetting, SurveyTemplate
from guanxi.surveys.policy import SurveyPolicy, load_policy
from guanxi.surveys.service import current_version
from guanxi.tickets.models import Ticket

log = logging.getLogger("guanxi.surveys")

_LOCK = 0x7375_7276  # advisory lock id of the survey invitation jobs (PostgreSQL)
# Shipments delivered in the last day were created at most this long ago (the scan uses
# the creation-time index; the delivery time has none).
DELIVERY_LOOKBACK = timedelta(days=45)
# Customers per transaction of the relationship survey (keeps the write lock short).
RELATIONSHIP_CHUNK = 2000


def sampled(key: str, rate: float) -> bool:
    """Whether ``key`` falls in a sample of ``rate`` (the same answer on every run)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    value = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return value < rate


def _live(session: Session, code: str) -> tuple[SurveyTemplate, int] | None:
    """The active template with ``code`` and its published version, if any."""
    template = session.scalar(select(SurveyTemplate).where(SurveyTemplate.code == code))
    if template is None or not template.active:
        return None
    version = current_version(session, template.id)
    return (template, version.id) if version is not None else None


# --------------------------------------------------------------------------- tickets


def invite_after_ticket(session: Session, ticket: Ticket, mailed: bool) -> str | None:
    """The resolved ticket's survey invitation (its own transaction, once per resolution):
    an SMS when the customer has a mobile number; otherwise the resolution mail carries the
    link (``mailed``), or an e-mail of its own. Returns the link for the resolution mail,
    or None when no survey is sent (turned off, a follow-up ticket, consent withdrawn, or
    already invited)."""
    policy = load_policy(session)
    if not policy.after_ticket:
        return None
    if FOLLOW_UP_TAG in (ticket.tags or "").split(","):
        return None  # no survey about the survey's own follow-up call
    live = _live(session, policy.after_ticket_template)
    if live is None:
        return None
    if ticket.customer_id is not None and not is_allowed(
        session, ticket.customer_id, Purpose.survey
    ):
        return None
    from guanxi.tickets.service import contact_email

    template, version_id = live
    request = InviteRequest(
        key=f"ticket:{ticket.id}:{ticket.reopened}",
        trigger=Trigger.ticket,
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        email=contact_email(ticket),
        email_elsewhere=mailed,
    )
    with write_transaction(session):
        invited = invitations.invite_many(
            session,
            template=template,
            version_id=version_id,
            requests=[request],
            expiry_days=policy.expiry_days,
        )
    return invited[0].url if invited else None


def ticket_survey_open(session: Session, ticket_id: int) -> bool:
    """Whether the ticket's survey can still be answered (its private page offers it)."""
    found = invitations.of_ticket(session, ticket_id)
    return (
        found is not None
        and found.status == InvitationStatus.open.value
        and not found.expired(clock.now())
    )


# --------------------------------------------------------------------------- bulk triggers


def _recently_invited(session: Session, customer_ids: list[int], since: datetime) -> set[int]:
    """Customers among ``customer_ids`` with any survey invitation since ``since``."""
    out: set[int] = set()
    for i in range(0, len(customer_ids), 900):
        out.update(
            session.scalars(
                select(SurveyInvitation.customer_id).where(
                    SurveyInvitation.customer_id.in_(customer_ids[i : i + 900]),
                    SurveyInvitation.created_at >= since,
                )
            )
        )
    return out


@dataclass
class JobResult:
    """What one run of a survey job did."""

    candidates: int = 0
    invited: int = 0
    skipped_recent: int = 0
    details: dict[str, int] = field(default_factory=dict)


def invite_after_delivery(
    session: Session, *, now: datetime | None = None, policy: SurveyPolicy | None = None
) -> JobResult:
    """Invite a sample of the customers whose shipments were delivered in the last day
    (at most one shipment per customer, none for a customer surveyed within
    ``min_days_between`` days, none without the survey consent)."""
    moment = now or clock.now()
    policy = policy or load_policy(session)
    result = JobResult()
    if not policy.after_delivery or policy.delivery_rate <= 0:
        return result
    live = _live(session, policy.delivery_template)
    if live is None:
        return result
    template, version_id = live
    with write_transaction(session):
        serialize_writers(session, _LOCK)
        rows = session.execute(
            select(Shipment.id, Shipment.customer_id)
            .where(
                Shipment.created_at >= moment - DELIVERY_LOOKBACK,
                Shipment.delivered_at >= moment - timedelta(days=1),
                Shipment.delivered_at < moment,
                Shipment.customer_id.in_(allowed_customers(Purpose.survey)),
            )
            .order_by(Shipment.delivered_at, Shipment.id)
        ).all()
        picked: dict[int, int] = {}
        for shipment_id, customer_id in rows:
            if customer_id not in picked and sampled(
                f"delivery:{shipment_id}", policy.delivery_rate
            ):
                picked[customer_id] = shipment_id
        result.candidates = len(picked)
        recent = _recently_invited(
            session, sorted(picked), moment - timedelta(days=policy.min_days_between)
        )
        result.skipped_recent = len(recent)
        requests = [
            InviteRequest(
                key=f"delivery:{sid}", trigger=Trigger.delivery, customer_id=cid, shipment_id=sid
            )
            for cid, sid in picked.items()
            if cid not in recent
        ]
        invited = invitations.invite_many(
            session,
            template=template,
            version_id=version_id,
            requests=requests,
            expiry_days=policy.expiry_days,
            now=moment,
        )
        result.invited = len(invited)
    return result


def period_of(moment: datetime, months: int, timezone: str) -> str:
    """The relationship survey's period containing ``moment`` (local time), named by its
    first month: quarterly periods are 2026-01, 2026-04, 2026-07, 2026-10."""
    local = moment.astimezone(ZoneInfo(timezone))
    index = (local.month - 1) // months * months
    return f"{local.year}-{index + 1:02d}"


def invite_relationship(
    session: Session, *, now: datetime | None = None, policy: SurveyPolicy | None = None
) -> JobResult:
    """Once per period (every ``relationship_months`` months): invite a sample of the
    customers who shipped within ``relationship_active_days`` days, skipping those surveyed
    within ``min_days_between`` days. A period done is remembered (one key lookup on later
    runs); an interrupted one continues where it stopped."""
    moment = now or clock.now()
    policy = policy or load_policy(session)
    result = JobResult()
    if not policy.relationship or policy.relationship_rate <= 0:
        return result
    live = _live(session, policy.relationship_template)
    if live is None:
        return result
    template, version_id = live
    period = period_of(moment, policy.relationship_months, get_settings().timezone)
    done_key = f"relationship:{period}"
    if session.get(SurveySetting, done_key) is not None:
        return result
    active = list(
        session.scalars(
            select(Shipment.customer_id)
            .where(
                Shipment.created_at >= moment - timedelta(days=policy.relationship_active_days),
                Shipment.customer_id.in_(allowed_customers(Purpose.survey)),
            )
            .group_by(Shipment.customer_id)
            .order_by(Shipment.customer_id)
        )
    )
    chosen = [c for c in active if sampled(f"relationship:{period}:{c}", policy.relationship_rate)]
    result.candidates = len(chosen)
    session.commit()
    for i in range(0, len(chosen), RELATIONSHIP_CHUNK):
        chunk = chosen[i : i + RELATIONSHIP_CHUNK]
        with write_transaction(session):
            serialize_writers(session, _LOCK)
            recent = _recently_invited(
                session, chunk, moment - timedelta(days=policy.min_days_between)
            )
            result.skipped_recent += len(recent)
            invited = invitations.invite_many(
                session,
                template=template,
                version_id=version_id,
                requests=[
                    InviteRequest(
                        key=f"relationship:{period}:{cid}",
                        trigger=Trigger.relationship,
                        customer_id=cid,
                    )
                    for cid in chunk
                    if cid not in recent
                ],
                expiry_days=policy.expiry_days,
                now=moment,
            )
            result.invited += len(invited)
    with write_transaction(session):
        if session.get(SurveySetting, done_key) is None:
            session.add(
                SurveySetting(
                    key=done_key,
                    value=f'{{"invited": {result.invited}, "candidates": {result.candidates}}}',
                    updated_at=moment,
                )
            )
    return result


def send_reminders(
    session: Session, *, now: datetime | None = None, policy: SurveyPolicy | None = None
) -> int:
    """The one reminder to those who have not answered after ``reminder_after_days``."""
    moment = now or clock.now()
    policy = policy or load_policy(session)
    total = 0
    while True:
        with write_transaction(session):
            sent = invitations.remind(
                session, now=moment, after_days=policy.reminder_after_days, limit=2000
            )
        total += len(sent)
        if len(sent) < 2000:
            return total


def invite_by_hand(
    session: Session, *, template_code: str, customer_id: int, actor: User
) -> invitations.Invited:
    """An administrator invites one customer (once per template and day); audited. The
    customer must be able to receive it: refused when the survey consent was withdrawn."""
    from guanxi.audit.service import record
    from guanxi.core.errors import Conflict, FieldError, ValidationFailed
    from guanxi.customers.service import get_customer
    from guanxi.security.service import actor_of
    from guanxi.surveys.service import live_version_id, template_by_code

    policy = load_policy(session)
    template = template_by_code(session, template_code)
    version_id = live_version_id(session, template)
    get_customer(session, customer_id=customer_id, viewer=actor)
    if not is_allowed(session, customer_id, Purpose.survey):
        raise ValidationFailed(
            [FieldError(("customer_id",), "survey_consent", "The customer declined surveys")]
        )
    day = clock.now().astimezone(ZoneInfo(get_settings().timezone)).date().isoformat()
    with write_transaction(session):
        invited = invitations.invite_many(
            session,
            template=template,
            version_id=version_id,
            requests=[
                InviteRequest(
                    key=f"manual:{template.code}:{customer_id}:{day}",
                    trigger=Trigger.manual,
                    customer_id=customer_id,
                )
            ],
            expiry_days=policy.expiry_days,
        )
        if not invited:
            raise Conflict("survey_invited_today", field="customer_id")
        record(
            session,
            actor=actor_of(actor),
            action="survey.invited",
            target_type="customer",
            target_id=customer_id,
            after={"template": template.code, "channel": invited[0].channel},
        )
    return invited[0]
