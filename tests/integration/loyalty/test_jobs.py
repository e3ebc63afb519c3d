"""The worker's loyalty jobs on real commits: accrual then upgrades, the daily run once
per local day (points expiry, tiers, coupon expiry, the report's figures)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.loyalty.models import LoyaltyMember, PointsEntry
from guanxi.loyalty.report import tier_report
from guanxi.worker import loyalty_accrual, loyalty_daily
from tests.conftest import settings_for

from .conftest import add_shipment

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


def test_worker_jobs(committed_engine: Engine, tmp_path: Path) -> None:
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        cid = create_customer(
            s, customer_in=CustomerCreate(name="作业客户"), actor=Actor.system("t")
        ).id
        add_shipment(s, cid, fee_fen=120_000, at=T0)  # ¥1,200: gold
        s.commit()
    with clock.frozen(T0 + timedelta(minutes=5)):
        figures = loyalty_accrual(committed_engine, settings)
    assert (figures["entries"], figures["points"], figures["members"], figures["upgrades"]) == (
        1,
        1200,
        1,
        1,
    )
    with sm() as s:
        assert s.scalar(select(LoyaltyMember.tier)) == "gold"
    # Twenty-five months on, the daily run expires the points (end of January 2028 local),
    # starts the grace period and leaves the report's figures; once a day only.
    later = datetime(2028, 2, 2, 2, 0, tzinfo=UTC)
    with clock.frozen(later):
        first = loyalty_daily(committed_engine, settings)
        second = loyalty_daily(committed_engine, settings)
    assert first["ran"] is True
    assert first["points_expiry"] == {"members": 1, "points": 1200}
    assert first["tiers"]["grace_started"] == 1
    assert second == {"ran": False}
    with sm() as s:
        assert s.scalar(select(LoyaltyMember.balance)) == 0
        assert s.scalar(select(func.count()).where(PointsEntry.kind == "expire")) == 1
        report = tier_report(s, now=later + timedelta(hours=1))
        # The figures are the daily run's (cached), February 2028's expiry included.
        assert report.figures_as_of == later
        assert report.months[-1].month == "2028-02"
        assert report.months[-1].expired == 1200
