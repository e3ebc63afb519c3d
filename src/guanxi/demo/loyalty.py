"""Demo membership (会员): the demo shipments credited with points, a year of the daily
job's tier evaluations and points expiry (so the tier report has upgrades, grace periods,
downgrades and expired points month by month), agents spending members' points at the
counter, coupon templates, a gold-tier exclusive offer and a Double-11 coupon for the best
customers, some of them redeemed.

Everything goes through the loyalty services (audited), with the clock set to when each
step happened. Run once: nothing happens when members exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.errors import DomainError, NotFound
from guanxi.loyalty.accrual import accrue
from guanxi.loyalty.coupons import get_template, redeem_coupon, save_template, void_coupon
from guanxi.loyalty.jobs import expire_points
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.models import LoyaltyMember
from guanxi.loyalty.schemas import AdjustIn, BonusIn, CouponTemplateIn, IssueIn, RedeemIn
from guanxi.loyalty.service import adjust_points, grant_bonus, redeem_points
from guanxi.loyalty.tiers import evaluate
from guanxi.security.models import User

# The daily job's history is replayed every STEP_DAYS over the last HISTORY_DAYS.
HISTORY_DAYS = 390
STEP_DAYS = 15
# Redemptions at the counter per step (a share of members with enough points, capped).
REDEEM_SHARE = 0.03
REDEEM_CAP = 40


def _templates(ends: datetime) -> list[CouponTemplateIn]:
    """The programme's coupon templates (the care rules bring the birthday one)."""
    return [
        CouponTemplateIn.model_validate(t)
        for t in (
            {
                "code": "save15",
                "name_zh": "满100减15",
                "name_en": "15 off 100",
                "kind": "amount_off",
                "amount_off_fen": 1500,
                "min_spend_fen": 10_000,
                "valid_days": 90,
                "points_price": 800,
            },
            {
                "code": "gold-20off",
                "name_zh": "金卡专享8折券",
                "name_en": "Gold members: 20% off",
                "kind": "percent_off",
                "percent_off": 20,
                "valid_days": 60,
                "eligible_tiers": ["gold", "diamond"],
            },
            {
                "code": "free-insurance",
                "name_zh": "免费保价券",
                "name_en": "Free insured value",
                "kind": "free_service",
                "free_service": "insurance",
                "valid_days": 60,
                "points_price": 300,
            },
            {
                "code": "double11",
                "name_zh": "双十一寄件立减10元",
                "name_en": "Double 11: 10 off",
                "kind": "amount_off",
                "amount_off_fen": 1000,
                "min_spend_fen": 3000,
                "valid_from": ends - timedelta(days=30),
                "valid_until": ends + timedelta(days=20),
                "total_limit": 5000,
            },
            {
                "code": "apology20",
                "name_zh": "服务致歉券20元",
                "name_en": "Apology: 20 off",
                "kind": "amount_off",
                "amount_off_fen": 2000,
                "valid_days": 180,
            },
        )
    ]


@dataclass
class LoyaltyDemo:
    """What the demo did."""

    members: int = 0
    points: int = 0
    redemptions: int = 0
    coupons: int = 0
    coupons_used: int = 0
    tiers: dict[str, int] = field(default_factory=dict)


def seed_loyalty(
    session: Session, *, seed: int = 7, timezone: str = "Asia/Shanghai"
) -> LoyaltyDemo:
    """Load the demo programme (once)."""
    if session.scalar(select(func.count()).select_from(LoyaltyMember)):
        session.commit()
        return LoyaltyDemo()
    manager = session.scalar(select(User).where(User.username == "manager"))
    agent = session.scalar(select(User).where(User.username == "agent"))
    session.commit()
    if manager is None or agent is None:
        return LoyaltyDemo()
    rng = random.Random(seed)
    now = clock.now()
    result = LoyaltyDemo()
    with clock.frozen(now - timedelta(days=HISTORY_DAYS + 1)):
        for template in _templates(now):
            try:
                get_template(session, template.code)
                session.commit()
            except NotFound:
                session.rollback()
                save_template(session, template_in=template, actor=manager)
    accrued = accrue(session, now=now, tz=timezone)
    result.points = accrued.points
    # The daily job of the past year: points expiry, tier evaluation; the counter's
    # redemptions in between.
    start = now - timedelta(days=HISTORY_DAYS)
    zone = ZoneInfo(timezone)
    for step in range(HISTORY_DAYS // STEP_DAYS + 1):
        at = start + timedelta(days=step * STEP_DAYS)
        local = at.astimezone(zone).replace(hour=2, minute=0, second=0, microsecond=0)
        at = min(local.astimezone(UTC), now)
        expire_points(session, now=at)
        evaluate(session, now=at)
        result.redemptions += _counter(session, agent, rng, at + timedelta(hours=8))
    expire_points(session, now=now)
    evaluate(session, now=now)
    _corrections(session, manager, rng, now - timedelta(days=20))
    issued, used = _coupons(session, manager, agent, rng, now)
    result.coupons, result.coupons_used = issued, used
    result.members = int(session.scalar(select(func.count()).select_from(LoyaltyMember)) or 0)
    result.tiers = dict(
        session.execute(select(LoyaltyMember.tier, func.count()).group_by(LoyaltyMember.tier)).all()
    )
    session.commit()
    if not verify_balances(session).ok:  # pragma: no cover - the services keep it
        raise RuntimeError("demo loyalty: ledger and balances differ")
    return result


def _counter(session: Session, agent: User, rng: random.Random, at: datetime) -> int:
    """Members spending points for a shipment at an outlet."""
    rich = list(
        session.scalars(
            select(LoyaltyMember.customer_id)
            .where(LoyaltyMember.balance >= 500)
            .order_by(LoyaltyMember.customer_id)
        )
    )
    session.commit()
    picked = rng.sample(rich, min(len(rich), REDEEM_CAP, max(1, round(len(rich) * REDEEM_SHARE))))
    done = 0
    with clock.frozen(at):
        for n, cid in enumerate(picked):
            points = rng.choice((200, 300, 500))
            try:
                redeem_points(
                    session,
                    customer_id=cid,
                    redeem_in=RedeemIn(
                        points=points,
                        reference=f"网点兑换 {at:%Y%m%d}-{n:03d}",
                        key=f"demo:{at:%Y%m%d}:{cid}",
                    ),
                    actor=agent,
                )
                done += 1
            except DomainError:
                session.rollback()  # expired in the meantime: not enough left
    return done


def _corrections(session: Session, manager: User, rng: random.Random, at: datetime) -> None:
    """A few manual corrections and a goodwill bonus, as a supervisor makes them."""
    ids = list(
        session.scalars(select(LoyaltyMember.customer_id).order_by(LoyaltyMember.customer_id))
    )
    session.commit()
    with clock.frozen(at):
        for n, cid in enumerate(rng.sample(ids, min(5, len(ids)))):
            adjust_points(
                session,
                customer_id=cid,
                adjust_in=AdjustIn(
                    points=rng.choice((50, 100, 120)),
                    reason="补录线下寄件积分",
                    key=f"demo-fix-{n}",
                ),
                actor=manager,
            )
        for n, cid in enumerate(rng.sample(ids, min(5, len(ids)))):
            grant_bonus(
                session,
                customer_id=cid,
                bonus_in=BonusIn(points=200, reason="投诉处理满意回馈", key=f"demo-goodwill-{n}"),
                actor=manager,
            )


def _coupons(
    session: Session, manager: User, agent: User, rng: random.Random, now: datetime
) -> tuple[int, int]:
    """The gold-tier offer and Double 11 for the best customers; some used at the counter,
    one voided."""
    from guanxi.loyalty.audience import issue_to_audience

    issued = 0
    with clock.frozen(now - timedelta(days=25)):
        for tier in ("gold", "diamond"):
            try:
                issued += issue_to_audience(
                    session,
                    issue_in=IssueIn(
                        template_code="gold-20off", source_key="2026-金卡回馈", tier=tier
                    ),
                    actor=manager,
                ).issued
            except DomainError:
                session.rollback()
        try:
            issued += issue_to_audience(
                session,
                issue_in=IssueIn(
                    template_code="double11", source_key="2026-双十一", segment="champions"
                ),
                actor=manager,
            ).issued
        except DomainError:
            session.rollback()  # no analytics results yet
    from guanxi.loyalty.models import Coupon

    codes = list(session.scalars(select(Coupon.code).order_by(Coupon.id)))
    session.commit()
    used = 0
    with clock.frozen(now - timedelta(days=3)):
        for n, code in enumerate(codes):
            if rng.random() < 0.35:
                try:
                    redeem_coupon(
                        session,
                        code=code,
                        reference=f"SF{now:%y%m}{n:06d}",
                        amount_fen=rng.randint(3000, 30_000),
                        actor=agent,
                    )
                    used += 1
                except DomainError:
                    session.rollback()
        if codes:
            try:
                void_coupon(session, code=codes[-1], reason="重复发放，作废", actor=manager)
            except DomainError:
                session.rollback()
    return issued, used
