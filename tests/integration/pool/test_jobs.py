"""The worker's pool job on real commits: registered, returns what is due on the first
run of a day and nothing on the second."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.pool.policy import PoolPolicy, save_policy
from guanxi.pool.service import claim
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.worker import JOBS, pool_daily
from tests.conftest import settings_for
from tests.integration.pool.conftest import local


def test_the_worker_returns_once_a_day(committed_engine: Engine, tmp_path: Path) -> None:
    assert [(name, every) for name, _job, every in JOBS if name == "pool_daily"] == [
        ("pool_daily", 3600)
    ]
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    sm = make_sessionmaker(committed_engine)
    with sm() as s, clock.frozen(local(2026, 3, 2, 10)):
        boss, sales = (
            create_user(
                s,
                user_in=UserCreate(
                    username=name, display_name=name, role=role, password="longenough1"
                ),  # type: ignore[arg-type]
                actor=Actor.system("t"),
            )
            for name, role in (("boss", "manager"), ("wang", "sales"))
        )
        save_policy(
            s,
            policy=PoolPolicy(no_follow_up_days=3, contract_ended_days=None, warn_days=1),
            actor=boss,
        )
        cid = create_customer(s, customer_in=CustomerCreate(name="作业客户"), actor=boss).id
        claim(s, customer_id=cid, actor=sales, timezone=settings.timezone)
    figures = []
    for day in (4, 4, 5, 5):
        with clock.frozen(local(2026, 3, day, 7)):
            figures.append(pool_daily(committed_engine, settings))
    assert [(f["day"], f["warned"], f["returned_no_follow_up"]) for f in figures] == [
        ("2026-03-04", 1, 0),
        ("2026-03-04", 0, 0),
        ("2026-03-05", 0, 1),
        ("2026-03-05", 0, 0),
    ]
    with sm() as s:
        assert s.scalar(select(Customer.owner_id).where(Customer.id == cid)) is None
