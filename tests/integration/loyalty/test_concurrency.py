"""Concurrent redemptions on real commits (threads; SQLite and PostgreSQL): points never
overdraw, the refused ones are told why; a coupon redeemed at two counters at once is
redeemed once; a retried request with the same key spends once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker
from guanxi.core.errors import Conflict
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.loyalty.coupons import issue_coupons, redeem_coupon, save_template
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.models import Coupon, LoyaltyMember, PointsEntry
from guanxi.loyalty.schemas import BonusIn, CouponTemplateIn, RedeemIn
from guanxi.loyalty.service import enrol, grant_bonus, redeem_points
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user

THREADS = 8


def _race(fn: Any) -> list[str]:
    """Run ``fn(n)`` in THREADS threads released together; each outcome is "ok" or the
    refusal's code."""
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        barrier.wait()
        try:
            fn(n)
            outcome = "ok"
        except Conflict as exc:
            outcome = exc.message
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _setup(engine: Engine, balance: int) -> tuple[int, int]:
    sm = make_sessionmaker(engine)
    with sm() as s:
        manager = create_user(
            s,
            user_in=UserCreate(
                username="mgr", display_name="主管", role="manager", password="longenough1"
            ),  # type: ignore[arg-type]
            actor=Actor.system("t"),
        )
        cid = create_customer(s, customer_in=CustomerCreate(name="积分客户"), actor=manager).id
        enrol(s, customer_id=cid, actor=manager)
        if balance:
            grant_bonus(
                s,
                customer_id=cid,
                bonus_in=BonusIn(points=balance, reason="开户", key="k0"),
                actor=manager,
            )
        return cid, manager.id


def test_concurrent_redemptions_never_overdraw(committed_engine: Engine) -> None:
    cid, manager_id = _setup(committed_engine, balance=1000)
    sm = make_sessionmaker(committed_engine)

    def spend(n: int) -> None:
        with sm() as s:
            user = s.get(User, manager_id)
            assert user is not None
            redeem_points(
                s,
                customer_id=cid,
                redeem_in=RedeemIn(points=300, reference=f"YT{n}", key=f"r{n}"),
                actor=user,
            )

    outcomes = Counter(_race(spend))
    # 1000 points, 300 a time: three succeed, five are refused for the balance.
    assert outcomes == {"ok": 3, "points_insufficient": THREADS - 3}
    with sm() as s:
        assert (
            s.scalar(select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == cid)) == 100
        )
        redeemed = s.scalar(
            select(func.count()).where(PointsEntry.kind == "redeem", PointsEntry.customer_id == cid)
        )
        assert redeemed == 3
        assert verify_balances(s).ok


def test_a_retried_redemption_spends_once(committed_engine: Engine) -> None:
    cid, manager_id = _setup(committed_engine, balance=1000)
    sm = make_sessionmaker(committed_engine)

    def spend(_n: int) -> None:
        with sm() as s:
            user = s.get(User, manager_id)
            assert user is not None
            redeem_points(
                s,
                customer_id=cid,
                redeem_in=RedeemIn(points=100, reference="YT1", key="same-request"),
                actor=user,
            )

    # Every retry answers with the one entry: the member row's lock orders them, and the
    # later ones find the key already written.
    assert Counter(_race(spend)) == {"ok": THREADS}
    with sm() as s:
        assert s.scalar(select(func.count()).where(PointsEntry.kind == "redeem")) == 1
        assert (
            s.scalar(select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == cid)) == 900
        )
        assert verify_balances(s).ok


def test_a_coupon_is_redeemed_once_under_concurrency(committed_engine: Engine) -> None:
    cid, manager_id = _setup(committed_engine, balance=0)
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        user = s.get(User, manager_id)
        assert user is not None
        save_template(
            s,
            template_in=CouponTemplateIn(
                code="save5",
                name_zh="立减5元",
                name_en="5 off",
                kind="amount_off",  # type: ignore[arg-type]
                amount_off_fen=500,
                valid_days=30,
            ),  # fmt: skip
            actor=user,
        )
        with s.begin():
            code = issue_coupons(
                s, template_code="save5", customer_ids=[cid], source_key="race", actor=user,
                now=datetime.now(UTC),
            )[cid]  # fmt: skip

    def use(n: int) -> None:
        with sm() as s:
            user = s.get(User, manager_id)
            assert user is not None
            redeem_coupon(s, code=code, reference=f"YT{n:04d}", actor=user)

    outcomes = Counter(_race(use))
    assert outcomes == {"ok": 1, "coupon_redeemed": THREADS - 1}
    with sm() as s:
        coupon = s.scalar(select(Coupon).where(Coupon.code == code))
        assert coupon is not None
        assert coupon.status == "redeemed"
        assert coupon.redeemed_ref is not None
        assert coupon.redeemed_ref.startswith("YT")
