"""Data-subject requests (个人权利请求, PIPL art. 44-47): registering, working and answering
them within the deadline, every step audited.

A request is registered for a customer (an agent on the phone, the privacy officer) with
how the requester's identity was verified, and is due on the 15th working day after it
was received on China's working calendar (GB/T 35273-2020 §8.7; the tickets' business
calendar, public holidays and 调休 days included; the number is the request policy's).
The privacy officer takes it on, then completes it — an access or copy request with the
export (:mod:`guanxi.privacy.export`), a correction through the customers service, a
deletion by anonymisation (:mod:`guanxi.privacy.anonymise`), an objection by withdrawing
the customer's marketing and sharing consents — or rejects it with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, record, save_setting
from guanxi.config import Settings, get_settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, NotFound
from guanxi.core.i18n import N_
from guanxi.customers.consent import OPT_IN, Purpose, current, record_consent
from guanxi.customers.models import Customer
from guanxi.customers.service import get_customer, update_customer
from guanxi.privacy.enums import OPEN, RequestChannel, RequestKind, RequestStatus, Verification
from guanxi.privacy.models import PrivacyRequest, PrivacySetting
from guanxi.privacy.schemas import (
    RequestComplete,
    RequestCorrection,
    RequestCreate,
    RequestPolicy,
    RequestRead,
    RequestReject,
)
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.sla import calendar_for

_POLICY_KEY = "requests"

# Refusals of the request workflow (English source texts, translated where shown).
REQUEST_CLOSED = N_("This request is already closed")
ALREADY_STARTED = N_("This request is already in progress")
NOT_CORRECTION = N_("Only a correction request changes the customer record")
NOT_EXPORTABLE = N_("Only access and copy requests are answered with an export")


# --------------------------------------------------------------------------- policy


def load_policy(session: Session) -> RequestPolicy:
    """The request policy (defaults until someone saves one)."""
    raw = session.scalar(select(PrivacySetting.value).where(PrivacySetting.key == _POLICY_KEY))
    return RequestPolicy.model_validate_json(raw) if raw else RequestPolicy()


def save_policy(session: Session, *, policy_in: RequestPolicy, actor: User) -> RequestPolicy:
    """Replace the request policy (audited whole, before and after). Requests already
    registered keep their due date."""
    with write_transaction(session):
        save_setting(
            session,
            model=PrivacySetting,
            key=_POLICY_KEY,
            text=policy_in.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="privacy.policy_changed",
            audit_whole=RequestPolicy,
        )
    return policy_in


# --------------------------------------------------------------------------- calendar


def working_calendar(settings: Settings | None = None) -> BusinessCalendar:
    """The working calendar requests are timed on: the service desk's (tickets' SLA)."""
    return calendar_for((settings or get_settings()).timezone)


def local_day(moment: datetime, calendar: BusinessCalendar) -> date:
    """The calendar's local date of an aware moment."""
    return moment.astimezone(ZoneInfo(calendar.tz.key)).date()


def add_working_days(day: date, days: int, calendar: BusinessCalendar) -> date:
    """The ``days``-th working day after ``day`` (``day`` itself not counted)."""
    left = days
    while left > 0:
        day += timedelta(days=1)
        if calendar.is_workday(day):
            left -= 1
    return day


def working_days_left(today: date, due_on: date, calendar: BusinessCalendar) -> int:
    """Working days from ``today`` to ``due_on`` (the due day counted, today not):
    0 on the due day, negative once it has passed (working days late)."""
    if due_on >= today:
        return sum(
            calendar.is_workday(today + timedelta(days=i))
            for i in range(1, (due_on - today).days + 1)
        )
    return -sum(
        calendar.is_workday(due_on + timedelta(days=i)) for i in range(1, (today - due_on).days + 1)
    )


# --------------------------------------------------------------------------- reading


def _today(calendar: BusinessCalendar) -> date:
    return local_day(clock.now(), calendar)


def to_reads(
    session: Session, rows: Sequence[PrivacyRequest], calendar: BusinessCalendar | None = None
) -> list[RequestRead]:
    """Read shapes of requests (customer names in one lookup)."""
    cal = calendar or working_calendar()
    today = _today(cal)
    ids = sorted({r.customer_id for r in rows})
    names = {
        cid: name
        for cid, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(ids))
        )
    }
    out = []
    for r in rows:
        left = working_days_left(today, r.due_on, cal)
        out.append(
            RequestRead(
                id=r.id,
                customer_id=r.customer_id,
                customer_name=names.get(r.customer_id, ""),
                kind=RequestKind(r.kind),
                status=RequestStatus(r.status),
                channel=RequestChannel(r.channel),
                verification=Verification(r.verification),
                details=r.details,
                received_at=r.received_at,
                due_on=r.due_on,
                overdue=r.status in OPEN and r.due_on < today,
                working_days_left=left,
                resolution=r.resolution,
                corrected_fields=json.loads(r.corrected_fields) if r.corrected_fields else [],
                exported_at=r.exported_at,
                created_by=r.created_by,
                handled_by=r.handled_by,
                closed_at=r.closed_at,
                version=r.version,
            )
        )
    return out


def get_request(session: Session, *, request_id: int) -> PrivacyRequest:
    """One request; 404 when there is none."""
    row = session.get(PrivacyRequest, request_id)
    if row is None:
        raise NotFound("privacy request not found", request_id=request_id)
    return row


def _filtered(
    status: RequestStatus | None,
    kind: RequestKind | None,
    customer_id: int | None,
    overdue: bool | None,
    today: date,
) -> Select[Any]:
    stmt = select(PrivacyRequest)
    if status is not None:
        stmt = stmt.where(PrivacyRequest.status == status.value)
    if kind is not None:
        stmt = stmt.where(PrivacyRequest.kind == kind.value)
    if customer_id is not None:
        stmt = stmt.where(PrivacyRequest.customer_id == customer_id)
    if overdue is True:
        stmt = stmt.where(PrivacyRequest.status.in_(OPEN), PrivacyRequest.due_on < today)
    elif overdue is False:
        stmt = stmt.where((PrivacyRequest.status.not_in(OPEN)) | (PrivacyRequest.due_on >= today))
    return stmt


def list_requests(
    session: Session,
    *,
    status: RequestStatus | None = None,
    kind: RequestKind | None = None,
    customer_id: int | None = None,
    overdue: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[PrivacyRequest], int]:
    """Requests matching the filters: open ones first, the earliest due first."""
    stmt = _filtered(status, kind, customer_id, overdue, _today(working_calendar()))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    closed_last = PrivacyRequest.status.in_(OPEN).desc()
    rows: list[PrivacyRequest] = list(
        session.scalars(
            stmt.order_by(closed_last, PrivacyRequest.due_on, PrivacyRequest.id)
            .limit(limit)
            .offset(offset)
        )
    )
    return rows, total


def history(session: Session, *, request_id: int) -> list[AuditEntry]:
    """The request's audit entries, oldest first (its timeline)."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.target_type == "privacy_request",
                AuditEntry.target_id == str(request_id),
            )
            .order_by(AuditEntry.id)
        )
    )


def requests_of_customer(session: Session, customer_id: int) -> list[PrivacyRequest]:
    """A customer's requests, newest first (the 360 view's link list)."""
    return list(
        session.scalars(
            select(PrivacyRequest)
            .where(PrivacyRequest.customer_id == customer_id)
            .order_by(PrivacyRequest.id.desc())
        )
    )


# --------------------------------------------------------------------------- writing


def create_request(session: Session, *, request_in: RequestCreate, actor: User) -> PrivacyRequest:
    """Register a request for a customer the user may see (404 otherwise); due on the
    policy's working day after today. Audited."""
    cal = working_calendar()
    with write_transaction(session):
        get_customer(session, customer_id=request_in.customer_id, viewer=actor)
        policy = load_policy(session)
        now = clock.now()
        row = PrivacyRequest(
            customer_id=request_in.customer_id,
            kind=request_in.kind.value,
            status=RequestStatus.received.value,
            channel=request_in.channel.value,
            verification=request_in.verification.value,
            details=request_in.details or None,
            received_at=now,
            due_on=add_working_days(local_day(now, cal), policy.due_working_days, cal),
            created_by=actor.id,
            updated_at=now,
            version=1,
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="privacy.request_registered",
            target_type="privacy_request",
            target_id=row.id,
            after={
                "customer_id": row.customer_id,
                "kind": row.kind,
                "channel": row.channel,
                "verification": row.verification,
                "due_on": row.due_on.isoformat(),
            },
        )
    return row


def _open_request(session: Session, request_id: int, version: int) -> PrivacyRequest:
    row = get_request(session, request_id=request_id)
    if row.version != version:
        raise Conflict("version_conflict", field="version")
    if row.status not in OPEN:
        raise Conflict(REQUEST_CLOSED, field="status")
    return row


def _touch(row: PrivacyRequest, actor: User) -> None:
    row.updated_at = clock.now()
    row.handled_by = actor.id
    row.version += 1


def start_request(
    session: Session, *, request_id: int, version: int, actor: User
) -> PrivacyRequest:
    """The privacy officer takes a received request on (received → in progress)."""
    with write_transaction(session):
        row = _open_request(session, request_id, version)
        if row.status != RequestStatus.received.value:
            raise Conflict(ALREADY_STARTED, field="status")
        row.status = RequestStatus.in_progress.value
        _touch(row, actor)
        record(
            session,
            actor=actor_of(actor),
            action="privacy.request_started",
            target_type="privacy_request",
            target_id=row.id,
            before={"status": RequestStatus.received.value},
            after={"status": row.status},
        )
    return row


def reject_request(
    session: Session, *, request_id: int, reject_in: RequestReject, actor: User
) -> PrivacyRequest:
    """Reject an open request with its reason (e.g. identity not verified)."""
    with write_transaction(session):
        row = _open_request(session, request_id, reject_in.version)
        before = row.status
        row.status = RequestStatus.rejected.value
        row.resolution = reject_in.reason
        row.closed_at = clock.now()
        _touch(row, actor)
        record(
            session,
            actor=actor_of(actor),
            action="privacy.request_rejected",
            target_type="privacy_request",
            target_id=row.id,
            before={"status": before},
            after={"status": row.status, "reason": reject_in.reason},
        )
    return row


def correct_customer(
    session: Session, *, request_id: int, correction_in: RequestCorrection, actor: User
) -> PrivacyRequest:
    """Apply a correction request's changes to the customer record through the customers
    service (its validation, its audit entry with masked values), then record the changed
    field names on the request (taken on if it was only received)."""
    row = get_request(session, request_id=request_id)
    if row.kind != RequestKind.correction.value:
        raise Conflict(NOT_CORRECTION, field="kind")
    if row.version != correction_in.version:
        raise Conflict("version_conflict", field="version")
    if row.status not in OPEN:
        raise Conflict(REQUEST_CLOSED, field="status")
    changes = correction_in.changes
    fields = sorted(changes.model_dump(exclude_unset=True).keys() - {"version"})
    update_customer(session, customer_id=row.customer_id, customer_in=changes, actor=actor)
    with write_transaction(session):
        row = _open_request(session, request_id, correction_in.version)
        done = set(json.loads(row.corrected_fields) if row.corrected_fields else [])
        row.corrected_fields = json.dumps(sorted(done | set(fields)))
        before = row.status
        row.status = RequestStatus.in_progress.value
        _touch(row, actor)
        record(
            session,
            actor=actor_of(actor),
            action="privacy.request_corrected",
            target_type="privacy_request",
            target_id=row.id,
            before={"status": before},
            after={"status": row.status, "fields": fields},
        )
    return row


def _withdraw_all(session: Session, customer_id: int, actor: User) -> list[str]:
    """An objection: every contact purpose not already refused is withdrawn."""
    withdrawn = []
    for purpose in Purpose:
        answer = current(session, customer_id, purpose)
        if answer is False or (purpose in OPT_IN and answer is None):
            continue
        record_consent(
            session,
            customer_id=customer_id,
            purpose=purpose,
            granted=False,
            source="agent",
            actor=actor,
        )
        withdrawn.append(purpose.value)
    return withdrawn


def complete_request(
    session: Session,
    *,
    request_id: int,
    complete_in: RequestComplete,
    actor: User,
    settings: Settings | None = None,
) -> PrivacyRequest:
    """Answer an open request. A deletion is carried out first: the customer is
    anonymised (its own transactions; a retry after a failure finds it done). An
    objection withdraws the customer's consents for every contact purpose. Audited."""
    from guanxi.privacy.anonymise import anonymise_customers

    row = _open_request(session, request_id, complete_in.version)
    anonymised = 0
    if row.kind == RequestKind.deletion.value:
        anonymised = anonymise_customers(
            session,
            customer_ids=[row.customer_id],
            actor=actor_of(actor),
            reason=f"privacy request #{row.id}",
            settings=settings,
        )
    with write_transaction(session):
        row = _open_request(session, request_id, complete_in.version)
        withdrawn = (
            _withdraw_all(session, row.customer_id, actor)
            if row.kind == RequestKind.objection.value
            else []
        )
        before = row.status
        row.status = RequestStatus.completed.value
        row.resolution = complete_in.note or None
        row.closed_at = clock.now()
        _touch(row, actor)
        after: dict[str, Any] = {"status": row.status}
        if row.kind == RequestKind.deletion.value:
            after["anonymised"] = anonymised
        if withdrawn:
            after["withdrawn"] = withdrawn
        record(
            session,
            actor=actor_of(actor),
            action="privacy.request_completed",
            target_type="privacy_request",
            target_id=row.id,
            before={"status": before},
            after=after,
        )
    return row


def export_for_request(
    session: Session, *, request_id: int, fmt: str, actor: User
) -> tuple[PrivacyRequest, bytes]:
    """The customer's data for an access or copy request (``fmt``: ``json`` or ``csv``, a
    zip of one CSV per table), decrypted: a reveal, audited on the request and on the
    customer in the same transaction as it is read."""
    from guanxi.privacy.export import export_customer

    with write_transaction(session):
        row = get_request(session, request_id=request_id)
        if row.kind not in (RequestKind.access.value, RequestKind.copy.value):
            raise Conflict(NOT_EXPORTABLE, field="kind")
        if row.status == RequestStatus.rejected.value:
            raise Conflict(REQUEST_CLOSED, field="status")
        result = export_customer(session, row.customer_id)
        data = result.to_json() if fmt == "json" else result.to_csv_zip()
        _mark_exported(session, row, fmt, result.counts(), actor)
    return row, data


def export_customer_data(session: Session, *, customer_id: int, fmt: str, actor: Actor) -> bytes:
    """The customer's data outside a request (``guanxi privacy export``), audited as a
    reveal on the customer; a 404 for an unknown customer."""
    from guanxi.privacy.export import export_customer

    with write_transaction(session):
        if session.get(Customer, customer_id) is None:
            raise NotFound("customer not found", customer_id=customer_id)
        result = export_customer(session, customer_id)
        record(
            session,
            actor=actor,
            action="customer.personal_data_exported",
            target_type="customer",
            target_id=customer_id,
            after={"format": fmt, "rows": result.counts()},
        )
    return result.to_json() if fmt == "json" else result.to_csv_zip()


def _mark_exported(
    session: Session, row: PrivacyRequest, fmt: str, tables: dict[str, int], actor: User
) -> None:
    """Record that the customer's data was exported for a request: a reveal of clear
    personal data, audited on the request and on the customer."""
    row.exported_at = clock.now()
    row.updated_at = row.exported_at
    row.handled_by = actor.id
    # No new version: a download from the request's page must not make its forms stale.
    who = actor_of(actor)
    record(
        session,
        actor=who,
        action="privacy.request_exported",
        target_type="privacy_request",
        target_id=row.id,
        after={"format": fmt, "rows": tables},
    )
    record(
        session,
        actor=who,
        action="customer.personal_data_exported",
        target_type="customer",
        target_id=row.customer_id,
        after={"request_id": row.id, "format": fmt},
    )
