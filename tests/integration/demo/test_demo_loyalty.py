"""The demo membership: members from the demo shipments, a year of tier evaluations and
expiry, counter redemptions, coupons; the ledger equals the balances; loading twice adds
nothing."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from guanxi.core.db import make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.loyalty import seed_loyalty
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.models import Coupon, CouponTemplate, PointsEntry, TierChange


def test_demo_loyalty(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=300, seed=3, owner_ids=owners, duplicate_rate=0.0)
    with sm() as session:
        demo = seed_loyalty(session, seed=5)
        assert demo.members > 200
        assert demo.points > 0
        assert demo.redemptions > 0
        again = seed_loyalty(session, seed=5)
        assert again.members == 0  # once
        kinds = dict(
            session.execute(select(PointsEntry.kind, func.count()).group_by(PointsEntry.kind)).all()
        )
        assert set(kinds) >= {"earn", "redeem", "adjust", "bonus"}
        # What the demo reports is what the ledger holds.
        assert kinds["redeem"] == demo.redemptions
        earned = session.scalar(
            select(func.sum(PointsEntry.points)).where(PointsEntry.kind == "earn")
        )
        assert earned == demo.points
        assert session.scalar(select(func.count()).select_from(CouponTemplate)) == 5
        assert session.scalar(select(func.count()).select_from(TierChange)) > 0
        statuses = set(session.scalars(select(Coupon.status).distinct()))
        assert statuses <= {"issued", "redeemed", "void"}
        check = verify_balances(session)
        assert check.ok
        assert check.members == demo.members
