"""Points accrual from shipments: exact points, members created on the first earning
shipment, idempotent re-runs, a crash mid-chunk, and ledger == balances afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from guanxi.core.db import make_sessionmaker
from guanxi.loyalty import accrual
from guanxi.loyalty.clock import expiry_of
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.models import LoyaltyMember, PointsEntry
from guanxi.loyalty.policy import load_policy

from .conftest import add_shipment

T0 = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)


def _ledger(session: Session) -> list[tuple[int, str, int, str]]:
    return [
        tuple(r)  # type: ignore[misc]
        for r in session.execute(
            select(
                PointsEntry.customer_id,
                PointsEntry.kind,
                PointsEntry.points,
                PointsEntry.source_key,
            ).order_by(PointsEntry.id)
        )
    ]


def test_accrual_credits_each_earning_shipment_once(db: Session, make_customer: Any) -> None:
    a, b, c = make_customer("甲"), make_customer("乙"), make_customer("丙")
    s1 = add_shipment(db, a.id, fee_fen=1234, at=T0, service_type="express")  # 18
    s2 = add_shipment(db, a.id, fee_fen=5000, at=T0 + timedelta(days=1))  # 50
    add_shipment(db, b.id, fee_fen=8000, at=T0, status="cancelled")  # nothing
    add_shipment(db, b.id, fee_fen=60, at=T0)  # 0 points: no row, not a member
    s5 = add_shipment(db, c.id, fee_fen=2000, at=T0 + timedelta(days=2), service_type="cold_chain")
    db.commit()

    result = accrual.accrue(db, chunk=2, now=T0 + timedelta(days=3))

    assert (result.chunks, result.shipments, result.entries, result.points, result.members) == (
        3,
        5,
        3,
        18 + 50 + 40,
        2,
    )
    assert _ledger(db) == [
        (a.id, "earn", 18, f"ship:{s1.id:012d}"),
        (a.id, "earn", 50, f"ship:{s2.id:012d}"),
        (c.id, "earn", 40, f"ship:{s5.id:012d}"),
    ]
    members = {m.customer_id: m for m in db.scalars(select(LoyaltyMember))}
    assert set(members) == {a.id, c.id}
    assert (members[a.id].balance, members[a.id].lifetime_points) == (68, 68)
    assert members[a.id].tier == "member"
    # The anniversary is the first earning shipment.
    assert members[a.id].joined_at == T0
    assert members[c.id].joined_at == T0 + timedelta(days=2)
    # The SQL's expiry agrees with the Python rule (end of the month, 24 months on).
    entry = db.scalar(select(PointsEntry).where(PointsEntry.shipment_id == s1.id))
    assert entry is not None
    assert entry.expires_at == expiry_of(T0, 24) == datetime(2028, 3, 31, 16, tzinfo=UTC)
    assert entry.occurred_at == T0
    assert verify_balances(db).ok


def test_running_again_or_from_zero_adds_nothing(db: Session, make_customer: Any) -> None:
    a = make_customer()
    for day in range(5):
        add_shipment(db, a.id, fee_fen=1000 + day, at=T0 + timedelta(days=day))
    db.commit()
    first = accrual.accrue(db, chunk=3)
    before = _ledger(db)
    assert first.entries == 5
    assert accrual.accrue(db, chunk=3).chunks == 0
    accrual.reset_watermark(db, to=0)
    again = accrual.accrue(db, chunk=3)
    assert (again.chunks, again.shipments, again.entries, again.points) == (2, 5, 0, 0)
    assert _ledger(db) == before
    member = db.get(LoyaltyMember, a.id, populate_existing=True)
    assert member is not None
    assert member.balance == 10 + 10 + 10 + 10 + 10
    assert verify_balances(db).ok


def test_a_chunk_half_credited_credits_only_the_new_half(db: Session, make_customer: Any) -> None:
    """The watermark moved back over credited and new shipments alike: one chunk spans
    both (PostgreSQL takes its guarded insert) and credits the new ones only."""
    a = make_customer()
    for day in range(3):
        add_shipment(db, a.id, fee_fen=1000, at=T0 + timedelta(days=day))
    db.commit()
    assert accrual.accrue(db).entries == 3
    for day in range(3, 5):
        add_shipment(db, a.id, fee_fen=2000, at=T0 + timedelta(days=day))
    db.commit()
    accrual.reset_watermark(db, to=0)
    again = accrual.accrue(db, chunk=10)
    assert (again.chunks, again.shipments, again.entries, again.points) == (1, 5, 2, 40)
    assert [row[2] for row in _ledger(db)] == [10, 10, 10, 20, 20]
    member = db.get(LoyaltyMember, a.id, populate_existing=True)
    assert member is not None
    assert (member.balance, member.lifetime_points) == (70, 70)
    assert verify_balances(db).ok


def test_new_shipments_after_a_run_are_credited_next_time(db: Session, make_customer: Any) -> None:
    a = make_customer()
    add_shipment(db, a.id, fee_fen=1000, at=T0)
    db.commit()
    accrual.accrue(db)
    add_shipment(db, a.id, fee_fen=2500, at=T0 + timedelta(hours=1))
    db.commit()
    second = accrual.accrue(db)
    assert (second.entries, second.points, second.members) == (1, 25, 0)
    assert db.scalar(select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == a.id)) == 35


def test_a_crash_mid_chunk_loses_and_repeats_nothing(committed_engine: Engine) -> None:
    """The chunk's ledger rows, balances and watermark commit together: a crash after the
    ledger insert leaves none of them; the next run completes exactly once."""
    from guanxi.audit.service import Actor
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer

    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        ids = [
            create_customer(
                s, customer_in=CustomerCreate(name=f"客户{i}"), actor=Actor.system("t")
            ).id
            for i in range(3)
        ]
        for n in range(9):
            add_shipment(s, ids[n % 3], fee_fen=1000 * (n + 1), at=T0 + timedelta(hours=n))
        s.commit()
    with sm() as s:
        policy = load_policy(s)
        done = accrual.accrue_chunk(s, policy=policy, chunk=4)
        assert done is not None
        assert done.entries == 4
        with pytest.raises(RuntimeError, match="simulated crash"):
            accrual.accrue_chunk(s, policy=policy, chunk=4, crash_after_ledger=True)
        s.rollback()
    with sm() as s:
        # Only the first chunk is in: 10 + 20 + 30 + 40 points, watermark after 4 shipments.
        assert s.scalar(select(func.count()).select_from(PointsEntry)) == 4
        assert s.scalar(select(func.sum(LoyaltyMember.balance))) == 100
        assert accrual.watermark(s) == 4
    with sm() as s:
        rest = accrual.accrue(s, chunk=4)
        assert (rest.entries, rest.points) == (5, 50 + 60 + 70 + 80 + 90)
        check = verify_balances(s)
        assert check.ok
        assert (check.entries, check.ledger_total) == (9, 450)
        balances = dict(s.execute(select(LoyaltyMember.customer_id, LoyaltyMember.balance)).all())
        assert balances == {ids[0]: 10 + 40 + 70, ids[1]: 20 + 50 + 80, ids[2]: 30 + 60 + 90}


def test_verify_reports_a_tampered_balance(db: Session, make_customer: Any) -> None:
    a = make_customer()
    add_shipment(db, a.id, fee_fen=4200, at=T0)
    db.commit()
    accrual.accrue(db)
    member = db.get(LoyaltyMember, a.id)
    assert member is not None
    member.balance = 40  # behind the service's back
    db.commit()
    check = verify_balances(db)
    assert not check.ok
    assert check.differences == [(a.id, 40, 42)]


def test_verify_reports_ledger_rows_without_a_member(db: Session, make_customer: Any) -> None:
    """A member row deleted behind the service's back: its ledger rows (42 points) are a
    difference against a cached balance of 0, on both databases."""
    a, b = make_customer("甲"), make_customer("乙")
    add_shipment(db, a.id, fee_fen=4200, at=T0)
    add_shipment(db, b.id, fee_fen=1500, at=T0)
    db.commit()
    accrual.accrue(db)
    db.execute(delete(LoyaltyMember).where(LoyaltyMember.customer_id == a.id))
    db.commit()
    check = verify_balances(db)
    assert not check.ok
    assert check.differences == [(a.id, 0, 42)]
    assert check.lifetime_differences == [(a.id, 0, 42)]
    assert (check.members, check.balance_total, check.ledger_total) == (1, 15, 57)


def test_a_backfill_rebuilds_the_customer_index(
    db: Session, make_customer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enough waiting shipments: the ledger's customer index is down during the run and
    back at the end — also when the run fails half-way."""
    from sqlalchemy import inspect

    monkeypatch.setattr(accrual, "BACKFILL_SHIPMENTS", 3)
    a, b = make_customer("甲").id, make_customer("乙").id
    for n in range(6):
        add_shipment(db, (a, b)[n % 2], fee_fen=1000 * (n + 1), at=T0 + timedelta(hours=n))
    db.commit()

    def indexes() -> set[str]:
        names = {i["name"] for i in inspect(db.connection()).get_indexes("loyalty_points")}
        db.commit()
        return names

    seen: list[set[str]] = []
    real = accrual.accrue_chunk

    def failing(*args: Any, **kw: Any) -> Any:
        seen.append(indexes())
        if len(seen) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(accrual, "accrue_chunk", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        accrual.accrue(db, chunk=2)
    assert "ix_loyalty_points_customer_id" not in seen[0]
    assert "ix_loyalty_points_customer_id" in indexes()
    monkeypatch.setattr(accrual, "accrue_chunk", real)
    rest = accrual.accrue(db, chunk=2)
    assert rest.entries == 4
    assert "ix_loyalty_points_customer_id" in indexes()
    assert verify_balances(db).ok
    balances = dict(db.execute(select(LoyaltyMember.customer_id, LoyaltyMember.balance)).all())
    assert balances == {a: 10 + 30 + 50, b: 20 + 40 + 60}
