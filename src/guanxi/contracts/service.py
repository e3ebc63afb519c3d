"""Contracts: create and edit drafts, activate, amend (every change after activation is an
amendment row with its reason), terminate, renew; who may see and write them; the policy;
and the question the customer pool asks (whose contracts have ended).

Visibility follows the customer: whoever can see the customer
(:func:`guanxi.customers.service.can_see`) sees their contracts. Writing needs
``sales.pipeline``, and ``sales.manage`` for another person's contract.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

import guanxi.contracts.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import Actor, record, save_setting
from guanxi.config import get_settings
from guanxi.contracts.enums import CONTRACT_KINDS, ENDED, ContractStatus
from guanxi.contracts.models import Contract, ContractAmendment, ContractSetting
from guanxi.contracts.schemas import (
    AmendmentRead,
    ContractCreate,
    ContractPolicy,
    ContractRead,
    ContractRenew,
    ContractTerminate,
    ContractTerms,
    ContractUpdate,
)
from guanxi.core import clock
from guanxi.core.db import serialize_writers, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.customers.models import Customer
from guanxi.customers.service import can_see, visible_clause
from guanxi.security.models import User
from guanxi.security.permissions import Permission, role_has
from guanxi.security.service import actor_of, has_permission

# Advisory lock id of contract numbering on PostgreSQL (SQLite: BEGIN IMMEDIATE).
_NUMBER_LOCK = 0x6374_6E6F
_POLICY_KEY = "policy"

# Terms whose change on an active contract is an amendment (and are audited).
TERM_FIELDS = (
    "title",
    "discount_bp",
    "commit_shipments",
    "commit_revenue_fen",
    "start_date",
    "end_date",
    "auto_renew",
    "reminder_days",
    "notes",
)
_AUDITED = ("number", "customer_id", "owner_id", "status", *TERM_FIELDS, "renewal_of_id")


def _error(loc: str, code: str, **params: Any) -> FieldError:
    return FieldError((loc,), code, ERROR_MESSAGES[code].format(**params), params)


def site_today() -> date:
    """Today in the site's timezone (contract periods are local days)."""
    return clock.now().astimezone(ZoneInfo(get_settings().timezone)).date()


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _plain(value: Any) -> Any:
    """A column value as JSON keeps it (dates as ISO text)."""
    return value.isoformat() if isinstance(value, date) else value


def _audited(contract: Contract) -> dict[str, Any]:
    return {name: _plain(getattr(contract, name)) for name in _AUDITED}


# --------------------------------------------------------------------------- policy


def load_policy(session: Session) -> ContractPolicy:
    """The contract policy (defaults until someone saves one)."""
    raw = session.scalar(select(ContractSetting.value).where(ContractSetting.key == _POLICY_KEY))
    return ContractPolicy.model_validate_json(raw) if raw else ContractPolicy()


def save_policy(session: Session, *, policy_in: ContractPolicy, actor: User) -> ContractPolicy:
    """Replace the contract policy (audited whole, before and after)."""
    with write_transaction(session):
        save_setting(
            session,
            model=ContractSetting,
            key=_POLICY_KEY,
            text=policy_in.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="contract.policy_changed",
            audit_whole=ContractPolicy,
        )
    return policy_in


# --------------------------------------------------------------------------- reading


def visible(stmt: Select[Any], viewer: User) -> Select[Any]:
    """``stmt`` over contracts narrowed to those whose customer ``viewer`` can see: the
    rule of :func:`guanxi.customers.service.can_see`, as SQL for lists."""
    seen = visible_clause(viewer)
    if seen is None:
        return stmt
    return stmt.where(Contract.customer_id.in_(select(Customer.id).where(seen)))


def get_contract(session: Session, *, contract_id: int, viewer: User) -> Contract:
    """One contract; NotFound when missing or its customer is not visible to ``viewer``."""
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise NotFound("contract_unknown", contract_id=contract_id)
    customer = session.get(Customer, contract.customer_id)
    if customer is None or not can_see(viewer, customer):
        raise NotFound("contract_unknown", contract_id=contract_id)
    return contract


def list_contracts(
    session: Session,
    *,
    viewer: User,
    status: ContractStatus | None = None,
    customer_id: int | None = None,
    owner_id: int | None = None,
    ending_before: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Contract], int]:
    """Contracts ``viewer`` can see, newest first, and how many match in all."""
    stmt = visible(select(Contract), viewer)
    if status is not None:
        stmt = stmt.where(Contract.status == status.value)
    if customer_id is not None:
        stmt = stmt.where(Contract.customer_id == customer_id)
    if owner_id is not None:
        stmt = stmt.where(Contract.owner_id == owner_id)
    if ending_before is not None:
        stmt = stmt.where(Contract.end_date < ending_before)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Contract.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def renewals_of(session: Session, contract_ids: Sequence[int]) -> dict[int, int]:
    """{contract id: id of the contract that renews it} for those that have one."""
    if not contract_ids:
        return {}
    rows = session.execute(
        select(Contract.renewal_of_id, Contract.id).where(
            Contract.renewal_of_id.in_(list(contract_ids))
        )
    )
    return {old: new for old, new in rows if old is not None}


def to_reads(session: Session, contracts: Sequence[Contract]) -> list[ContractRead]:
    """Contracts as the API shows them (customer and owner names in two lookups)."""
    customer_ids = {c.customer_id for c in contracts}
    owner_ids = {c.owner_id for c in contracts if c.owner_id is not None}
    names: dict[int, str] = {
        cid: name
        for cid, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids))
        )
    }
    owners: dict[int, str] = {
        uid: name
        for uid, name in session.execute(
            select(User.id, User.display_name).where(User.id.in_(owner_ids))
        )
    }
    renewed_by = renewals_of(session, [c.id for c in contracts])
    return [
        ContractRead.model_validate(
            {
                **{k: getattr(c, k) for k in ContractRead.model_fields if hasattr(c, k)},
                "customer_name": names.get(c.customer_id, ""),
                "owner_name": owners.get(c.owner_id) if c.owner_id is not None else None,
                "renewed_by_id": renewed_by.get(c.id),
            }
        )
        for c in contracts
    ]


def amendments(session: Session, *, contract_id: int) -> list[AmendmentRead]:
    """A contract's change history, oldest first."""
    rows = session.execute(
        select(ContractAmendment, User.display_name)
        .outerjoin(User, User.id == ContractAmendment.actor_id)
        .where(ContractAmendment.contract_id == contract_id)
        .order_by(ContractAmendment.id)
    ).all()
    return [
        AmendmentRead(
            id=a.id,
            contract_id=a.contract_id,
            changes=json.loads(a.changes),
            reason=a.reason,
            actor_id=a.actor_id,
            actor_name=name or a.actor_label,
            created_at=a.created_at,
        )
        for a, name in rows
    ]


def pipeline_users(session: Session) -> list[tuple[int, str]]:
    """(id, name) of the active users who may own contracts (they work the pipeline)."""
    rows = session.execute(
        select(User.id, User.display_name, User.role)
        .where(User.is_active.is_(True))
        .order_by(User.display_name, User.id)
    )
    return [(uid, name) for uid, name, role in rows if role_has(role, Permission.sales_pipeline)]


def ended_contract_customers(session: Session, *, ended_before: date) -> list[tuple[int, int]]:
    """(customer id, contract id) of the customers whose latest contract (by the day it
    ended, else its end date) ended before ``ended_before`` and who have no active
    contract now; by customer id.

    Drafts never bound anyone and do not count. A renewed contract is never the latest:
    its renewal ends later.
    """
    ended = func.coalesce(Contract.ended_on, Contract.end_date)
    ranked = (
        select(
            Contract.customer_id,
            Contract.id,
            Contract.status,
            ended.label("ended"),
            func.row_number()
            .over(partition_by=Contract.customer_id, order_by=(ended.desc(), Contract.id.desc()))
            .label("pos"),
        )
        .where(Contract.status != ContractStatus.draft.value)
        .subquery()
    )
    active = select(Contract.customer_id).where(Contract.status == ContractStatus.active.value)
    stmt = (
        select(ranked.c.customer_id, ranked.c.id)
        .where(
            ranked.c.pos == 1,
            ranked.c.status.in_([s.value for s in ENDED]),
            ranked.c.ended < ended_before,
            ranked.c.customer_id.not_in(active),
        )
        .order_by(ranked.c.customer_id)
    )
    return [(int(cid), int(kid)) for cid, kid in session.execute(stmt)]


def move_to_customer(session: Session, from_id: int, to_id: int) -> list[int]:
    """Move a merged customer's contracts to the survivor (part of the merge's
    transaction); returns their ids."""
    ids = list(session.scalars(select(Contract.id).where(Contract.customer_id == from_id)))
    if ids:
        session.execute(
            update(Contract).where(Contract.customer_id == from_id).values(customer_id=to_id)
        )
    return ids


def return_to_customer(session: Session, ids: list[int], survivor_id: int, to_id: int) -> None:
    """Undo :func:`move_to_customer` for the given contracts still on the survivor."""
    for lo in range(0, len(ids), 500):
        session.execute(
            update(Contract)
            .where(Contract.id.in_(ids[lo : lo + 500]), Contract.customer_id == survivor_id)
            .values(customer_id=to_id)
        )


# --------------------------------------------------------------------------- writing


def can_write(actor: User, contract: Contract) -> bool:
    """Whether ``actor`` may change the contract: their own, or any with ``sales.manage``
    (another person's contract, or one nobody owns). The routes require ``sales.pipeline``."""
    return contract.owner_id == actor.id or has_permission(actor, Permission.sales_manage)


def get_for_write(session: Session, contract_id: int, actor: User) -> Contract:
    """The contract, for an actor who may see and change it (NotFound, PermissionDenied)."""
    contract = get_contract(session, contract_id=contract_id, viewer=actor)
    if not can_write(actor, contract):
        raise PermissionDenied("contract_not_yours")
    return contract


def _owner_errors(session: Session, owner_id: int, actor: User) -> list[FieldError]:
    """The owner must work the pipeline; naming someone else needs ``sales.manage``."""
    if owner_id != actor.id and not has_permission(actor, Permission.sales_manage):
        raise PermissionDenied("contract_owner_other")
    owner = session.get(User, owner_id)
    if owner is None or not has_permission(owner, Permission.sales_pipeline):
        return [_error("owner_id", "contract_owner_sales")]
    return []


def _term_errors(terms: ContractTerms) -> list[FieldError]:
    if terms.end_date <= terms.start_date:
        return [_error("end_date", "contract_dates")]
    return []


def overlap_errors(
    session: Session, contract: Contract, start: date, end: date
) -> list[FieldError]:
    """Another active contract of the customer whose period meets [start, end] (the
    contract this one renews aside: an early renewal may overlap it)."""
    stmt = select(Contract.number).where(
        Contract.customer_id == contract.customer_id,
        Contract.status == ContractStatus.active.value,
        Contract.id != contract.id,
        Contract.start_date <= end,
        Contract.end_date >= start,
    )
    if contract.renewal_of_id is not None:
        stmt = stmt.where(Contract.id != contract.renewal_of_id)
    clash = session.scalar(stmt.order_by(Contract.id).limit(1))
    if clash is None:
        return []
    return [_error("start_date", "contract_overlap", number=clash)]


def _next_number(session: Session) -> str:
    """CT-YYYYMM-NNNN: the next number of this local month (writers serialised)."""
    serialize_writers(session, _NUMBER_LOCK)
    prefix = f"CT-{site_today():%Y%m}-"
    last = session.scalar(
        select(func.max(Contract.number)).where(Contract.number.like(f"{prefix}%"))
    )
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:04d}"


def append_amendment(
    session: Session,
    contract: Contract,
    changes: dict[str, list[Any]],
    reason: str,
    actor: User | Actor,
) -> None:
    """Append an amendment row (the contract page's history)."""
    session.add(
        ContractAmendment(
            contract_id=contract.id,
            changes=json.dumps(changes, ensure_ascii=False, sort_keys=True),
            reason=reason,
            actor_id=actor.id,
            actor_label=actor.username if isinstance(actor, User) else actor.name,
            created_at=clock.now(),
        )
    )


def insert_contract(
    session: Session, values: dict[str, Any], actor: User | Actor, action: str
) -> Contract:
    """Number, add and audit a new contract (inside the caller's transaction)."""
    now = clock.now()
    contract = Contract(
        number=_next_number(session),
        created_by=actor.id,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(contract)
    session.flush()
    record(
        session,
        actor=actor_of(actor) if isinstance(actor, User) else actor,
        action=action,
        target_type="contract",
        target_id=contract.id,
        after=_audited(contract),
    )
    return contract


def create_contract(session: Session, *, contract_in: ContractCreate, actor: User) -> Contract:
    """A new draft contract for a visible enterprise or public-body customer."""
    with write_transaction(session):
        customer = session.get(Customer, contract_in.customer_id)
        errors: list[FieldError] = []
        if customer is None or not can_see(actor, customer):
            errors.append(_error("customer_id", "customer_unknown"))
        elif customer.kind not in CONTRACT_KINDS:
            errors.append(_error("customer_id", "contract_customer_kind"))
        owner_id = contract_in.owner_id or actor.id
        errors += _owner_errors(session, owner_id, actor)
        errors += _term_errors(contract_in)
        if errors:
            raise ValidationFailed(errors)
        values = contract_in.model_dump(include=set(TERM_FIELDS))
        contract = insert_contract(
            session,
            {
                **values,
                "customer_id": contract_in.customer_id,
                "owner_id": owner_id,
                "status": ContractStatus.draft.value,
            },
            actor,
            "contract.created",
        )
    return contract


def update_contract(
    session: Session, *, contract_id: int, contract_in: ContractUpdate, actor: User
) -> Contract:
    """Change a draft freely, or amend an active contract (a reason is required; the
    change is appended to its history). Refused when someone changed it since
    ``contract_in.version`` was read; nothing changes when nothing differs."""
    with write_transaction(session):
        contract = get_for_write(session, contract_id, actor)
        if contract.version != contract_in.version:
            raise Conflict("version_conflict", field="version")
        if contract.status not in (ContractStatus.draft, ContractStatus.active):
            raise Conflict("contract_not_active", field="status")
        is_active = contract.status == ContractStatus.active
        errors = _term_errors(contract_in)
        after = contract_in.model_dump(include=set(TERM_FIELDS))
        if contract_in.owner_id is not None and contract_in.owner_id != contract.owner_id:
            errors += _owner_errors(session, contract_in.owner_id, actor)
            after["owner_id"] = contract_in.owner_id
        changes = {
            name: [_plain(getattr(contract, name)), _plain(value)]
            for name, value in after.items()
            if getattr(contract, name) != value
        }
        if is_active and changes and not contract_in.reason:
            errors.append(_error("reason", "contract_reason_required"))
        if is_active and ("start_date" in changes or "end_date" in changes) and not errors:
            errors += overlap_errors(
                session, contract, contract_in.start_date, contract_in.end_date
            )
        if errors:
            raise ValidationFailed(errors)
        if not changes:
            return contract
        for name, value in after.items():
            setattr(contract, name, value)
        contract.updated_at = clock.now()
        contract.version += 1
        if is_active:
            append_amendment(session, contract, changes, contract_in.reason or "", actor)
        record(
            session,
            actor=actor_of(actor),
            action="contract.amended" if is_active else "contract.changed",
            target_type="contract",
            target_id=contract.id,
            before={k: v[0] for k, v in changes.items()},
            after={k: v[1] for k, v in changes.items()},
        )
    return contract


def activate_contract(session: Session, *, contract_id: int, version: int, actor: User) -> Contract:
    """Put a signed draft in force. The customer may have one active contract per period;
    activating a renewal of an expired contract marks that one renewed."""
    with write_transaction(session):
        contract = get_for_write(session, contract_id, actor)
        if contract.version != version:
            raise Conflict("version_conflict", field="version")
        if contract.status != ContractStatus.draft:
            raise Conflict("contract_not_draft", field="status")
        errors = overlap_errors(session, contract, contract.start_date, contract.end_date)
        if errors:
            raise ValidationFailed(errors)
        contract.status = ContractStatus.active.value
        contract.activated_at = contract.updated_at = clock.now()
        contract.version += 1
        record(
            session,
            actor=actor_of(actor),
            action="contract.activated",
            target_type="contract",
            target_id=contract.id,
            before={"status": ContractStatus.draft.value},
            after={"status": ContractStatus.active.value},
        )
        previous = session.get(Contract, contract.renewal_of_id) if contract.renewal_of_id else None
        if previous is not None and previous.status == ContractStatus.expired:
            mark_renewed(session, previous, actor_of(actor))
    return contract


def mark_renewed(session: Session, contract: Contract, actor: Actor) -> None:
    """An ended contract whose renewal is in force is ``renewed`` (inside a transaction)."""
    before = contract.status
    contract.status = ContractStatus.renewed.value
    contract.ended_on = contract.ended_on or contract.end_date
    contract.updated_at = clock.now()
    contract.version += 1
    record(
        session,
        actor=actor,
        action="contract.renewed",
        target_type="contract",
        target_id=contract.id,
        before={"status": before},
        after={"status": contract.status, "ended_on": _plain(contract.ended_on)},
    )


def terminate_contract(
    session: Session, *, contract_id: int, terminate_in: ContractTerminate, actor: User
) -> Contract:
    """End an active contract early, on a day within its period (default today); the
    termination and its reason go into the amendment history."""
    with write_transaction(session):
        contract = get_for_write(session, contract_id, actor)
        if contract.version != terminate_in.version:
            raise Conflict("version_conflict", field="version")
        if contract.status != ContractStatus.active:
            raise Conflict("contract_not_active", field="status")
        ended_on = terminate_in.ended_on or site_today()
        if not contract.start_date <= ended_on <= contract.end_date:
            raise ValidationFailed([_error("ended_on", "contract_terminate_date")])
        changes: dict[str, list[Any]] = {
            "status": [ContractStatus.active.value, ContractStatus.terminated.value],
            "ended_on": [None, ended_on.isoformat()],
        }
        contract.status = ContractStatus.terminated.value
        contract.ended_on = ended_on
        contract.updated_at = clock.now()
        contract.version += 1
        append_amendment(session, contract, changes, terminate_in.reason, actor)
        record(
            session,
            actor=actor_of(actor),
            action="contract.terminated",
            target_type="contract",
            target_id=contract.id,
            before={"status": ContractStatus.active.value, "ended_on": None},
            after={"status": contract.status, "ended_on": ended_on.isoformat()},
        )
    return contract


def renewal_period(contract: Contract, start: date | None = None) -> tuple[date, date]:
    """The period of a renewal: from the day after the end (or ``start``), as long as the
    contract ran — whole months when it ran whole months, else the same number of days."""
    new_start = start or contract.end_date + timedelta(days=1)
    for months in range(1, 121):
        if add_months(contract.start_date, months) - timedelta(days=1) == contract.end_date:
            return new_start, add_months(new_start, months) - timedelta(days=1)
    return new_start, new_start + (contract.end_date - contract.start_date)


def renewal_values(contract: Contract, start: date, end: date) -> dict[str, Any]:
    """The columns of a renewal: the same customer, owner and terms for a new period."""
    return {
        **{name: getattr(contract, name) for name in TERM_FIELDS if name != "notes"},
        "customer_id": contract.customer_id,
        "owner_id": contract.owner_id,
        "start_date": start,
        "end_date": end,
        "renewal_of_id": contract.id,
    }


def renew_contract(
    session: Session, *, contract_id: int, renew_in: ContractRenew, actor: User
) -> Contract:
    """Draft the renewal of an active or expired contract (one renewal per contract):
    the same terms for the next period; activate it once signed."""
    with write_transaction(session):
        contract = get_for_write(session, contract_id, actor)
        if contract.status not in (ContractStatus.active, ContractStatus.expired):
            raise Conflict("contract_renew_state", field="status")
        existing = session.scalar(
            select(Contract.number).where(Contract.renewal_of_id == contract.id)
        )
        if existing is not None:
            raise Conflict("contract_renewed_already", field="status", number=existing)
        start, end = renewal_period(contract, renew_in.start_date)
        end = renew_in.end_date or end
        if end <= start:
            raise ValidationFailed([_error("end_date", "contract_dates")])
        values = renewal_values(contract, start, end)
        values["owner_id"] = contract.owner_id or actor.id
        values["status"] = ContractStatus.draft.value
        renewal = insert_contract(session, values, actor, "contract.renewal_drafted")
    return renewal


def contracts_of_customer(session: Session, *, customer_id: int, viewer: User) -> list[Contract]:
    """A visible customer's contracts, the latest period first (the 360's panel)."""
    customer = session.get(Customer, customer_id)
    if customer is None or not can_see(viewer, customer):
        raise NotFound("customer not found", customer_id=customer_id)
    stmt = (
        select(Contract)
        .where(Contract.customer_id == customer_id)
        .order_by(Contract.end_date.desc(), Contract.id.desc())
    )
    return list(session.scalars(stmt))
