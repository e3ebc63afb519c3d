"""The ``forecast`` step on a small fixture: the daily series it stores (local days, missing
days as 0, totals, shipments without a province), the forecast rows with their band and
expected tickets (rates hand-computed), the backtest in its metrics, and the read function
— on SQLite (DuckDB over the snapshot), and on PostgreSQL through the snapshot and in
place, all giving the same rows."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics.forecast import forecast_members, forecast_series
from guanxi.analytics.models import AnalyticsSetting, ForecastPoint
from guanxi.analytics.policy import POLICY_KEY, AnalyticsPolicy, ForecastPolicy
from guanxi.core.errors import ValidationFailed
from guanxi.shipments.models import Shipment
from tests.integration.analytics.conftest import AnalyticsDb, local

AS_OF = local(2026, 3, 20, 10, 0)
FIRST_DAY = date(2026, 3, 20)
START = date(2026, 1, 1)
DAYS = (FIRST_DAY - START).days  # 78 days of history
HORIZON = 14
POLICY = AnalyticsPolicy(
    forecast=ForecastPolicy(
        horizon_days=HORIZON, backtest_origins=2, backtest_step_days=7, min_tickets=3
    )
)
# Shipments of a day are spread over these local times: 00:30 is the previous day in UTC,
# 23:30 the same — both count on the local day.
TIMES = ((0, 30), (12, 0), (23, 30))
UNKNOWN = "unknown"


def _plan() -> list[tuple[date, str | None, str, int]]:
    """(local day, origin province, service type, shipments) of the fixture."""
    plan: list[tuple[date, str | None, str, int]] = []
    for t in range(DAYS):
        day = START + timedelta(days=t)
        weekend = day.weekday() >= 5
        plan.append((day, "广东省", "express", 1 if weekend else 2 + t % 3))
        plan.append((day, "广东省", "standard", 1))
        if day.weekday() == 0:
            plan.append((day, "浙江省", "standard", 3))
        if t % 10 == 0:
            plan.append((day, None, "express", 1))
    return plan


def _expected_daily() -> dict[tuple[str, str], list[float]]:
    """The series by hand: every day of the history, 0 where nothing shipped."""
    series: dict[tuple[str, str], list[float]] = {}
    for day, region, service, n in _plan():
        r = region or UNKNOWN
        for key in ((r, service), (r, ""), ("", service), ("", "")):
            series.setdefault(key, [0.0] * DAYS)[(day - START).days] += n
    return series


@pytest.fixture(scope="module")
def filled(analytics_db: AnalyticsDb) -> dict[str, Any]:
    rows = analytics_db.rows
    customer = rows.customer(local(2025, 12, 1, 9, 0))
    records: list[dict[str, Any]] = []
    waybills: dict[tuple[str | None, str], str] = {}
    sid = 100_000

    def ship(at: datetime, region: str | None, service: str) -> str:
        nonlocal sid
        sid += 1
        waybill = f"GXF{sid:09d}"
        records.append(
            {
                "id": sid,
                "kind": "waybill",
                "waybill_no": waybill,
                "customer_id": customer,
                "service_type": service,
                "status": "delivered",
                "origin_province": region,
                "fee_fen": 1000,
                "insured_value_fen": 0,
                "cod_amount_fen": 0,
                "door_delivery": False,
                "signed_receipt_return": False,
                "is_damaged": False,
                "is_lost": False,
                "created_at": at,
            }
        )
        return waybill

    for day, region, service, n in _plan():
        for i in range(n):
            hour, minute = TIMES[i % len(TIMES)]
            waybills[(region, service)] = ship(
                local(day.year, day.month, day.day, hour, minute), region, service
            )
    # The cut-off day itself (incomplete) and after the cut-off: not history.
    ship(local(2026, 3, 20, 8, 0), "广东省", "express")
    ship(AS_OF + timedelta(hours=1), "广东省", "express")
    with analytics_db.engine.begin() as conn:
        conn.execute(insert(Shipment), records)
        conn.execute(
            insert(AnalyticsSetting), [{"key": POLICY_KEY, "value": POLICY.model_dump_json()}]
        )
    # Tickets within the rate window (the 8 weeks from 2026-01-23): three about 广东省
    # express waybills, one about a 浙江省 standard one, two without a waybill; one more
    # before the window (an actual, not in the rate).
    gd, zj = waybills[("广东省", "express")], waybills[("浙江省", "standard")]
    for at, waybill in (
        (local(2026, 3, 2, 10, 0), gd),
        (local(2026, 3, 10, 0, 20), gd),
        (local(2026, 3, 19, 23, 50), gd),
        (local(2026, 2, 10, 9, 0), zj),
        (local(2026, 3, 1, 9, 0), None),
        (local(2026, 3, 18, 9, 0), None),
        (local(2026, 1, 5, 9, 0), gd),
    ):
        rows.ticket(customer, at, waybill_no=waybill)
    return {"waybills": waybills}


def _rates() -> dict[tuple[str, str], float]:
    """Tickets per shipment over the 56 days before the first day, by hand: 6 tickets, 4
    of them linked (scale 6 / 4); a series needs 3 linked tickets for its own rate."""
    window = FIRST_DAY - timedelta(days=56)
    shipped: Counter[tuple[str, str]] = Counter()
    for day, region, service, n in _plan():
        if day >= window:
            r = region or UNKNOWN
            for key in ((r, service), (r, ""), ("", service), ("", "")):
                shipped[key] += n
    overall = 6 / shipped[("", "")]
    gd_express = 3 / shipped[("广东省", "express")] * 1.5
    return {
        ("", ""): overall,
        ("", "express"): 3 / shipped[("", "express")] * 1.5,
        # Standard has 1 linked ticket: too few, so the overall rate.
        ("", "standard"): overall,
        ("广东省", ""): 3 / shipped[("广东省", "")] * 1.5,
        ("广东省", "express"): gd_express,
        ("广东省", "standard"): overall,
        ("浙江省", ""): overall,
        ("浙江省", "standard"): overall,
        (UNKNOWN, ""): overall,
        # Falls back to its service type's rate: express, all regions.
        (UNKNOWN, "express"): 3 / shipped[("", "express")] * 1.5,
    }


def _points(analytics_db: AnalyticsDb, run_id: int) -> dict[tuple[str, str], list[Any]]:
    with Session(analytics_db.engine) as session:
        found = session.scalars(
            select(ForecastPoint)
            .where(ForecastPoint.run_id == run_id)
            .order_by(ForecastPoint.region, ForecastPoint.service_type, ForecastPoint.day)
        ).all()
    out: dict[tuple[str, str], list[Any]] = {}
    for p in found:
        out.setdefault((p.region, p.service_type), []).append(
            (p.day, p.expected, p.low, p.high, p.expected_tickets)
        )
    return out


RESULTS: dict[str, dict[tuple[str, str], list[Any]]] = {}


def _run_and_check(analytics_db: AnalyticsDb, settings: Any) -> dict[tuple[str, str], Any]:
    summary = runner.run(analytics_db.engine, settings, only=["forecast"], force=True, as_of=AS_OF)
    assert summary.steps == {"forecast": "succeeded"}
    points = _points(analytics_db, summary.run_id)
    expected = _expected_daily()
    assert set(points) == set(expected)
    rates = _rates()
    for key, daily in expected.items():
        rows = points[key]
        assert len(rows) == DAYS + HORIZON
        past, future = rows[:DAYS], rows[DAYS:]
        assert [r[0] for r in past] == [START + timedelta(days=t) for t in range(DAYS)]
        assert [r[1] for r in past] == daily, key
        assert all(r[1] == r[2] == r[3] for r in past)
        assert [r[0] for r in future] == [FIRST_DAY + timedelta(days=k) for k in range(HORIZON)]
        for day, value, low, high, tickets in future:
            assert 0 <= low <= value <= high, (key, day)
            assert tickets == pytest.approx(value * rates[key], abs=2e-3), (key, day)
    metrics = summary.metrics["forecast"]
    assert metrics["first_day"] == "2026-03-20"
    assert metrics["series"] == 10
    assert metrics["history_days"] == DAYS
    backtest = metrics["backtest"]
    assert backtest["origins"] == ["2026-03-05", "2026-02-26"]
    assert backtest["horizon_days"] == HORIZON
    for part in ("all_series", "total"):
        assert backtest[part]["model"]["mape"] is not None
        assert backtest[part]["seasonal_naive"]["mape"] is not None
        # Less than a year of history: no year-ago baseline.
        assert backtest[part]["seasonal_naive_year"] is None
    assert metrics["ticket_rate"] == pytest.approx(rates[("", "")])
    assert metrics["series_with_own_ticket_rate"] == 4
    # Actual tickets by local day: the whole counts all, 广东省 express its waybill's.
    tickets_past = {r[0]: r[4] for r in points[("", "")][:DAYS]}
    assert tickets_past[date(2026, 3, 19)] == 1  # 23:50 local, 15:50 UTC
    assert tickets_past[date(2026, 3, 10)] == 1  # 00:20 local, the 9th in UTC
    assert sum(tickets_past.values()) == 7
    assert sum(r[4] for r in points[("广东省", "express")][:DAYS]) == 4
    assert sum(r[4] for r in points[("浙江省", "standard")][:DAYS]) == 1
    return points


def test_forecast_step_stores_the_series_forecast_and_tickets(
    analytics_db: AnalyticsDb, filled: dict[str, Any]
) -> None:
    points = _run_and_check(analytics_db, analytics_db.settings)
    RESULTS[analytics_db.backend] = points
    # The model is deterministic: another run writes the same numbers.
    assert _run_and_check(analytics_db, analytics_db.settings) == points


def test_postgresql_in_place_gives_the_same_rows(
    analytics_db: AnalyticsDb, filled: dict[str, Any]
) -> None:
    if analytics_db.backend != "postgresql":
        pytest.skip("in place is PostgreSQL only")
    in_place = _run_and_check(analytics_db, analytics_db.in_place())
    assert in_place == RESULTS["postgresql"]
    # And the same as SQLite's run of the same fixture, when it ran in this session.
    if "sqlite" in RESULTS:
        assert in_place == RESULTS["sqlite"]


def test_spark_gives_the_same_rows(analytics_db: AnalyticsDb, filled: dict[str, Any]) -> None:
    if analytics_db.backend != "sqlite":
        pytest.skip("one Spark session is enough: it reads the same snapshot")
    pytest.importorskip("pyspark")
    # DuckDB's rows of this fixture (computed here when this test runs on its own).
    duck = RESULTS.get("sqlite") or _run_and_check(analytics_db, analytics_db.settings)
    spark = analytics_db.settings.model_copy(update={"analytics_engine": "spark"})
    assert _run_and_check(analytics_db, spark) == duck


def test_read_function_serves_one_series(analytics_db: AnalyticsDb, filled: dict[str, Any]) -> None:
    runner.run(
        analytics_db.engine, analytics_db.settings, only=["forecast"], force=True, as_of=AS_OF
    )
    expected = _expected_daily()
    with Session(analytics_db.engine) as session:
        whole = forecast_series(session)
        assert whole is not None
        assert whole.first_day == FIRST_DAY
        assert [a.shipments for a in whole.actuals] == expected[("", "")]
        assert [f.day for f in whole.forecast][0] == FIRST_DAY
        assert len(whole.forecast) == HORIZON
        assert whole.metrics["backtest"]["origins"] == ["2026-03-05", "2026-02-26"]
        part = forecast_series(session, "广东省", "express")
        assert part is not None
        assert [a.shipments for a in part.actuals] == expected[("广东省", "express")]
        assert forecast_members(session) == (
            sorted(["广东省", "浙江省", UNKNOWN]),
            ["express", "standard"],
        )
        with pytest.raises(ValidationFailed) as refused:
            forecast_series(session, "海南省")
        assert refused.value.errors[0].loc == ("region",)
        with pytest.raises(ValidationFailed) as refused:
            forecast_series(session, None, "drone")
        assert refused.value.errors[0].loc == ("service_type",)
