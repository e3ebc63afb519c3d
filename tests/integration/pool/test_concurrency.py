"""Concurrent claims on real commits (threads; SQLite and PostgreSQL): of many people
claiming one customer exactly one wins and the others are told who; one person claiming
many customers at once gets no more than the daily cap."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker
from guanxi.core.errors import Conflict
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.pool.models import PoolClaimDay, PoolEvent
from guanxi.pool.policy import PoolPolicy, save_policy
from guanxi.pool.service import claim
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user

THREADS = 8
TZ = "Asia/Shanghai"


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


def _user(session: Any, name: str, role: str = "sales") -> int:
    return create_user(
        session,
        user_in=UserCreate(username=name, display_name=name, role=role, password="longenough1"),  # type: ignore[arg-type]
        actor=Actor.system("t"),
    ).id


def test_one_customer_claimed_by_many_at_once_goes_to_exactly_one(
    committed_engine: Engine,
) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        users = [_user(s, f"sales{n}") for n in range(THREADS)]
        cid = create_customer(
            s, customer_in=CustomerCreate(name="抢手客户"), actor=Actor.system("t")
        ).id

    def grab(n: int) -> None:
        with sm() as s:
            user = s.get(User, users[n])
            assert user is not None
            claim(s, customer_id=cid, actor=user, timezone=TZ)

    outcomes = Counter(_race(grab))
    assert outcomes == {"ok": 1, "pool_taken": THREADS - 1}
    with sm() as s:
        owner = s.scalar(select(Customer.owner_id).where(Customer.id == cid))
        events = s.scalars(select(PoolEvent)).all()
        assert [(e.kind, e.to_user_id) for e in events] == [("claimed", owner)]
        # The losers' places were given back with their rollback.
        assert s.scalar(select(func.sum(PoolClaimDay.claimed))) == 1


def test_the_daily_cap_holds_under_concurrent_claims(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        uid = _user(s, "sales")
        boss = s.get(User, _user(s, "boss", role="manager"))
        assert boss is not None
        save_policy(s, policy=PoolPolicy(daily_cap=3), actor=boss)
        cids = [
            create_customer(
                s, customer_in=CustomerCreate(name=f"客户{n}"), actor=Actor.system("t")
            ).id
            for n in range(THREADS)
        ]

    def grab(n: int) -> None:
        with sm() as s:
            user = s.get(User, uid)
            assert user is not None
            claim(s, customer_id=cids[n], actor=user, timezone=TZ)

    outcomes = Counter(_race(grab))
    assert outcomes == {"ok": 3, "pool_cap_reached": THREADS - 3}
    with sm() as s:
        assert s.scalar(select(func.count()).where(Customer.owner_id == uid)) == 3
        assert s.scalar(select(func.count()).select_from(PoolEvent)) == 3
        assert s.scalar(select(PoolClaimDay.claimed).where(PoolClaimDay.user_id == uid)) == 3
