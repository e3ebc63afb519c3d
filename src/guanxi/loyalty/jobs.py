"""The loyalty programme's periodic work, each job idempotent and safe to run twice or on
two workers at once:

* accrual (every few minutes): new shipments' points, then the tiers of the members it
  touched (an upgrade is immediate);
* daily: points expiry (first in, first out), tier evaluation of every member (shipments
  leaving the window start grace periods, grace periods run out), coupon expiry.

The daily jobs run once per local day: each asks whether today's run is done (a row in
``loyalty_accrual_state`` per job) and records it when finished; a second run the same
day, or one that finds the first still going, changes nothing it should not (every step is
idempotent on its own).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.loyalty.accrual import accrue
from guanxi.loyalty.clock import LOCAL_TZ
from guanxi.loyalty.coupons import expire_coupons
from guanxi.loyalty.ledger import expire_range
from guanxi.loyalty.models import AccrualState, LoyaltyMember
from guanxi.loyalty.report import store_figures
from guanxi.loyalty.tiers import evaluate, member_pages
from guanxi.shipments.models import Shipment

log = logging.getLogger(__name__)

EXPIRY_CHUNK = 20_000
# The worker holds the write lock a second or two at most (see accrual.DEFAULT_CHUNK).
JOB_CHUNK = 200_000


def run_accrual(
    session: Session, *, now: datetime | None = None, chunk: int = JOB_CHUNK, tz: str = LOCAL_TZ
) -> dict[str, int]:
    """Credit the shipments since the last run and evaluate the members they touched."""
    now = now or clock.now()
    result = accrue(session, chunk=chunk, now=now, tz=tz)
    figures = {k: int(v) for k, v in result.figures().items()}
    if result.chunks:
        touched = session.scalars(
            select(Shipment.customer_id)
            .where(Shipment.id >= result.first_id, Shipment.id <= result.last_id)
            .distinct()
        ).all()
        session.commit()
        # A small run evaluates the customers it credited; a bulk one (first run over an
        # existing history) everyone, chunk by chunk.
        members = touched if len(touched) <= 30_000 else None
        evaluation = evaluate(session, now=now, customer_ids=members)
        figures["upgrades"] = evaluation.upgrades
    return figures


def expire_points(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Expire what is due for every member, a range of members per transaction."""
    now = now or clock.now()
    members = points = 0
    for ids in member_pages(session, EXPIRY_CHUNK):
        with write_transaction(session):
            n, p = expire_range(session, lo=ids[0], hi=ids[-1], now=now)
        members += n
        points += p
    return {"members": members, "points": points}


@dataclass(frozen=True)
class DailyOutcome:
    """What the daily run did (``ran`` False: today's run was already done)."""

    ran: bool
    figures: dict[str, dict[str, int]]


def _today(now: datetime, tz: str) -> int:
    """The local date as a number (YYYYMMDD), kept in the state row's ``last_id``."""
    day = now.astimezone(ZoneInfo(tz)).date()
    return day.year * 10_000 + day.month * 100 + day.day


def run_daily(
    session: Session, *, now: datetime | None = None, tz: str = LOCAL_TZ, force: bool = False
) -> DailyOutcome:
    """Points expiry, then every member's tier, then coupon expiry, once per local day."""
    now = now or clock.now()
    today = _today(now, tz)
    done = session.scalar(select(AccrualState.last_id).where(AccrualState.name == "daily"))
    session.commit()
    if done == today and not force:
        return DailyOutcome(False, {})
    figures = {
        "points_expiry": expire_points(session, now=now),
        "tiers": evaluate(session, now=now).figures(),
        "coupons": {"expired": expire_coupons(session, now=now)},
    }
    store_figures(session, now=now, tz=tz)
    with write_transaction(session):
        state = session.get(AccrualState, "daily")
        if state is None:
            session.add(AccrualState(name="daily", last_id=today, updated_at=now))
        else:
            state.last_id = today
            state.updated_at = now
    log.info("loyalty daily run: %s", figures)
    return DailyOutcome(True, figures)


def members_count(session: Session) -> int:
    """How many members the programme has."""
    return int(session.scalar(select(func.count()).select_from(LoyaltyMember)) or 0)
