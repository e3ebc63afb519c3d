"""The ledger under random operation sequences (hypothesis), with time moving forward:
earn (a shipment, accrued), bonus, adjust (both signs), redeem, expire.

After every step the cached balance equals the ledger's sum, and equals a simple
reference model: lots of points, each with its expiry, debits taking the oldest lots first,
expiry removing what is left of the lots that are due. Every expiry row the ledger writes
has exactly the amount the model expires (the formula ``max(0, credits expiring by t -
every debit so far)`` is first in, first out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict
from guanxi.loyalty import accrual
from guanxi.loyalty.clock import expiry_of
from guanxi.loyalty.ledger import expire_range, verify_balances
from guanxi.loyalty.models import LoyaltyMember, PointsEntry
from guanxi.loyalty.policy import LoyaltyPolicy, save_policy
from guanxi.loyalty.schemas import AdjustIn, BonusIn, RedeemIn
from guanxi.loyalty.service import adjust_points, enrol, grant_bonus, redeem_points

from .conftest import add_shipment

EXPIRY_MONTHS = 2
START = datetime(2026, 1, 3, 1, 0, tzinfo=UTC)
_keys = itertools.count()


@dataclass
class Model:
    """Lots of points in expiry order; debits and expiry take the oldest first."""

    lots: list[list[Any]] = field(default_factory=list)  # [expires_at, remaining]
    expired: list[int] = field(default_factory=list)

    @property
    def balance(self) -> int:
        return sum(lot[1] for lot in self.lots)

    def credit(self, points: int, at: datetime) -> None:
        self.lots.append([expiry_of(at, EXPIRY_MONTHS), points])

    def expire(self, at: datetime) -> None:
        due = sum(lot[1] for lot in self.lots if lot[0] <= at)
        self.lots = [lot for lot in self.lots if lot[0] > at]
        if due:
            self.expired.append(due)

    def debit(self, points: int) -> None:
        for lot in self.lots:
            take = min(lot[1], points)
            lot[1] -= take
            points -= take
        self.lots = [lot for lot in self.lots if lot[1] > 0]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["earn", "bonus", "adjust+", "adjust-", "redeem", "expire"]),
        st.integers(min_value=1, max_value=300),
        st.integers(min_value=0, max_value=50),  # days that pass before the step
    ),
    min_size=1,
    max_size=20,
)


@pytest.fixture
def setup(db: Session, make_user: Any) -> Any:
    manager = make_user("manager")
    save_policy(db, policy=LoyaltyPolicy(expiry_months=EXPIRY_MONTHS), actor=manager)
    return manager


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_ledger_equals_balance_and_fifo_model(
    db: Session, make_customer: Any, setup: Any, ops: list[tuple[str, int, int]]
) -> None:
    manager = setup
    cid = make_customer().id
    with clock.frozen(START):
        enrol(db, customer_id=cid, actor=manager)
    model = Model()
    now = START
    for kind, points, days in ops:
        now += timedelta(days=days, minutes=1)
        with clock.frozen(now):
            if kind == "earn":
                # One yuan a point on a standard shipment.
                add_shipment(db, cid, fee_fen=points * 100, at=now)
                db.commit()
                accrual.accrue(db, now=now)
                model.credit(points, now)
            elif kind == "bonus":
                grant_bonus(
                    db,
                    customer_id=cid,
                    bonus_in=BonusIn(points=points, reason="活动奖励", key=f"b{next(_keys)}"),
                    actor=manager,
                )
                model.credit(points, now)
            elif kind == "adjust+":
                adjust_points(
                    db,
                    customer_id=cid,
                    adjust_in=AdjustIn(points=points, reason="补录"),
                    actor=manager,
                )
                model.credit(points, now)
            elif kind == "expire":
                with write_transaction(db):
                    expire_range(db, lo=cid, hi=cid, now=now)
                model.expire(now)
            else:
                # A debit first expires what is due (expired points are not spendable).
                model.expire(now)
                enough = model.balance >= points
                try:
                    if kind == "redeem":
                        redeem_points(
                            db,
                            customer_id=cid,
                            redeem_in=RedeemIn(points=points, reference="YT0001"),
                            actor=manager,
                        )
                    else:
                        adjust_points(
                            db,
                            customer_id=cid,
                            adjust_in=AdjustIn(points=-points, reason="冲正"),
                            actor=manager,
                        )
                except Conflict as exc:
                    refused = exc.message
                    assert not enough
                    assert refused == "points_insufficient"
                    # Refused whole: the expiry of this step rolled back with it. The daily
                    # job writes it (the model has already applied it).
                    with write_transaction(db):
                        expire_range(db, lo=cid, hi=cid, now=now)
                else:
                    assert enough
                    model.debit(points)
        member = db.get(LoyaltyMember, cid, populate_existing=True)
        assert member is not None
        ledger_sum = db.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.customer_id == cid
            )
        )
        assert member.balance == ledger_sum == model.balance
    # Bring both up to date and compare every expiry amount.
    end = now + timedelta(days=1)
    with write_transaction(db):
        expire_range(db, lo=cid, hi=cid, now=end)
    model.expire(end)
    written = [
        -p
        for (p,) in db.execute(
            select(PointsEntry.points)
            .where(PointsEntry.customer_id == cid, PointsEntry.kind == "expire")
            .order_by(PointsEntry.id)
        )
    ]
    assert written == model.expired
    assert db.get(LoyaltyMember, cid, populate_existing=True).balance == model.balance  # type: ignore[union-attr]
    assert verify_balances(db).ok


def test_fifo_expiry_by_hand(db: Session, make_customer: Any, setup: Any) -> None:
    """Earned 100 in January and 50 in February, 120 spent in March: the January lot is
    gone, 30 of February's are left, so at the end of April (February's expiry) 30
    expire — and nothing at the end of March, since January's 100 were spent."""
    manager = setup
    cid = make_customer().id
    jan, feb, mar = (datetime(2026, m, 10, tzinfo=UTC) for m in (1, 2, 3))
    with clock.frozen(jan):
        enrol(db, customer_id=cid, actor=manager)
        grant_bonus(
            db,
            customer_id=cid,
            bonus_in=BonusIn(points=100, reason="一月", key="jan"),
            actor=manager,
        )
    with clock.frozen(feb):
        grant_bonus(
            db,
            customer_id=cid,
            bonus_in=BonusIn(points=50, reason="二月", key="feb"),
            actor=manager,
        )
    with clock.frozen(mar):
        redeem_points(
            db, customer_id=cid, redeem_in=RedeemIn(points=120, reference="YT9"), actor=manager
        )
    january_end = expiry_of(jan, EXPIRY_MONTHS)  # 2026-03-31 16:00 UTC
    february_end = expiry_of(feb, EXPIRY_MONTHS)  # 2026-04-30 16:00 UTC
    with write_transaction(db):
        assert expire_range(db, lo=cid, hi=cid, now=january_end) == (0, 0)
    with write_transaction(db):
        assert expire_range(db, lo=cid, hi=cid, now=february_end - timedelta(seconds=1)) == (0, 0)
    with write_transaction(db):
        assert expire_range(db, lo=cid, hi=cid, now=february_end) == (1, 30)
    # Running again at the same moment, or later, expires nothing more.
    with write_transaction(db):
        assert expire_range(db, lo=cid, hi=cid, now=february_end + timedelta(days=40)) == (0, 0)
    member = db.get(LoyaltyMember, cid, populate_existing=True)
    assert member is not None
    assert member.balance == 0
    key = db.scalar(
        select(PointsEntry.source_key).where(
            PointsEntry.kind == "expire", PointsEntry.customer_id == cid
        )
    )
    assert key == f"expire:{cid}:150"
