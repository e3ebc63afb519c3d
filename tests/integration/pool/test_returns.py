"""The daily return job under a frozen clock: the no-follow-up rule counted from the later
of the claim and the owner's last follow-up, the warning K days ahead (in-app and e-mail),
the contract-ended rule, exempt tags, and idempotency (a second run of a day changes
nothing)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.notify.models import Notification, OutboxMessage
from guanxi.pool import service
from guanxi.pool.models import PoolEvent
from guanxi.pool.returns import run_returns
from tests.integration.pool.conftest import TZ, local

START = date(2026, 3, 2)


def _run(db: Session, day: date, hour: int = 6) -> dict[str, Any]:
    """The job on local ``day`` at ``hour``, twice: the second run must change nothing."""
    at = local(day.year, day.month, day.day, hour)
    with clock.frozen(at):
        first = run_returns(db, now=at, timezone=TZ, language="zh_CN").figures()
        rows = _counts(db)
        second = run_returns(db, now=at, timezone=TZ, language="zh_CN").figures()
    assert second == {
        "day": day.isoformat(),
        "warned": 0,
        "returned_no_follow_up": 0,
        "returned_contract_ended": 0,
    }
    assert _counts(db) == rows
    return first


def _counts(db: Session) -> tuple[int, int, int]:
    db.expire_all()
    return (
        int(db.scalar(select(func.count()).select_from(PoolEvent)) or 0),
        int(db.scalar(select(func.count()).select_from(Notification)) or 0),
        int(db.scalar(select(func.count()).select_from(OutboxMessage)) or 0),
    )


def _owner(db: Session, customer_id: int) -> int | None:
    db.expire_all()
    return db.scalar(select(Customer.owner_id).where(Customer.id == customer_id))


def _events(db: Session, customer_id: int) -> list[tuple[str, int | None, int | None, Any]]:
    db.expire_all()
    return [
        (e.kind, e.from_user_id, e.to_user_id, e.due_on)
        for e in db.scalars(
            select(PoolEvent).where(PoolEvent.customer_id == customer_id).order_by(PoolEvent.id)
        )
    ]


def _claim(db: Session, customer_id: int, user: Any, day: date, hour: int = 10) -> None:
    with clock.frozen(local(day.year, day.month, day.day, hour)):
        service.claim(db, customer_id=customer_id, actor=user, timezone=TZ)


def _figures(warned: int = 0, follow: int = 0, contract: int = 0) -> dict[str, int]:
    return {
        "warned": warned,
        "returned_no_follow_up": follow,
        "returned_contract_ended": contract,
    }


def _only(figures: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in figures.items() if k != "day"}


def test_no_follow_up_warns_k_days_ahead_then_returns_on_the_day(
    db: Session, make_user: Any, make_customer: Any, policy: Any
) -> None:
    policy(daily_cap=5, no_follow_up_days=10, contract_ended_days=None, warn_days=3)
    with clock.frozen(local(2026, 2, 1)):
        sales = make_user("sales", display_name="王销售", email="wang@example.com")
        customer = make_customer("顺达贸易")
    _claim(db, customer.id, sales, START)
    # Claimed on 2 March: due on 12 March, warned on 9 March.
    for offset in range(1, 7):
        assert _only(_run(db, START + timedelta(days=offset))) == _figures()
    assert _only(_run(db, START + timedelta(days=7))) == _figures(warned=1)
    assert _events(db, customer.id) == [
        ("claimed", None, sales.id, None),
        ("warned", None, sales.id, date(2026, 3, 12)),
    ]
    note = db.scalars(select(Notification).where(Notification.user_id == sales.id)).one()
    assert (note.kind, note.subject, note.link) == (
        "pool_warning",
        "顺达贸易将于2026-03-12退回公海",
        f"/customers/{customer.id}",
    )
    mail = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email")).one()
    assert mail.subject == "顺达贸易将于2026-03-12退回公海"
    for offset in (8, 9):
        assert _only(_run(db, START + timedelta(days=offset))) == _figures()
    assert _owner(db, customer.id) == sales.id
    assert _only(_run(db, START + timedelta(days=10))) == _figures(follow=1)
    assert _owner(db, customer.id) is None
    assert _events(db, customer.id)[-1] == ("returned_no_follow_up", sales.id, None, None)
    returned = db.scalars(select(Notification).where(Notification.kind == "pool_returned")).one()
    assert (returned.user_id, returned.subject, returned.body) == (
        sales.id,
        "顺达贸易已退回公海",
        "已连续10天没有跟进记录。",
    )
    # Back in the pool, nothing more happens.
    assert _only(_run(db, START + timedelta(days=11))) == _figures()


def test_the_owners_follow_up_restarts_the_count_and_cancels_a_warning(
    db: Session, make_user: Any, make_customer: Any, policy: Any, follow_up: Any
) -> None:
    policy(no_follow_up_days=10, contract_ended_days=None, warn_days=3)
    with clock.frozen(local(2026, 2, 1)):
        sales = make_user("sales")
        other = make_user("sales")
        customer = make_customer("恒通物流")
    _claim(db, customer.id, sales, START)
    # Someone else's contact is not the owner's follow-up.
    follow_up(customer.id, other.id, local(2026, 3, 6, 15))
    assert _only(_run(db, date(2026, 3, 9))) == _figures(warned=1)
    # The owner calls after the warning: the customer stays; due again 10 days later.
    follow_up(customer.id, sales.id, local(2026, 3, 10, 15))
    for day in range(11, 17):
        assert _only(_run(db, date(2026, 3, day))) == _figures()
    assert _owner(db, customer.id) == sales.id
    assert _only(_run(db, date(2026, 3, 17))) == _figures(warned=1)
    assert [e for e in _events(db, customer.id) if e[0] == "warned"] == [
        ("warned", None, sales.id, date(2026, 3, 12)),
        ("warned", None, sales.id, date(2026, 3, 20)),
    ]
    assert _only(_run(db, date(2026, 3, 19))) == _figures()
    assert _only(_run(db, date(2026, 3, 20))) == _figures(follow=1)
    assert _owner(db, customer.id) is None


def test_a_late_or_new_rule_still_gives_the_owner_the_warning_days(
    db: Session, make_user: Any, make_customer: Any, policy: Any
) -> None:
    with clock.frozen(local(2026, 1, 1)):
        sales = make_user("sales")
        # Owned since it was created (no claim recorded): counted from creation.
        customer = make_customer("老客户", actor=sales)
    assert customer.owner_id == sales.id
    policy(no_follow_up_days=30, contract_ended_days=None, warn_days=5)
    # Overdue since 31 January: warned on the first run, returned five days later.
    assert _only(_run(db, START)) == _figures(warned=1)
    assert _events(db, customer.id) == [("warned", None, sales.id, date(2026, 3, 7))]
    assert _only(_run(db, date(2026, 3, 6))) == _figures()
    assert _only(_run(db, date(2026, 3, 7))) == _figures(follow=1)


def test_without_warning_days_the_customer_returns_on_the_due_day(
    db: Session, make_user: Any, make_customer: Any, policy: Any
) -> None:
    policy(no_follow_up_days=5, contract_ended_days=None, warn_days=0)
    with clock.frozen(local(2026, 2, 1)):
        sales = make_user("sales")
        customer = make_customer("即时退回")
    _claim(db, customer.id, sales, START, hour=23)
    assert _only(_run(db, date(2026, 3, 6))) == _figures()
    assert _only(_run(db, date(2026, 3, 7), hour=0)) == _figures(follow=1)
    assert _events(db, customer.id) == [
        ("claimed", None, sales.id, None),
        ("returned_no_follow_up", sales.id, None, None),
    ]


def test_exempt_customers_never_return(
    db: Session, make_user: Any, make_customer: Any, policy: Any
) -> None:
    with clock.frozen(local(2026, 1, 1)):
        sales = make_user("sales")
        key = make_customer("重点大客户", tags=["重点客户"])
        plain = make_customer("普通客户")
    policy(no_follow_up_days=5, contract_ended_days=None, warn_days=0, exempt_tags=["重点客户"])
    for cid in (key.id, plain.id):
        _claim(db, cid, sales, START)
    assert _only(_run(db, date(2026, 3, 20))) == _figures(follow=1)
    assert (_owner(db, key.id), _owner(db, plain.id)) == (sales.id, None)


def test_contract_ended_returns_m_days_after_the_end(
    db: Session, make_user: Any, make_customer: Any, policy: Any, contract: Any, follow_up: Any
) -> None:
    policy(no_follow_up_days=None, contract_ended_days=5, warn_days=2)
    with clock.frozen(local(2026, 2, 1)):
        sales = make_user("sales")
        ended = make_customer("到期企业", kind="enterprise")
        renewed = make_customer("续约企业", kind="enterprise")
        before = make_customer("早已到期", kind="enterprise")
    for c in (ended, renewed, before):
        _claim(db, c.id, sales, START)
    first = contract(ended.id, "expired", date(2026, 3, 10))
    # A renewal active: no return whatever ended before.
    contract(renewed.id, "expired", date(2026, 3, 10))
    contract(renewed.id, "active", date(2027, 3, 10))
    # Its contract had ended before the salesperson claimed it: not theirs to lose.
    contract(before.id, "terminated", date(2026, 3, 1), ended_on=date(2026, 2, 20))
    follow_up(ended.id, sales.id, local(2026, 3, 14, 9))
    # Ended 10 March: due on 15 March, warned on 13 March (follow-ups do not matter here).
    assert _only(_run(db, date(2026, 3, 12))) == _figures()
    assert _only(_run(db, date(2026, 3, 13))) == _figures(warned=1)
    warning = db.scalars(select(PoolEvent).where(PoolEvent.kind == "warned")).one()
    assert (warning.customer_id, warning.due_on, warning.rule, warning.contract_id) == (
        ended.id,
        date(2026, 3, 15),
        "contract_ended",
        first,
    )
    assert _only(_run(db, date(2026, 3, 14))) == _figures()
    assert _only(_run(db, date(2026, 3, 15))) == _figures(contract=1)
    assert _events(db, ended.id)[-1] == ("returned_contract_ended", sales.id, None, None)
    assert (_owner(db, ended.id), _owner(db, renewed.id), _owner(db, before.id)) == (
        None,
        sales.id,
        sales.id,
    )
    assert _only(_run(db, date(2026, 4, 30))) == _figures()


def test_only_customers_taken_from_the_pool_return_when_the_policy_says_so(
    db: Session, make_user: Any, make_customer: Any, policy: Any
) -> None:
    with clock.frozen(local(2026, 1, 1)):
        sales = make_user("sales")
        book = make_customer("老账本客户", actor=sales)
        pooled = make_customer("公海客户")
    policy(no_follow_up_days=5, contract_ended_days=None, warn_days=0, only_from_pool=True)
    _claim(db, pooled.id, sales, START)
    assert _only(_run(db, date(2026, 3, 20))) == _figures(follow=1)
    assert (_owner(db, book.id), _owner(db, pooled.id)) == (sales.id, None)


def test_many_returns_are_written_a_chunk_at_a_time(
    db: Session,
    make_user: Any,
    make_customer: Any,
    policy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import guanxi.pool.returns as returns

    monkeypatch.setattr(returns, "RETURN_CHUNK", 2)
    policy(no_follow_up_days=5, contract_ended_days=None, warn_days=0)
    with clock.frozen(local(2026, 2, 1)):
        wang, li = make_user("sales"), make_user("sales")
        customers = [make_customer(f"客户{n}") for n in range(5)]
    for n, c in enumerate(customers):
        _claim(db, c.id, wang if n % 2 else li, START)
    assert _only(_run(db, date(2026, 3, 7))) == _figures(follow=5)
    assert [_owner(db, c.id) for c in customers] == [None] * 5
    returned = db.scalars(
        select(PoolEvent.from_user_id)
        .where(PoolEvent.kind == "returned_no_follow_up")
        .order_by(PoolEvent.customer_id)
    ).all()
    assert returned == [li.id, wang.id, li.id, wang.id, li.id]
