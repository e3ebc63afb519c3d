"""Demo contracts (合同与协议): agreements with the demo's busiest enterprise and public-body
customers, so the contract pages, the 360 panel and the volume report show real figures.

Each contract is owned by the customer's account manager and goes through the services
(audited): most are in force with a monthly commitment set near what the customer really
ships (some well above it, so the report has customers below commitment), a few end within
the reminder window (the daily job reminds their owners), one is amended, one terminated,
one expired, one renewed by its successor, one still a draft; the signed PDF of one is
attached. Idempotent: a second call adds nothing.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.contracts import documents, renewals, service
from guanxi.contracts.enums import CONTRACT_KINDS
from guanxi.contracts.models import Contract
from guanxi.contracts.schemas import (
    ContractCreate,
    ContractRenew,
    ContractTerminate,
    ContractUpdate,
)
from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.shipments.service import revenue_by_customer

# How many customers get a contract (the busiest enterprise customers with an owner).
CONTRACTS = 24
TITLES = ("年度快递服务协议", "月结寄件框架协议", "电商仓配合作协议", "冷链运输服务合同")
# A one-page PDF: the "signed copy" attached to the first contract.
SIGNED_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass(frozen=True)
class ContractsDemo:
    """What the demo seeding did."""

    contracts: int
    active: int
    below: int
    reminded: int


def _terms(
    customer_id: int,
    owner_id: int,
    start: date,
    end: date,
    monthly: tuple[int, int],
    rnd: Any,
    factor: float | None = None,
) -> ContractCreate:
    """A contract whose commitment is 60 % to 120 % of what the customer ships a month
    (``factor``: this share)."""
    shipments, revenue = monthly
    factor = factor or rnd.choice((0.6, 0.7, 0.8, 0.9, 1.0, 1.2))
    return ContractCreate(
        customer_id=customer_id,
        owner_id=owner_id,
        title=rnd.choice(TITLES),
        discount_bp=rnd.choice((500, 800, 1000, 1200, 1500)),
        commit_shipments=max(1, round(shipments * factor)),
        commit_revenue_fen=max(100_00, int(round(revenue * factor, -2))),
        start_date=start,
        end_date=end,
        auto_renew=rnd.random() < 0.3,
    )


def seed_contracts(
    session: Session, *, seed: int = 42, timezone: str = "Asia/Shanghai"
) -> ContractsDemo:
    """Contracts for the busiest owned enterprise customers (once)."""
    if session.scalar(select(func.count(Contract.id))):
        return ContractsDemo(0, 0, 0, 0)
    rnd = random.Random(seed)  # noqa: S311 - demo data, not security
    now = clock.now()
    today = now.astimezone(ZoneInfo(timezone)).date()
    owned = (
        select(Customer.id)
        .where(Customer.kind.in_(CONTRACT_KINDS), Customer.owner_id.is_not(None))
        .scalar_subquery()
    )
    # What each customer shipped in the last 90 days, as a month.
    customers: Any = select(Customer.id).where(Customer.id.in_(owned))
    busy = revenue_by_customer(
        session, customers=customers, since=now - timedelta(days=90), until=now
    )
    owners: dict[int, int] = {
        cid: uid
        for cid, uid in session.execute(
            select(Customer.id, Customer.owner_id).where(Customer.id.in_(list(busy)))
        )
        if uid is not None
    }
    # Contracts are owned by people who work the pipeline (the demo's account managers).
    users = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_(set(owners.values()))))
        if has_permission(u, Permission.sales_pipeline)
    }
    chosen = sorted(
        ((cid, figures) for cid, figures in busy.items() if owners.get(cid) in users),
        key=lambda kv: (-kv[1][0], kv[0]),
    )[:CONTRACTS]
    session.commit()
    if len(chosen) < 7:
        return ContractsDemo(0, 0, 0, 0)

    made: list[Contract] = []
    for n, (customer_id, (count, fee)) in enumerate(chosen):
        owner = users[owners[customer_id]]
        monthly = (max(1, count // 3), max(100_00, fee // 3))
        if n < 3:
            # Ending within the reminder window: their owners are reminded today.
            end = today + timedelta(days=(7, 18, 27)[n])
        elif n == 5:
            # Ran out at the end of last month: the daily job expires it.
            end = today.replace(day=1) - timedelta(days=1)
        else:
            end = today + timedelta(days=rnd.randint(60, 330))
        start = service.add_months(end + timedelta(days=1), -12)
        # The seventh commits to well above what it ships: below commitment every month.
        factor = 1.6 if n == 6 else None
        contract = service.create_contract(
            session,
            contract_in=_terms(customer_id, owner.id, start, end, monthly, rnd, factor),
            actor=owner,
        )
        if n == len(chosen) - 1:
            made.append(contract)  # the last stays a draft (being negotiated)
            continue
        made.append(
            service.activate_contract(
                session, contract_id=contract.id, version=contract.version, actor=owner
            )
        )

    first = made[0]
    # The first customer ships more now: the discount rises and a commitment is added.
    owner = users[first.owner_id or 0]
    data = {name: getattr(first, name) for name in service.TERM_FIELDS}
    data.update(
        discount_bp=first.discount_bp + 300,
        commit_shipments=round((first.commit_shipments or 1) * 1.2) + 1,
        reason="客户旺季发货量上升，双方协商上调折扣并提高月度承诺",
    )
    service.update_contract(
        session,
        contract_id=first.id,
        contract_in=ContractUpdate(version=first.version, **data),
        actor=owner,
    )
    documents.add_document(
        session,
        contract_id=first.id,
        filename=f"{first.number}-签约版.pdf",
        declared_type="application/pdf",
        stream=io.BytesIO(SIGNED_PDF),
        actor=owner,
    )
    # One terminated early by the customer.
    ended = made[3]
    service.terminate_contract(
        session,
        contract_id=ended.id,
        terminate_in=ContractTerminate(
            ended_on=today, reason="客户业务调整，提前终止合作", version=ended.version
        ),
        actor=users[ended.owner_id or 0],
    )
    # One renewed ahead of its end (its successor drafted and signed).
    renewed = made[4]
    renewal = service.renew_contract(
        session,
        contract_id=renewed.id,
        renew_in=ContractRenew(),
        actor=users[renewed.owner_id or 0],
    )
    service.activate_contract(
        session,
        contract_id=renewal.id,
        version=renewal.version,
        actor=users[renewed.owner_id or 0],
    )
    # The daily job: last month's contract expires, owners of those ending soon hear.
    outcome = renewals.run_daily(session, today=today, language="zh_CN")

    from guanxi.contracts.volume import month_report

    manager = session.scalar(select(User).where(User.username == "manager"))
    below = 0
    if manager is not None:
        last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        rows = month_report(
            session, viewer=manager, month=last_month, today=today, timezone=timezone
        )
        below = sum(1 for r in rows if r.below)
    active = session.scalar(select(func.count(Contract.id)).where(Contract.status == "active"))
    total = session.scalar(select(func.count(Contract.id)))
    return ContractsDemo(int(total or 0), int(active or 0), below, outcome.reminded)
