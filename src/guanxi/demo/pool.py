"""Demo customer pool (公海): the policy a sales manager would set, and four weeks of the
pool at work — the account managers claiming customers every morning (some followed up,
some not), releasing a few with a reason, the manager assigning some, and the daily job
warning owners and returning the neglected customers — so the pool, the history and the
account managers' notifications show real figures.

Everything goes through the services (audited), each day with the clock set to that day.
The policy returns only customers taken from the pool: the account managers' books that
predate it stay theirs. Idempotent: a database with pool history is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.errors import DomainError
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, Tag
from guanxi.interactions.enums import InteractionKind
from guanxi.interactions.schemas import InteractionCreate
from guanxi.interactions.service import log_interaction
from guanxi.pool import service
from guanxi.pool.models import PoolEvent
from guanxi.pool.policy import PoolPolicy, save_policy
from guanxi.pool.returns import run_returns
from guanxi.pool.schemas import AssignIn
from guanxi.security.models import User

DAYS = 28
RELEASE_NOTES = ["客户已转由同行承运", "联系不上，暂时放回公海", "客户只寄个人件，不需要专人跟进"]
FOLLOW_UPS = ["电话回访，了解月度寄件量", "上门拜访，介绍月结方案", "微信沟通报价"]


@dataclass(frozen=True)
class PoolDemo:
    """What the demo seeding did."""

    claims: int
    releases: int
    assignments: int
    warned: int
    returned: int


def seed_pool(session: Session, *, seed: int = 42, timezone: str = "Asia/Shanghai") -> PoolDemo:
    """Set the pool policy and play four weeks of claims, follow-ups, releases,
    assignments and daily returns (once)."""
    if session.scalar(select(func.count()).select_from(PoolEvent)):
        return PoolDemo(0, 0, 0, 0, 0)
    users = {u.username: u for u in session.scalars(select(User))}
    manager = users.get("manager")
    sellers = [users[n] for n in ("sales", "sales2", "sales3", "sales4") if n in users]
    if manager is None or not sellers:
        return PoolDemo(0, 0, 0, 0, 0)
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    today = clock.now().astimezone(tz).date()
    start = today - timedelta(days=DAYS)

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=tz)

    exempt = [t for t in ("VIP",) if session.scalar(select(Tag.id).where(Tag.name == t))]
    with clock.frozen(at(start - timedelta(days=1), 17)):
        save_policy(
            session,
            policy=PoolPolicy(
                daily_cap=5,
                no_follow_up_days=14,
                contract_ended_days=30,
                warn_days=3,
                only_from_pool=True,
                exempt_tags=exempt,
            ),
            actor=manager,
        )
    pool = list(
        session.scalars(
            select(Customer.id)
            .where(Customer.owner_id.is_(None), Customer.status == CustomerStatus.active.value)
            .order_by(Customer.id.desc())
            .limit(400)
        )
    )
    rng.shuffle(pool)
    claims = releases = assignments = warned = returned = 0
    claimed: list[tuple[int, User]] = []
    # The days before today; today's run is the worker's.
    for offset in range(DAYS):
        day = start + timedelta(days=offset)
        # The worker's early run, before anyone is in.
        with clock.frozen(at(day, 6)):
            figures = run_returns(
                session, now=clock.now(), timezone=timezone, language="zh_CN"
            ).figures()
        warned += figures["warned"]
        returned += figures["returned_no_follow_up"] + figures["returned_contract_ended"]
        for n, seller in enumerate(sellers):
            for k in range(rng.randint(0, 2)):
                if not pool:
                    break
                cid = pool.pop()
                with clock.frozen(at(day, 9, 10 * n + k)):
                    try:
                        service.claim(session, customer_id=cid, actor=seller, timezone=timezone)
                    except DomainError:
                        continue
                claims += 1
                claimed.append((cid, seller))
        # Some of the claimed customers get a call a few days later; the rest drift back.
        for cid, seller in list(claimed):
            if session.scalar(select(Customer.owner_id).where(Customer.id == cid)) != seller.id:
                claimed.remove((cid, seller))  # returned to the pool meanwhile
                continue
            if rng.random() < 0.12:
                with clock.frozen(at(day, 15, rng.randint(0, 59))):
                    log_interaction(
                        session,
                        interaction_in=InteractionCreate(
                            customer_id=cid,
                            kind=InteractionKind.call,
                            summary=rng.choice(FOLLOW_UPS),
                        ),
                        actor=seller,
                    )
        if offset % 6 == 3 and claimed:
            cid, seller = claimed.pop(rng.randrange(len(claimed)))
            with clock.frozen(at(day, 17)):
                try:
                    service.release(
                        session, customer_id=cid, actor=seller, note=rng.choice(RELEASE_NOTES)
                    )
                    releases += 1
                except DomainError:
                    pass
        if offset % 7 == 5 and pool:
            cid = pool.pop()
            seller = rng.choice(sellers)
            with clock.frozen(at(day, 11)):
                service.assign(
                    session,
                    assign_in=AssignIn(customer_ids=[cid], owner_id=seller.id, note="区域调整"),
                    actor=manager,
                )
            assignments += 1
            claimed.append((cid, seller))
    return PoolDemo(claims, releases, assignments, warned, returned)
