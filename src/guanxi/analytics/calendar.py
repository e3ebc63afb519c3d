"""China's retail and holiday calendar as regressors for the volume forecast.

Express volume in China follows the public holidays *as the State Council schedules them*,
not as the lunar dates fall: a holiday is a break of consecutive days off (the statutory
days, the weekend days inside them), framed by weekend days worked in lieu (调休). The
Spring Festival break (8 days since 2025, 除夕 included) is the deepest dip of the year —
couriers go home days before it and come back days after — and the shopping festivals
(618 from June 1 to 18, Double 11 from November 1 to 11 and the dispatch wave after it,
Double 12) are the peaks.

Days off and the weekend workdays come from the maintained ``holidays`` package (the same
source as the service desk's SLA calendar); it carries the published schedules (checked
against ``chinese_calendar`` for 2024–2026 in the tests) and, for years whose schedule is
not yet published, the statutory days computed from the lunar calendar — so a forecast
into next year still sees its Spring Festival, only without the 调休 days.

Every regressor is a float array over consecutive days; "not near" is NaN, which the
forecast's trees treat as a value of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
import numpy as np

# Breaks by kind; codes are the ``holiday`` regressor's values (0: not in a break).
HOLIDAYS = (
    "new_year",
    "spring_festival",
    "qingming",
    "labour_day",
    "dragon_boat",
    "mid_autumn",
    "national_day",
    "other",
)
HOLIDAY_CODE = {name: i + 1 for i, name in enumerate(HOLIDAYS)}

# (substring of the package's English name, kind) in order of precedence: a break that
# holds both Mid-Autumn and National Day is the Golden Week.
_NAMES = (
    ("Chinese New Year", "spring_festival"),
    ("National Day", "national_day"),
    ("Labor Day", "labour_day"),
    ("Mid-Autumn", "mid_autumn"),
    ("Dragon Boat", "dragon_boat"),
    ("Tomb-Sweeping", "qingming"),
    ("New Year's Day", "new_year"),
)
_LUNAR_NEW_YEAR = re.compile(r"^Chinese New Year \(Spring Festival\)$")

# How far around an event its offset regressor reaches (days before, days after).
SPRING_FESTIVAL_REACH = (30, 30)
REACH_618 = (17, 2)  # June 1 .. June 20
REACH_D11 = (10, 9)  # November 1 .. November 20
REACH_D12 = (4, 6)  # December 8 .. December 18
# Days before a break / after it that count as its approach and its aftermath.
BREAK_MARGIN = 7

REGRESSORS = (
    "dow",
    "day_off",
    "adjusted_workday",
    "holiday",
    "break_day",
    "break_length",
    "days_to_break",
    "days_after_break",
    "sf_offset",
    "off_618",
    "ramp_618",
    "off_d11",
    "ramp_d11",
    "after_d11",
    "off_d12",
    "month",
)


@dataclass(frozen=True)
class HolidayBreak:
    """A run of consecutive days off around a public holiday (weekends inside included)."""

    kind: str
    first: date
    last: date

    @property
    def days(self) -> int:
        """Length of the break in days."""
        return (self.last - self.first).days + 1


@lru_cache(maxsize=32)
def _official(first_year: int, last_year: int) -> tuple[dict[date, str], frozenset[date]]:
    """(statutory days off with their names, weekend days worked) for the years."""
    cn = holidays.country_holidays("CN", years=range(first_year, last_year + 1), language="en_US")
    names = {d: str(n) for d, n in cn.items() if first_year <= d.year <= last_year}
    worked = frozenset(
        d for d in getattr(cn, "weekend_workdays", ()) if first_year <= d.year <= last_year
    )
    return names, worked


def adjusted_workdays(first_year: int, last_year: int) -> frozenset[date]:
    """Weekend days worked in lieu of holidays (调休) in the years, as published."""
    return _official(first_year, last_year)[1]


def is_day_off(day: date) -> bool:
    """Whether ``day`` is an official day off (a holiday, or a weekend day not worked)."""
    names, worked = _official(day.year, day.year)
    if day in names:
        return True
    return day.weekday() >= 5 and day not in worked


def _kind(name: str) -> str | None:
    for needle, kind in _NAMES:
        if needle in name:
            return kind
    return None


@lru_cache(maxsize=32)
def holiday_breaks(first_year: int, last_year: int) -> tuple[HolidayBreak, ...]:
    """Every holiday break that starts in the years, in date order."""
    # A neighbour year on each side: a break may straddle New Year.
    names, worked = _official(first_year - 1, last_year + 1)

    def off(d: date) -> bool:
        return d in names or (d.weekday() >= 5 and d not in worked)

    seen: set[date] = set()
    breaks: list[HolidayBreak] = []
    for day in sorted(names):
        if day in seen:
            continue
        first = last = day
        while off(first - timedelta(days=1)):
            first -= timedelta(days=1)
        while off(last + timedelta(days=1)):
            last += timedelta(days=1)
        run = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        seen.update(run)
        kinds = {k for d in run if d in names and (k := _kind(names[d])) is not None}
        kind = next((k for _n, k in _NAMES if k in kinds), "other")
        if first_year <= first.year <= last_year:
            breaks.append(HolidayBreak(kind, first, last))
    return tuple(breaks)


@lru_cache(maxsize=64)
def lunar_new_year(year: int) -> date:
    """The first day of the lunar year (正月初一) falling in ``year``."""
    names, _worked = _official(year, year)
    days = [d for d, n in names.items() if _LUNAR_NEW_YEAR.match(n)]
    if not days:  # pragma: no cover - the package knows every year it supports
        raise ValueError(f"no Spring Festival known for {year}")
    return min(days)


def _offsets(days: np.ndarray, anchors: list[date], reach: tuple[int, int]) -> np.ndarray:
    """Days from the nearest anchor within ``reach`` (before, after); NaN elsewhere."""
    out = np.full(len(days), np.nan)
    for anchor in anchors:
        delta = (days - np.datetime64(anchor, "D")).astype(np.int64).astype(float)
        inside = (delta >= -reach[0]) & (delta <= reach[1])
        # The nearer anchor wins where two reaches overlap (they never do for yearly events).
        take = inside & (np.isnan(out) | (np.abs(delta) < np.abs(out)))
        out[take] = delta[take]
    return out


def regressors(start: date, days: int) -> dict[str, np.ndarray]:
    """The calendar regressors (:data:`REGRESSORS`) of ``days`` consecutive days from
    ``start``, each a float array."""
    stamps = np.datetime64(start, "D") + np.arange(days)
    dates = [start + timedelta(days=i) for i in range(days)]
    end = dates[-1] if dates else start
    first_year, last_year = start.year - 1, end.year + 1
    names, worked = _official(first_year, last_year)
    breaks = holiday_breaks(first_year, last_year)

    dow = np.array([d.weekday() for d in dates], dtype=float)
    adjusted = np.array([d in worked for d in dates], dtype=float)
    day_off = np.array(
        [d in names or (d.weekday() >= 5 and d not in worked) for d in dates], dtype=float
    )
    holiday = np.zeros(days)
    break_day = np.zeros(days)
    break_length = np.zeros(days)
    days_to = np.zeros(days)
    days_after = np.zeros(days)
    for b in breaks:
        lo = (np.datetime64(b.first, "D") - stamps[0]).astype(np.int64) if days else 0
        hi = lo + b.days
        if hi + BREAK_MARGIN < 0 or lo - BREAK_MARGIN >= days:
            continue
        idx = np.arange(max(lo, 0), min(hi, days))
        holiday[idx] = HOLIDAY_CODE[b.kind]
        break_day[idx] = idx - lo + 1
        break_length[idx] = b.days
        before = np.arange(max(lo - BREAK_MARGIN, 0), min(lo, days))
        # The nearest break wins: a later break overwrites an earlier one's aftermath.
        days_to[before] = lo - before
        after = np.arange(max(hi, 0), min(hi + BREAK_MARGIN, days))
        keep = days_after[after] == 0
        days_after[after[keep]] = after[keep] - hi + 1

    years = range(first_year, last_year + 1)
    month = np.array([d.month for d in dates], dtype=float)
    dom = np.array([d.day for d in dates], dtype=float)
    off_618 = _offsets(stamps, [date(y, 6, 18) for y in years], REACH_618)
    off_d11 = _offsets(stamps, [date(y, 11, 11) for y in years], REACH_D11)
    return {
        "dow": dow,
        "day_off": day_off,
        "adjusted_workday": adjusted,
        "holiday": holiday,
        "break_day": break_day,
        "break_length": break_length,
        "days_to_break": days_to,
        "days_after_break": days_after,
        "sf_offset": _offsets(stamps, [lunar_new_year(y) for y in years], SPRING_FESTIVAL_REACH),
        "off_618": off_618,
        "ramp_618": ((month == 6) & (dom <= 18)).astype(float),
        "off_d11": off_d11,
        "ramp_d11": ((month == 11) & (dom <= 11)).astype(float),
        "after_d11": ((month == 11) & (dom >= 12) & (dom <= 18)).astype(float),
        "off_d12": _offsets(stamps, [date(y, 12, 12) for y in years], REACH_D12),
        "month": month,
    }
