"""Volume against commitment: per contract and month, the customer's actual shipments and
revenue (read through :func:`guanxi.shipments.service.revenue_by_customer`) against the
monthly commitment, prorated to the days the contract was in force that month; the
monthly report over every contract (below commitment first) and its CSV export.

Months and contract periods are local days of the site's timezone; a day counts whole
(the current month counts up to and including today).
"""

from __future__ import annotations

import calendar
import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import guanxi.contracts.messages  # noqa: F401 - registers the error texts
from guanxi.contracts.enums import ContractStatus
from guanxi.contracts.models import Contract
from guanxi.contracts.schemas import VolumeRead
from guanxi.contracts.service import visible
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.customers.models import Customer
from guanxi.imports.export import neutralise
from guanxi.security.models import User
from guanxi.shipments.service import revenue_by_customer

EXPORT_HEADER = [
    "contract",
    "customer_id",
    "customer",
    "owner",
    "status",
    "month",
    "days_in_force",
    "shipments",
    "due_shipments",
    "shipments_pct",
    "revenue_yuan",
    "due_revenue_yuan",
    "revenue_pct",
    "below",
]


def parse_month(text: str, field: str = "month") -> date:
    """``YYYY-MM`` as the month's first day; ValidationFailed naming ``field`` otherwise."""
    try:
        first = datetime.strptime(text.strip(), "%Y-%m").date()  # noqa: DTZ007 - a date
    except ValueError:
        first = None
    if first is None or not 2000 <= first.year <= 2100:
        code = "contract_month"
        raise ValidationFailed([FieldError((field,), code, ERROR_MESSAGES[code])])
    return first


def month_last(first: date) -> date:
    """The last day of ``first``'s month."""
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _in_force(contract: Contract, first: date, last: date) -> tuple[date, date] | None:
    """The days of [first, last] the contract was in force, or None."""
    start = max(first, contract.start_date)
    end = min(last, contract.ended_on or contract.end_date)
    return (start, end) if start <= end else None


def _pct(actual: int, commit: int, days: int, month_days: int) -> float:
    """Actual over the prorated commitment, in per cent with one decimal (half up)."""
    exact = Fraction(actual * month_days * 100, commit * days)
    value = Decimal(exact.numerator) / Decimal(exact.denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _due(commit: int, days: int, month_days: int) -> int:
    """The commitment prorated to ``days`` of a ``month_days`` month, rounded half up."""
    return (2 * commit * days + month_days) // (2 * month_days)


def volumes(
    session: Session,
    contracts: Sequence[Contract],
    *,
    month: date,
    today: date,
    timezone: str,
) -> list[VolumeRead]:
    """The month's volume of each contract in force during it (others are left out), in
    the order given. One grouped shipment query per distinct in-force window."""
    zone = ZoneInfo(timezone)
    first, last = month, min(month_last(month), today)
    month_days = (month_last(month) - first).days + 1
    windows: dict[tuple[date, date], list[Contract]] = defaultdict(list)
    for contract in contracts:
        window = _in_force(contract, first, last)
        if window is not None:
            windows[window].append(contract)
    actual: dict[tuple[int, date, date], tuple[int, int]] = {}
    for (start, end), group in windows.items():
        ids = sorted({c.customer_id for c in group})
        # Typed loosely: SQLAlchemy 2.1 types a one-column select as Select[int], the
        # shipments function names it Select[tuple[int]]; both are the same query.
        customers: Any = select(Customer.id).where(Customer.id.in_(ids))
        found = revenue_by_customer(
            session,
            customers=customers,
            since=_midnight_utc(start, zone),
            until=_midnight_utc(end + timedelta(days=1), zone),
        )
        for cid in ids:
            actual[(cid, start, end)] = found.get(cid, (0, 0))
    names = _names(session, contracts)
    out = []
    for contract in contracts:
        window = _in_force(contract, first, last)
        if window is None:
            continue
        days = (window[1] - window[0]).days + 1
        shipments, revenue = actual[(contract.customer_id, *window)]
        out.append(
            _row(contract, names, month, days, month_days, shipments, revenue),
        )
    return out


def _names(session: Session, contracts: Sequence[Contract]) -> dict[str, dict[int, str]]:
    customers = {c.customer_id for c in contracts}
    owners = {c.owner_id for c in contracts if c.owner_id is not None}
    return {
        "customer": {
            cid: name
            for cid, name in session.execute(
                select(Customer.id, Customer.name).where(Customer.id.in_(customers))
            )
        },
        "owner": {
            uid: name
            for uid, name in session.execute(
                select(User.id, User.display_name).where(User.id.in_(owners))
            )
        },
    }


def _row(
    contract: Contract,
    names: dict[str, dict[int, str]],
    month: date,
    days: int,
    month_days: int,
    shipments: int,
    revenue: int,
) -> VolumeRead:
    cs, cr = contract.commit_shipments, contract.commit_revenue_fen
    ship_pct = _pct(shipments, cs, days, month_days) if cs else None
    rev_pct = _pct(revenue, cr, days, month_days) if cr else None
    return VolumeRead(
        contract_id=contract.id,
        number=contract.number,
        customer_id=contract.customer_id,
        customer_name=names["customer"].get(contract.customer_id, ""),
        owner_name=names["owner"].get(contract.owner_id) if contract.owner_id else None,
        status=ContractStatus(contract.status),
        month=f"{month:%Y-%m}",
        days_in_force=days,
        days_in_month=month_days,
        shipments=shipments,
        revenue_fen=revenue,
        commit_shipments=cs,
        commit_revenue_fen=cr,
        due_shipments=_due(cs, days, month_days) if cs else None,
        due_revenue_fen=_due(cr, days, month_days) if cr else None,
        shipments_pct=ship_pct,
        revenue_pct=rev_pct,
        below=any(p is not None and p < 100 for p in (ship_pct, rev_pct)),
    )


def report_order(row: VolumeRead) -> tuple[int, float, str]:
    """Below commitment first (lowest attainment first), then met, then no commitment."""
    pcts = [p for p in (row.shipments_pct, row.revenue_pct) if p is not None]
    group = 0 if row.below else 1 if pcts else 2
    return (group, min(pcts) if pcts else 0.0, row.number)


def month_report(
    session: Session, *, viewer: User, month: date, today: date, timezone: str
) -> list[VolumeRead]:
    """Every contract ``viewer`` can see that was in force during ``month`` (drafts never
    are), with its volume; below commitment first."""
    first, last = month, min(month_last(month), today)
    if first > last:
        return []
    stmt = visible(select(Contract), viewer).where(
        Contract.status != ContractStatus.draft.value,
        Contract.start_date <= last,
        func.coalesce(Contract.ended_on, Contract.end_date) >= first,
    )
    contracts = list(session.scalars(stmt.order_by(Contract.id)))
    rows = volumes(session, contracts, month=month, today=today, timezone=timezone)
    return sorted(rows, key=report_order)


def contract_months(
    session: Session, contract: Contract, *, today: date, timezone: str, months: int = 6
) -> list[VolumeRead]:
    """The contract's last ``months`` months in force up to today, newest first."""
    if contract.status == ContractStatus.draft:
        return []
    end = min(today, contract.ended_on or contract.end_date)
    out: list[VolumeRead] = []
    month = end.replace(day=1)
    while len(out) < months and month_last(month) >= contract.start_date:
        out += volumes(session, [contract], month=month, today=today, timezone=timezone)
        month = (month - timedelta(days=1)).replace(day=1)
    return out


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{Decimal(fen) / 100:.2f}"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def export_csv(rows: Sequence[VolumeRead]) -> Iterator[str]:
    """The report as CSV (UTF-8 with BOM for spreadsheet programs), money in yuan."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(EXPORT_HEADER)
    for r in rows:
        writer.writerow(
            [
                r.number,
                r.customer_id,
                neutralise(r.customer_name),
                neutralise(r.owner_name or ""),
                r.status.value,
                r.month,
                r.days_in_force,
                r.shipments,
                _cell(r.due_shipments),
                _cell(r.shipments_pct),
                _yuan(r.revenue_fen),
                _yuan(r.due_revenue_fen),
                _cell(r.revenue_pct),
                "yes" if r.below else "no",
            ]
        )
    yield buf.getvalue()
