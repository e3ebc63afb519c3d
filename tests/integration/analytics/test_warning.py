"""Early warning: a complaint spike in a region is raised once, with its tickets, and
managers are told; a busy day whose complaints rise with its volume is not."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics.models import Alert
from guanxi.analytics.warning import Finding, detect
from guanxi.notify.models import Notification
from guanxi.security.models import User
from guanxi.shipments.models import Shipment
from tests.integration.analytics.conftest import AnalyticsDb, local

AS_OF = local(2026, 6, 30, 22, 0)
SPIKE_DAY = date(2026, 6, 30)
BUSY_DAY = date(2026, 6, 29)


def test_detect_flags_only_a_rise_beyond_volume_and_chance() -> None:
    days = [date(2026, 6, 1) + timedelta(days=i) for i in range(30)]
    rows = [{"day": d, "member": "广东省", "cases": 2, "volume": 1000} for d in days[:-2]]
    # Day 29: five times the volume and five times the complaints: the usual rate.
    rows.append({"day": days[-2], "member": "广东省", "cases": 10, "volume": 5000})
    # Day 30: the usual volume, six times the complaints.
    rows.append({"day": days[-1], "member": "广东省", "cases": 12, "volume": 1000})
    found = detect(rows, "complaints", "region", [days[-1], days[-2]])
    assert len(found) == 1
    (f,) = found
    assert (f.member, f.day, f.observed) == ("广东省", days[-1], 12)
    # 28 days before day 30: 27 × 2 + 10 cases over 27 × 1000 + 5000 shipments.
    assert f.expected == pytest.approx((64 + 0.5) / 32_000 * 1000)
    assert f.p_value < 1e-3
    assert isinstance(f, Finding)


def test_detect_needs_a_minimum_count() -> None:
    days = [date(2026, 6, 1) + timedelta(days=i) for i in range(30)]
    rows = [{"day": d, "member": "x", "cases": 0, "volume": 1000} for d in days[:-1]]
    rows.append({"day": days[-1], "member": "x", "cases": 4, "volume": 1000})
    assert detect(rows, "complaints", "region", [days[-1]]) == []


@pytest.fixture(scope="module")
def spike(analytics_db: AnalyticsDb) -> list[int]:
    rows = analytics_db.rows
    customer = rows.customer(local(2025, 1, 1, 9, 0))
    shipments = []
    sid = 10_000
    for back in range(30):
        day = SPIKE_DAY - timedelta(days=back)
        volume = 500 if day == BUSY_DAY else 100
        for i in range(volume):
            sid += 1
            shipments.append(
                {
                    "id": sid,
                    "kind": "waybill",
                    "waybill_no": f"GXW{sid:09d}",
                    "customer_id": customer,
                    "service_type": "standard",
                    "status": "delivered",
                    "dest_province": "广东省",
                    "origin_province": "浙江省",
                    "fee_fen": 1000,
                    "insured_value_fen": 0,
                    "cod_amount_fen": 0,
                    "door_delivery": False,
                    "signed_receipt_return": False,
                    "is_damaged": False,
                    "is_lost": False,
                    "created_at": local(day.year, day.month, day.day, 9, 0) + timedelta(seconds=i),
                    "promised_at": local(day.year, day.month, day.day, 9, 0) + timedelta(days=3),
                    "delivered_at": local(day.year, day.month, day.day, 9, 0) + timedelta(days=2),
                }
            )
    with analytics_db.engine.begin() as conn:
        conn.execute(insert(Shipment), shipments)
        conn.execute(
            insert(User),
            [
                {
                    "username": "boss",
                    "display_name": "经理",
                    "role": "manager",
                    "password_hash": "x",
                    "is_active": True,
                },
                {
                    "username": "clerk",
                    "display_name": "客服",
                    "role": "agent",
                    "password_hash": "x",
                    "is_active": True,
                },
            ],
        )
    spiking: list[int] = []
    for back in range(30):
        day = SPIKE_DAY - timedelta(days=back)
        count = {SPIKE_DAY: 9, BUSY_DAY: 5}.get(day, 1)
        for i in range(count):
            tid = rows.ticket(
                customer,
                local(day.year, day.month, day.day, 10, 0) + timedelta(minutes=i),
                region="广东省",
                category="delay.transit",
            )
            if day == SPIKE_DAY:
                spiking.append(tid)
    return spiking


def test_the_step_raises_the_spike_once_and_tells_managers(
    analytics_db: AnalyticsDb, spike: list[int]
) -> None:
    first = runner.run(
        analytics_db.engine, analytics_db.settings, only=["warning"], force=True, as_of=AS_OF
    )
    assert first.steps == {"warning": "succeeded"}
    assert first.metrics["warning"]["slices"] == [
        "complaints:category:delay",
        "complaints:region:广东省",
    ]
    again = runner.run(
        analytics_db.engine, analytics_db.settings, only=["warning"], force=True, as_of=AS_OF
    )
    assert (first.metrics["warning"]["new"], again.metrics["warning"]["new"]) == (2, 0)
    with Session(analytics_db.engine) as session:
        alerts = session.scalars(select(Alert).order_by(Alert.dimension)).all()
        boss = session.scalar(select(User.id).where(User.username == "boss"))
        told = session.scalars(
            select(Notification.user_id).where(Notification.kind == "early_warning")
        ).all()
    assert [(a.kind, a.dimension, a.member, a.day, a.observed) for a in alerts] == [
        ("complaints", "category", "delay", SPIKE_DAY, 9.0),
        ("complaints", "region", "广东省", SPIKE_DAY, 9.0),
    ]
    assert json.loads(alerts[1].evidence) == spike
    # The expected count: (28 days × 1 + the busy day's 5 − … ) — see detect(); here the
    # 28 days before the spike hold 32 complaints over 3,200 shipments.
    assert alerts[1].expected == pytest.approx((32 + 0.5) / 3_200 * 100)
    assert told == [boss, boss]
