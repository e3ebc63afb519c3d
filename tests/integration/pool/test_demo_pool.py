"""The demo's customer pool: the policy, four weeks of claims, follow-ups, releases,
assignments and daily returns, all in the history; loading twice changes nothing."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, func, select

from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.customers.models import Customer
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.pool import seed_pool
from guanxi.notify.models import Notification
from guanxi.pool.models import PoolEvent
from guanxi.pool.policy import load_policy
from tests.integration.pool.conftest import local


def test_demo_pool(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=400, seed=3, owner_ids=owners, duplicate_rate=0.0)
    with sm() as session:
        books = dict(
            session.execute(
                select(Customer.id, Customer.owner_id).where(Customer.owner_id.is_not(None))
            ).all()
        )
    with clock.frozen(local(2026, 10, 2, 12)), sm() as session:
        first = seed_pool(session, seed=3)
        again = seed_pool(session, seed=3)
        kinds = Counter(session.scalars(select(PoolEvent.kind)))
        policy = load_policy(session)
        notices = Counter(
            session.scalars(select(Notification.kind).where(Notification.kind.like("pool_%")))
        )
        still = dict(
            session.execute(
                select(Customer.id, Customer.owner_id).where(Customer.id.in_(list(books)))
            ).all()
        )
    assert (policy.daily_cap, policy.no_follow_up_days, policy.only_from_pool) == (5, 14, True)
    assert (again.claims, again.returned) == (0, 0)
    assert kinds["claimed"] == first.claims > 20
    assert kinds["released"] == first.releases > 0
    assert kinds["assigned"] == first.assignments > 0
    assert kinds["warned"] == first.warned > 0
    assert kinds["returned_no_follow_up"] + kinds["returned_contract_ended"] == first.returned > 0
    assert notices == {"pool_warning": first.warned, "pool_returned": first.returned}
    # The books that predate the pool are untouched.
    assert still == books
    with sm() as session:
        assert session.scalar(select(func.count()).select_from(PoolEvent)) == sum(kinds.values())
