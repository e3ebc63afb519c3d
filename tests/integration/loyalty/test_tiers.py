"""Tier changes across the rolling window's boundaries, with a frozen clock: upgrade at
once, a shipment leaving the window starts the grace period, the downgrade comes exactly
at its end, qualifying again cancels it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.loyalty.jobs import run_accrual
from guanxi.loyalty.models import LoyaltyMember, TierChange
from guanxi.loyalty.tiers import evaluate

from .conftest import add_shipment

T0 = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
YEAR = timedelta(days=365)
GRACE = timedelta(days=90)


def _member(db: Session, cid: int) -> LoyaltyMember:
    member = db.get(LoyaltyMember, cid, populate_existing=True)
    assert member is not None
    return member


def _history(db: Session, cid: int) -> list[tuple[str | None, str, str, datetime]]:
    return [
        (t.from_tier, t.to_tier, t.reason, t.at)
        for t in db.scalars(
            select(TierChange).where(TierChange.customer_id == cid).order_by(TierChange.id)
        )
    ]


def test_window_boundaries_grace_and_downgrade(db: Session, make_customer: Any) -> None:
    cid = make_customer().id
    # ¥300 in one shipment: silver (spend threshold 30,000 fen).
    add_shipment(db, cid, fee_fen=30_000, at=T0)
    db.commit()
    assert run_accrual(db, now=T0 + timedelta(minutes=5))["upgrades"] == 1
    m = _member(db, cid)
    assert (m.tier, m.tier_since, m.downgrade_due_at) == ("silver", T0 + timedelta(minutes=5), None)

    # One second before the shipment leaves the window: nothing changes.
    assert evaluate(db, now=T0 + YEAR - SECOND).figures()["grace_started"] == 0
    assert _member(db, cid).downgrade_due_at is None
    # The moment it leaves (window is (now - 365 d, now]): the grace period starts.
    left = T0 + YEAR
    assert evaluate(db, now=left).grace_started == 1
    m = _member(db, cid)
    assert (m.tier, m.downgrade_due_at) == ("silver", left + GRACE)
    # Evaluating again during the grace period changes nothing (idempotent).
    again = evaluate(db, now=left + timedelta(days=30))
    assert (again.grace_started, again.downgrades) == (0, 0)
    assert _member(db, cid).downgrade_due_at == left + GRACE
    # One second before the grace period ends: still silver.
    assert evaluate(db, now=left + GRACE - SECOND).downgrades == 0
    assert _member(db, cid).tier == "silver"
    # Exactly at its end: down to the entry tier.
    assert evaluate(db, now=left + GRACE).downgrades == 1
    m = _member(db, cid)
    assert (m.tier, m.tier_since, m.downgrade_due_at) == ("member", left + GRACE, None)
    assert _history(db, cid) == [
        ("member", "silver", "upgrade", T0 + timedelta(minutes=5)),
        ("silver", "member", "grace_started", left),
        ("silver", "member", "downgrade", left + GRACE),
    ]


def test_qualifying_again_during_grace_cancels_the_downgrade(
    db: Session, make_customer: Any
) -> None:
    cid = make_customer().id
    add_shipment(db, cid, fee_fen=30_000, at=T0)
    db.commit()
    run_accrual(db, now=T0)
    left = T0 + YEAR
    evaluate(db, now=left)
    assert _member(db, cid).downgrade_due_at == left + GRACE
    # Twelve shipments of ¥20 (240 yuan, but 12 shipments): silver again.
    back = left + timedelta(days=40)
    for n in range(12):
        add_shipment(db, cid, fee_fen=2_000, at=back - timedelta(hours=n))
    db.commit()
    run_accrual(db, now=back)
    m = _member(db, cid)
    assert (m.tier, m.downgrade_due_at) == ("silver", None)
    # The old grace end passes without a downgrade.
    assert evaluate(db, now=left + GRACE).downgrades == 0
    assert _member(db, cid).tier == "silver"
    assert [h[2] for h in _history(db, cid)] == ["upgrade", "grace_started", "grace_cancelled"]


def test_upgrade_is_immediate_also_during_grace(db: Session, make_customer: Any) -> None:
    cid = make_customer().id
    add_shipment(db, cid, fee_fen=30_000, at=T0)
    db.commit()
    run_accrual(db, now=T0)
    evaluate(db, now=T0 + YEAR)  # grace starts
    # ¥1,000 in the window: straight to gold, the grace period over.
    now = T0 + YEAR + timedelta(days=3)
    add_shipment(db, cid, fee_fen=100_000, at=now - timedelta(minutes=1))
    db.commit()
    assert run_accrual(db, now=now)["upgrades"] == 1
    m = _member(db, cid)
    assert (m.tier, m.tier_since, m.downgrade_due_at) == ("gold", now, None)


def test_drop_goes_to_the_tier_qualified_for_at_grace_end(db: Session, make_customer: Any) -> None:
    cid = make_customer().id
    add_shipment(db, cid, fee_fen=100_000, at=T0)  # gold
    db.commit()
    run_accrual(db, now=T0)
    assert _member(db, cid).tier == "gold"
    # Silver-level spend inside the window when the gold shipment leaves it.
    add_shipment(db, cid, fee_fen=40_000, at=T0 + timedelta(days=200))
    db.commit()
    run_accrual(db, now=T0 + timedelta(days=200))
    left = T0 + YEAR
    evaluate(db, now=left)
    assert _member(db, cid).downgrade_due_at == left + GRACE
    evaluate(db, now=left + GRACE)
    assert _member(db, cid).tier == "silver"
