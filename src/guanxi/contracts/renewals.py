"""The daily work on contracts: active contracts past their end expire (or are renewed:
by a renewal that was activated, or automatically when the contract renews itself), and
owners are reminded N days before an end (once per contract, end date and threshold).

Safe to run any number of times, on any number of workers: the day's writers are
serialised, the reminder's unique row is its claim, and a contract leaves ``active`` once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.contracts.enums import ContractStatus
from guanxi.contracts.models import Contract, ContractReminder
from guanxi.contracts.service import (
    append_amendment,
    insert_contract,
    load_policy,
    mark_renewed,
    overlap_errors,
    renewal_period,
    renewal_values,
    renewals_of,
)
from guanxi.core import clock, i18n
from guanxi.core.db import serialize_writers, write_transaction
from guanxi.core.i18n import N_
from guanxi.customers.models import Customer
from guanxi.notify.service import notify

# Advisory lock id of the daily contract job on PostgreSQL (SQLite: BEGIN IMMEDIATE).
_JOB_LOCK = 0x6374_6A62
JOB_ACTOR = Actor.system("contracts")
# The furthest ahead a reminder looks (the largest threshold allowed).
_HORIZON = timedelta(days=365)

SUBJECT = N_("Contract {number} with {customer} ends on {end}")
BODY = N_(
    "{title}: {days} days left. Draft the renewal, or let the contract expire on its end date."
)
AUTO_RENEW_REASON = N_("Renewed automatically at the end of {number}")


@dataclass
class DailyOutcome:
    """What one run did."""

    expired: int = 0
    renewed: int = 0
    auto_renewed: int = 0
    reminded: int = 0

    def figures(self) -> dict[str, int]:
        """The counts for the worker's log."""
        return {
            "expired": self.expired,
            "renewed": self.renewed,
            "auto_renewed": self.auto_renewed,
            "reminded": self.reminded,
        }


def run_daily(session: Session, *, today: date, language: str) -> DailyOutcome:
    """End what is past its end, then remind owners of what ends soon (``today``: the
    site's local day; ``language``: of the reminders and of automatic amendments)."""
    outcome = DailyOutcome()
    with write_transaction(session):
        serialize_writers(session, _JOB_LOCK)
        _end_due(session, today, language, outcome)
        _remind(session, today, language, outcome)
    return outcome


def _renewal(session: Session, contract: Contract) -> Contract | None:
    return session.scalar(select(Contract).where(Contract.renewal_of_id == contract.id))


def _end_due(session: Session, today: date, language: str, outcome: DailyOutcome) -> None:
    due = session.scalars(
        select(Contract)
        .where(Contract.status == ContractStatus.active.value, Contract.end_date < today)
        .order_by(Contract.id)
    ).all()
    for contract in due:
        renewal = _renewal(session, contract)
        if renewal is not None and renewal.activated_at is not None:
            mark_renewed(session, contract, JOB_ACTOR)
            outcome.renewed += 1
        elif renewal is None and contract.auto_renew and _auto_renew(session, contract, language):
            outcome.auto_renewed += 1
        else:
            contract.status = ContractStatus.expired.value
            contract.ended_on = contract.end_date
            contract.updated_at = clock.now()
            contract.version += 1
            record(
                session,
                actor=JOB_ACTOR,
                action="contract.expired",
                target_type="contract",
                target_id=contract.id,
                before={"status": ContractStatus.active.value},
                after={"status": contract.status, "ended_on": contract.end_date.isoformat()},
            )
            outcome.expired += 1


def _auto_renew(session: Session, contract: Contract, language: str) -> bool:
    """Put the next period of a self-renewing contract in force on the same terms; False
    (it expires instead) when another active contract of the customer covers that time."""
    start, end = renewal_period(contract)
    if overlap_errors(session, contract, start, end):
        return False
    values = renewal_values(contract, start, end)
    values["status"] = ContractStatus.active.value
    values["activated_at"] = clock.now()
    renewal = insert_contract(session, values, JOB_ACTOR, "contract.renewed_automatically")
    reason = i18n.gettext(language, AUTO_RENEW_REASON, number=contract.number)
    append_amendment(
        session,
        renewal,
        {"renewal_of_id": [None, contract.id], "status": [None, ContractStatus.active.value]},
        reason,
        JOB_ACTOR,
    )
    mark_renewed(session, contract, JOB_ACTOR)
    return True


def _remind(session: Session, today: date, lang: str, outcome: DailyOutcome) -> None:
    default_days = load_policy(session).reminder_days
    rows = session.execute(
        select(Contract, Customer.name)
        .join(Customer, Customer.id == Contract.customer_id)
        .where(
            Contract.status == ContractStatus.active.value,
            Contract.owner_id.is_not(None),
            Contract.end_date >= today,
            Contract.end_date <= today + _HORIZON,
        )
        .order_by(Contract.id)
    ).all()
    due = [
        (contract, name, contract.reminder_days or default_days)
        for contract, name in rows
        if (contract.end_date - today).days <= (contract.reminder_days or default_days)
    ]
    ids = [contract.id for contract, _name, _days in due]
    # Two lookups for the whole day, not two per contract: drafted renewals stop the
    # reminders, and what was already sent is not sent again.
    renewed = set(renewals_of(session, ids))
    sent = {
        (cid, end, days)
        for lo in range(0, len(ids), 500)
        for cid, end, days in session.execute(
            select(
                ContractReminder.contract_id,
                ContractReminder.end_date,
                ContractReminder.days_before,
            ).where(ContractReminder.contract_id.in_(ids[lo : lo + 500]))
        )
    }
    for contract, customer_name, days in due:
        left = (contract.end_date - today).days
        if contract.id in renewed or (contract.id, contract.end_date, days) in sent:
            continue
        session.add(
            ContractReminder(
                contract_id=contract.id,
                end_date=contract.end_date,
                days_before=days,
                owner_id=contract.owner_id,
                sent_at=clock.now(),
            )
        )
        notify(
            session,
            user_ids=[contract.owner_id] if contract.owner_id is not None else [],
            key=f"contract_renewal:{contract.id}:{contract.end_date.isoformat()}:{days}",
            kind="contract_renewal",
            subject=i18n.gettext(
                lang,
                SUBJECT,
                number=contract.number,
                customer=customer_name,
                end=contract.end_date.isoformat(),
            ),
            body=i18n.gettext(lang, BODY, title=contract.title, days=left),
            link=f"/contracts/{contract.id}",
        )
        outcome.reminded += 1
