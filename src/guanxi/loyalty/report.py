"""Reads over the whole programme: the members list and the tier report (members per
tier, upgrades and downgrades per month, points issued / redeemed / expired per month, the
outstanding points liability, coupons outstanding)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.models import Customer
from guanxi.loyalty.clock import LOCAL_TZ, local_month_sql
from guanxi.loyalty.enums import CouponStatus
from guanxi.loyalty.ledger import dialect_of, timed_sql
from guanxi.loyalty.models import Coupon, LoyaltyMember, LoyaltySetting
from guanxi.loyalty.policy import load_policy
from guanxi.loyalty.schemas import MemberPage, MemberRow, MonthRow, ReportRead, TierCount
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission

SORTS: dict[str, tuple[Any, ...]] = {
    "balance": (LoyaltyMember.balance.desc(), LoyaltyMember.customer_id),
    "lifetime": (LoyaltyMember.lifetime_points.desc(), LoyaltyMember.customer_id),
    "joined": (LoyaltyMember.joined_at.desc(), LoyaltyMember.customer_id),
    "customer": (LoyaltyMember.customer_id,),
}


def list_members(
    session: Session,
    *,
    viewer: User,
    tier: str | None = None,
    q: str | None = None,
    sort: str = "balance",
    offset: int = 0,
    limit: int = 50,
) -> MemberPage:
    """Members filtered by tier and a search (customer number or name), sorted; users
    without ``customer.read_all`` see only the customers they own."""
    columns = (
        LoyaltyMember.customer_id,
        LoyaltyMember.tier,
        LoyaltyMember.balance,
        LoyaltyMember.lifetime_points,
        LoyaltyMember.joined_at,
        LoyaltyMember.downgrade_due_at,
    )
    stmt = select(*columns)
    needs_customer = bool(q) or not has_permission(viewer, Permission.customer_read_all)
    if needs_customer:
        # Only a search or a sales person's own book needs the customer table up front;
        # otherwise the page is sorted on the members alone and then named.
        stmt = stmt.join(Customer, Customer.id == LoyaltyMember.customer_id)
    if not has_permission(viewer, Permission.customer_read_all):
        stmt = stmt.where(Customer.owner_id == viewer.id)
    if tier:
        stmt = stmt.where(LoyaltyMember.tier == tier)
    if q:
        term = q.strip()
        conditions = [Customer.name.contains(term, autoescape=True)]
        if term.isdigit() and len(term) < 18:
            conditions.append(LoyaltyMember.customer_id == int(term))
        stmt = stmt.where(or_(*conditions))
    found = session.execute(
        stmt.order_by(*SORTS.get(sort, SORTS["balance"])).offset(offset).limit(limit + 1)
    ).all()
    names = dict(
        session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_([r[0] for r in found[:limit]]))
        ).all()
    )
    rows = [(r[0], names.get(r[0], ""), *r[1:]) for r in found]
    items = [
        MemberRow(
            customer_id=r[0],
            customer_name=r[1],
            tier=r[2],
            balance=r[3],
            lifetime_points=r[4],
            joined_at=r[5],
            downgrade_due_at=r[6],
        )
        for r in rows[:limit]
    ]
    return MemberPage(items=items, next=offset + limit if len(rows) > limit else None)


def _months(now: datetime, count: int, tz: str) -> list[str]:
    """The last ``count`` local months, oldest first (``YYYY-MM``)."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(tz))
    index = local.year * 12 + local.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


_OUTSTANDING_EXPIRY_SQL = """
SELECT COALESCE(SUM(due.credits - COALESCE(spent.debits, 0)), 0)
FROM (
    SELECT customer_id, SUM(points) AS credits FROM loyalty_points
    WHERE points > 0 AND expires_at <= :until GROUP BY customer_id
) AS due
LEFT JOIN (
    SELECT customer_id, -SUM(points) AS debits FROM loyalty_points
    WHERE points < 0 GROUP BY customer_id
) AS spent ON spent.customer_id = due.customer_id
WHERE due.credits > COALESCE(spent.debits, 0)
"""


# The ledger-wide figures (months, expiring soon) the daily job leaves for the report.
CACHE_KEY = "report_figures"
CACHE_FRESH = timedelta(hours=36)


def ledger_figures(
    session: Session, *, now: datetime, months: int = 12, tz: str = LOCAL_TZ
) -> tuple[list[MonthRow], int]:
    """The last ``months`` months' movement and points, and the points expiring within
    30 days: aggregates over the whole ledger (seconds at ten million rows)."""
    labels = _months(now, months, tz)
    rows = {
        m: MonthRow(month=m, upgrades=0, downgrades=0, issued=0, redeemed=0, expired=0)
        for m in labels
    }
    dialect = dialect_of(session)
    since = now - timedelta(days=31 * months + 31)
    month_of = local_month_sql(dialect, "at", tz)
    for month, reason, n in session.execute(
        timed_sql(
            f"SELECT {month_of} AS m, reason, COUNT(*) FROM loyalty_tier_change "  # noqa: S608 - fixed expression
            "WHERE at >= :since AND reason IN ('upgrade', 'downgrade') GROUP BY m, reason",
            "since",
        ),
        {"since": since},
    ):
        if month in rows:
            setattr(rows[month], "upgrades" if reason == "upgrade" else "downgrades", int(n))
    month_of = local_month_sql(dialect, "occurred_at", tz)
    for month, kind, points in session.execute(
        timed_sql(
            f"SELECT {month_of} AS m, kind, SUM(points) FROM loyalty_points "  # noqa: S608 - fixed expression
            "WHERE occurred_at >= :since GROUP BY m, kind",
            "since",
        ),
        {"since": since},
    ):
        row = rows.get(month)
        if row is None:
            continue
        if kind in ("earn", "bonus", "adjust"):
            # Net of manual corrections in both directions.
            row.issued += int(points)
        elif kind == "redeem":
            row.redeemed += -int(points)
        elif kind == "expire":
            row.expired += -int(points)
    expiring = session.execute(
        timed_sql(_OUTSTANDING_EXPIRY_SQL, "until"), {"until": now + timedelta(days=30)}
    ).scalar()
    return [rows[m] for m in labels], int(expiring or 0)


def store_figures(session: Session, *, now: datetime, tz: str = LOCAL_TZ) -> None:
    """Compute the ledger-wide figures and keep them for the report (the daily job):
    derived data, replaced whole, not audited."""
    months, expiring = ledger_figures(session, now=now, tz=tz)
    value = json.dumps(
        {
            "as_of": now.isoformat(),
            "expiring_30d": expiring,
            "months": [m.model_dump() for m in months],
        }
    )
    with write_transaction(session):
        row = session.get(LoyaltySetting, CACHE_KEY)
        if row is None:
            session.add(LoyaltySetting(key=CACHE_KEY, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now


def _cached(session: Session, now: datetime) -> tuple[list[MonthRow], int, datetime] | None:
    row = session.get(LoyaltySetting, CACHE_KEY)
    if row is None:
        return None
    data = json.loads(row.value)
    as_of = datetime.fromisoformat(data["as_of"])
    if not timedelta(0) <= now - as_of <= CACHE_FRESH:
        return None
    return [MonthRow(**m) for m in data["months"]], int(data["expiring_30d"]), as_of


def tier_report(
    session: Session,
    *,
    lang: str = "zh_CN",
    months: int = 12,
    now: datetime | None = None,
    tz: str = LOCAL_TZ,
) -> ReportRead:
    """Members per tier and the points liability (live); the months' movement and points
    and the points expiring soon from the daily job's figures when fresh (they aggregate
    the whole ledger), computed here otherwise."""
    now = now or clock.now()
    policy = load_policy(session)
    counts = {
        tier: (int(n), int(balance or 0))
        for tier, n, balance in session.execute(
            select(LoyaltyMember.tier, func.count(), func.sum(LoyaltyMember.balance)).group_by(
                LoyaltyMember.tier
            )
        )
    }
    tiers = [
        TierCount(
            tier=t.code,
            name=t.name(lang),
            members=counts.get(t.code, (0, 0))[0],
            balance=counts.get(t.code, (0, 0))[1],
        )
        for t in policy.tiers
    ]
    for code, (n, balance) in counts.items():
        if policy.tier(code) is None:
            tiers.append(TierCount(tier=code, name=code, members=n, balance=balance))
    cached = _cached(session, now) if months == 12 else None
    if cached is not None:
        month_rows, expiring, as_of = cached
    else:
        month_rows, expiring = ledger_figures(session, now=now, months=months, tz=tz)
        as_of = now
    outstanding = session.scalar(
        select(func.count()).where(
            Coupon.status == CouponStatus.issued.value, Coupon.valid_until > now
        )
    )
    return ReportRead(
        tiers=tiers,
        months=month_rows,
        members=sum(t.members for t in tiers),
        liability_points=sum(t.balance for t in tiers),
        expiring_30d=expiring,
        coupons_outstanding=int(outstanding or 0),
        figures_as_of=as_of,
    )
