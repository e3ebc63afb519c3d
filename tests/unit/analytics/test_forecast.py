"""The volume forecast's calendar, series, baselines, error measures, band, ticket rates,
and the model against seasonal-naive on a series with planted weekly and holiday effects.

Calendar facts are the State Council's published schedules: the 2025 Spring Festival break
is 28 January – 4 February (除夕 a holiday since 2025) with 26 January and 8 February worked;
the 2026 National Day break is 1–7 October with 20 September and 10 October worked, and
Mid-Autumn 2026 (25 September, a Friday) makes a three-day weekend.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar  # type: ignore[import-untyped]
import numpy as np
import pytest

from guanxi.analytics import calendar, forecast
from guanxi.analytics.calendar import HOLIDAY_CODE, HolidayBreak
from guanxi.analytics.engine import DuckWorkspace
from guanxi.analytics.policy import ForecastPolicy

SF = HOLIDAY_CODE["spring_festival"]
ND = HOLIDAY_CODE["national_day"]
MA = HOLIDAY_CODE["mid_autumn"]


def _regs(first: date, last: date) -> dict[date, dict[str, float]]:
    days = (last - first).days + 1
    regs = calendar.regressors(first, days)
    return {
        first + timedelta(days=i): {name: float(values[i]) for name, values in regs.items()}
        for i in range(days)
    }


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ----------------------------------------------------------------------------- calendar


def test_spring_festival_2025_break_is_28_january_to_4_february() -> None:
    regs = _regs(date(2025, 1, 20), date(2025, 2, 12))
    brk = [d for d, r in regs.items() if r["holiday"] == SF]
    assert brk == [date(2025, 1, 28) + timedelta(days=i) for i in range(8)]
    assert all(regs[d]["day_off"] == 1 for d in brk)
    assert [regs[d]["break_day"] for d in brk] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert {regs[d]["break_length"] for d in brk} == {8}
    # The Sunday before and the Saturday after are worked (调休).
    for worked in (date(2025, 1, 26), date(2025, 2, 8)):
        assert regs[worked]["adjusted_workday"] == 1
        assert regs[worked]["day_off"] == 0
    assert regs[date(2025, 1, 25)]["day_off"] == 1  # an ordinary Saturday
    assert regs[date(2025, 1, 25)]["adjusted_workday"] == 0
    # Lunar new year (正月初一) is 29 January 2025.
    assert regs[date(2025, 1, 29)]["sf_offset"] == 0
    assert regs[date(2025, 1, 20)]["sf_offset"] == -9
    assert regs[date(2025, 2, 12)]["sf_offset"] == 14
    # Approach and aftermath.
    assert regs[date(2025, 1, 27)]["days_to_break"] == 1
    assert regs[date(2025, 1, 21)]["days_to_break"] == 7
    assert regs[date(2025, 1, 20)]["days_to_break"] == 0
    assert regs[date(2025, 2, 5)]["days_after_break"] == 1
    assert regs[date(2025, 2, 11)]["days_after_break"] == 7
    assert regs[date(2025, 2, 12)]["days_after_break"] == 0
    assert calendar.lunar_new_year(2025) == date(2025, 1, 29)


def test_national_day_2026_and_mid_autumn() -> None:
    regs = _regs(date(2026, 9, 18), date(2026, 10, 12))
    golden = [d for d, r in regs.items() if r["holiday"] == ND]
    assert golden == [date(2026, 10, 1) + timedelta(days=i) for i in range(7)]
    mid_autumn = [d for d, r in regs.items() if r["holiday"] == MA]
    assert mid_autumn == [date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)]
    assert [d for d, r in regs.items() if r["adjusted_workday"] == 1] == [
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert regs[date(2026, 10, 8)]["day_off"] == 0
    assert regs[date(2026, 10, 8)]["days_after_break"] == 1
    assert regs[date(2026, 9, 30)]["days_to_break"] == 1
    # Between the two breaks the nearer one counts: 28 September is 1 day after
    # Mid-Autumn and 3 days before National Day.
    assert regs[date(2026, 9, 28)]["days_after_break"] == 1
    assert regs[date(2026, 9, 28)]["days_to_break"] == 3
    assert HolidayBreak("national_day", date(2026, 10, 1), date(2026, 10, 7)) in (
        calendar.holiday_breaks(2026, 2026)
    )


def test_shopping_festivals() -> None:
    regs = _regs(date(2026, 5, 30), date(2026, 6, 22))
    assert [d for d, r in regs.items() if r["ramp_618"] == 1] == [
        date(2026, 6, 1) + timedelta(days=i) for i in range(18)
    ]
    offsets = {d: r["off_618"] for d, r in regs.items()}
    assert math.isnan(offsets[date(2026, 5, 31)])
    assert offsets[date(2026, 6, 1)] == -17
    assert offsets[date(2026, 6, 18)] == 0
    assert offsets[date(2026, 6, 20)] == 2
    assert math.isnan(offsets[date(2026, 6, 21)])

    regs = _regs(date(2025, 10, 30), date(2025, 12, 20))
    assert [d for d, r in regs.items() if r["ramp_d11"] == 1] == [
        date(2025, 11, 1) + timedelta(days=i) for i in range(11)
    ]
    assert [d for d, r in regs.items() if r["after_d11"] == 1] == [
        date(2025, 11, 12) + timedelta(days=i) for i in range(7)
    ]
    assert math.isnan(regs[date(2025, 10, 31)]["off_d11"])
    assert regs[date(2025, 11, 1)]["off_d11"] == -10
    assert regs[date(2025, 11, 11)]["off_d11"] == 0
    assert regs[date(2025, 11, 20)]["off_d11"] == 9
    assert math.isnan(regs[date(2025, 11, 21)]["off_d11"])
    assert regs[date(2025, 12, 12)]["off_d12"] == 0
    assert regs[date(2025, 12, 8)]["off_d12"] == -4
    assert math.isnan(regs[date(2025, 12, 7)]["off_d12"])
    assert regs[date(2025, 11, 11)]["month"] == 11
    assert regs[date(2025, 11, 11)]["dow"] == 1  # a Tuesday


def test_working_days_match_a_second_source() -> None:
    """Every day of 2024–2026: day off exactly when chinese_calendar says it is not a
    working day (the holidays package and the 调休 list agree with the notices)."""
    first = date(2024, 1, 1)
    regs = calendar.regressors(first, (date(2026, 12, 31) - first).days + 1)
    wrong = [
        first + timedelta(days=i)
        for i in range(len(regs["day_off"]))
        if bool(regs["day_off"][i]) == chinese_calendar.is_workday(first + timedelta(days=i))
    ]
    assert wrong == []


def test_future_years_know_their_lunar_new_year() -> None:
    # Beyond the published schedules the break follows the statutory days from the lunar
    # calendar (正月初一 2027-02-06, 2028-01-26).
    assert calendar.lunar_new_year(2027) == date(2027, 2, 6)
    assert calendar.lunar_new_year(2028) == date(2028, 1, 26)
    regs = _regs(date(2027, 2, 1), date(2027, 2, 12))
    assert regs[date(2027, 2, 6)]["holiday"] == SF
    assert regs[date(2027, 2, 6)]["sf_offset"] == 0


# ----------------------------------------------------------------------------- series


def test_panel_fills_missing_days_and_adds_totals() -> None:
    d0 = date(2026, 1, 5)
    panel = forecast.build_panel(
        [d0, d0, d0 + timedelta(days=2), d0 + timedelta(days=9)],
        ["广东省", "浙江省", "广东省", "广东省"],
        ["express", "standard", "express", "express"],
        [3, 4, 5, 7],
        d0,
        4,
    )
    rows = {key: panel.y[i].tolist() for i, key in enumerate(panel.keys)}
    assert rows == {
        ("", ""): [7, 0, 5, 0],
        ("", "express"): [3, 0, 5, 0],
        ("", "standard"): [4, 0, 0, 0],
        ("广东省", ""): [3, 0, 5, 0],
        ("广东省", "express"): [3, 0, 5, 0],
        ("浙江省", ""): [4, 0, 0, 0],
        ("浙江省", "standard"): [4, 0, 0, 0],
    }
    # Pairs that never shipped are no series (广东省 standard, 浙江省 express).
    assert ("广东省", "standard") not in panel.keys


def test_seasonal_naive_repeats_the_last_week_and_last_year() -> None:
    y = np.arange(400, dtype=float)[None, :]
    got = forecast.seasonal_naive(y, 20, 10)[0].tolist()
    # Day 21 (k=1) takes day 14; day 27 (k=7) day 20; day 28 (k=8) day 14 again.
    assert got == [14, 15, 16, 17, 18, 19, 20, 14, 15, 16]
    assert forecast.seasonal_naive_year(y, 390, 3)[0].tolist() == [27, 28, 29]
    assert np.isnan(forecast.seasonal_naive_year(y, 300, 2)).all()
    assert np.isnan(forecast.seasonal_naive(y, 3, 1)).all()


def test_error_measures() -> None:
    actual = np.array([10.0, 20.0, 0.0, 0.0, 5.0])
    model = np.array([12.0, 15.0, 0.0, 2.0, np.nan])
    # MAPE: days with actual > 0 and a forecast: |2|/10, |5|/20 -> (0.2 + 0.25) / 2.
    assert forecast.mape(actual, model) == pytest.approx(22.5)
    # sMAPE: 2*2/22, 2*5/35, 0 (0/0), 2*2/2 over 4 days.
    assert forecast.smape(actual, model) == pytest.approx((4 / 22 + 10 / 35 + 0 + 2) / 4 * 100)
    # WAPE: (2 + 5 + 0 + 2) / 30.
    assert forecast.wape(actual, model) == pytest.approx(30.0)
    assert forecast.mape(np.zeros(3), np.ones(3)) is None
    assert forecast.improvement(30.0, 40.0) == pytest.approx(25.0)
    assert forecast.improvement(None, 40.0) is None


def test_band_from_error_quantiles_and_poisson_fallback() -> None:
    quantiles = {
        "band": 0.8,
        "edges": [10.0],
        "buckets": [(-0.5, 0.25), (-0.1, 0.2)],
    }
    low, high = forecast.apply_band(np.array([3.0, 99.0]), quantiles)
    assert low.tolist() == pytest.approx([4 * math.exp(-0.5) - 1, 100 * math.exp(-0.1) - 1])
    assert high.tolist() == pytest.approx([4 * math.exp(0.25) - 1, 100 * math.exp(0.2) - 1])
    # Without a backtest: the Poisson 10 % / 90 % quantiles of the expected count.
    low, high = forecast.apply_band(np.array([4.0]), None)
    assert (low[0], high[0]) == (2.0, 7.0)


def test_ticket_rates_fall_back_from_series_to_service_type_to_overall() -> None:
    keys = [
        ("", ""),
        ("", "express"),
        ("", "standard"),
        ("A", ""),
        ("A", "express"),
        ("A", "standard"),
        ("B", ""),
        ("B", "standard"),
    ]
    shipments = np.array([1000.0, 400, 600, 700, 300, 400, 300, 300])
    # 60 of the 80 tickets name a waybill.
    linked = {("A", "express"): 30.0, ("A", "standard"): 25.0, ("B", "standard"): 5.0}
    rates, own = forecast.ticket_rates(keys, shipments, linked, 80.0, min_tickets=20)
    scale = 80 / 60
    assert rates.tolist() == pytest.approx(
        [
            80 / 1000,  # all tickets over all shipments
            30 / 400 * scale,  # express: 30 linked
            30 / 600 * scale,  # standard: 25 + 5 linked
            55 / 700 * scale,  # A
            30 / 300 * scale,  # A express: its own
            25 / 400 * scale,  # A standard: its own
            80 / 1000,  # B: 5 linked, too few -> overall
            30 / 600 * scale,  # B standard: too few -> standard, all regions
        ]
    )
    assert own.tolist() == [True, True, True, True, True, True, False, False]


# ----------------------------------------------------------------------------- the model


def _planted(seed: int = 7) -> forecast.Panel:
    """Eight series from 2024-01-01 to 2026-03-09: weekly rhythm, holiday breaks at half
    volume, the Spring Festival weeks at 30 %, Double 11 at 2.5 times, Poisson noise."""
    start, days = date(2024, 1, 1), (date(2026, 3, 10) - date(2024, 1, 1)).days
    regs = calendar.regressors(start, days)
    weekly = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5])[regs["dow"].astype(int)]
    effect = weekly * np.where(regs["holiday"] > 0, 0.5, 1.0)
    sf = np.nan_to_num(regs["sf_offset"], nan=99)
    effect = np.where((sf >= -7) & (sf <= 10), 0.3 * weekly, effect)
    d11 = np.nan_to_num(regs["off_d11"], nan=99)
    effect = np.where((d11 >= -1) & (d11 <= 2), 2.5 * effect, effect)
    rng = np.random.default_rng(seed)
    day_list, regions, services, counts = [], [], [], []
    for r, region in enumerate(("A", "B", "C", "D")):
        for s, service in enumerate(("express", "standard")):
            base = (60.0, 25.0, 10.0, 4.0)[r] * (1.0, 2.0)[s]
            values = rng.poisson(base * effect)
            for t in np.nonzero(values)[0]:
                day_list.append(start + timedelta(days=int(t)))
                regions.append(region)
                services.append(service)
                counts.append(float(values[t]))
    return forecast.build_panel(day_list, regions, services, counts, start, days)


@pytest.fixture(scope="module")
def planted() -> forecast.Panel:
    return _planted()


@pytest.fixture(scope="module")
def planted_backtest(planted: forecast.Panel) -> forecast.Backtest:
    return forecast.backtest(planted, 28, origins=3, step=14, seed=3, max_rows=40_000)


def test_backtest_is_reproducible_for_a_seed(
    planted: forecast.Panel, planted_backtest: forecast.Backtest
) -> None:
    again = forecast.backtest(planted, 28, origins=3, step=14, seed=3, max_rows=40_000)
    assert again.origins == planted_backtest.origins
    assert np.array_equal(again.model, planted_backtest.model)
    assert np.array_equal(again.naive, planted_backtest.naive)
    assert again.metrics() == planted_backtest.metrics()


def test_backtest_origins_leave_the_horizon_to_score(
    planted: forecast.Panel, planted_backtest: forecast.Backtest
) -> None:
    last = planted.day(planted.days - 1)  # 2026-03-09
    assert planted_backtest.origins == [
        last - timedelta(days=28),
        last - timedelta(days=42),
        last - timedelta(days=56),
    ]
    # The actuals are the panel's days after each origin.
    assert np.array_equal(
        planted_backtest.actual[:, 0], planted.y[:, planted.days - 28 : planted.days]
    )


def test_forecast_beats_seasonal_naive_on_planted_effects(
    planted_backtest: forecast.Backtest,
) -> None:
    """The windows span the 2026 Spring Festival (break 15–23 February): the model knows
    it is coming, last week's copy does not."""
    m = planted_backtest.metrics()["all_series"]
    assert m["model"]["mape"] <= 0.8 * m["seasonal_naive"]["mape"]
    assert m["model"]["wape"] <= 0.6 * m["seasonal_naive"]["wape"]
    # On the break itself, the total's forecast is near the planted 30 % of normal.
    bt = planted_backtest
    whole = bt.keys.index(("", ""))
    j = 1  # origin 2026-01-26: the break is 20–28 days ahead
    days = [bt.origins[j] + timedelta(days=k + 1) for k in range(bt.horizon)]
    brk = [k for k, d in enumerate(days) if date(2026, 2, 16) <= d <= date(2026, 2, 20)]
    assert len(brk) == 5
    ratio = bt.model[whole, j, brk].sum() / bt.actual[whole, j, brk].sum()
    assert 0.75 <= ratio <= 1.3
    naive_ratio = bt.naive[whole, j, brk].sum() / bt.actual[whole, j, brk].sum()
    assert naive_ratio > 2.5


def test_short_history_falls_back_to_seasonal_naive() -> None:
    panel = forecast.build_panel(
        [date(2026, 1, 1) + timedelta(days=i) for i in range(20)],
        ["A"] * 20,
        ["express"] * 20,
        list(range(1, 21)),
        date(2026, 1, 1),
        20,
    )
    prep = forecast._Prepared.of(panel, 8)
    got = forecast.fit_predict(prep, 19, 7)
    assert got[0].tolist() == [14, 15, 16, 17, 18, 19, 20]
    bt = forecast.backtest(panel, 7)
    assert bt.origins == []
    assert bt.metrics() == {"origins": [], "horizon_days": 7}


def test_a_database_without_shipments_forecasts_zero(tmp_path: Path) -> None:
    workspace = DuckWorkspace(tmp_path / "snapshot")
    try:
        result = forecast.compute(workspace, date(2026, 3, 1), ForecastPolicy(horizon_days=7))
    finally:
        workspace.close()
    assert result.panel.keys == [("", "")]
    assert result.panel.days == 0
    rows = forecast.rows_of(result)
    assert [r["day"] for r in rows] == [date(2026, 3, 1) + timedelta(days=k) for k in range(7)]
    assert {(r["expected"], r["low"], r["high"], r["expected_tickets"]) for r in rows} == {
        (0.0, 0.0, 0.0, 0.0)
    }
    assert result.metrics()["backtest"] == {"origins": [], "horizon_days": 7}
