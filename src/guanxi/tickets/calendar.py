"""China's working calendar for service-level clocks: public holidays, adjusted working days
(调休), working hours per team, and clocks that pause.

Public holidays and the weekend days worked in their place come from the maintained
``holidays`` package (State Council notices, updated every year); an administrator can add
days the package does not know yet (a new year's notice, a local day off) as overrides. A
deadline "two business hours after 17:00 on the Friday before the Spring Festival" lands
on the adjusted working Saturday; two more on the Tuesday after the holiday.

All arithmetic is done in the team's time zone (Asia/Shanghai by default) on aware
datetimes; callers store and pass UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DEFAULT_HOURS: tuple[tuple[time, time], ...] = ((time(9, 0), time(18, 0)),)


@lru_cache(maxsize=64)
def _official(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(days off, weekend days worked) of one year from the ``holidays`` data."""
    cn = holidays.country_holidays("CN", years=year)
    off = frozenset(d for d in cn if d.year == year)
    # Weekend days worked in lieu (调休): the China calendar's own attribute.
    worked = frozenset(d for d in getattr(cn, "weekend_workdays", ()) if d.year == year)
    return off, worked


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours of one team.

    ``hours`` are the working spans of a working day in local time (e.g. 09:00-12:00 and
    13:00-18:00); ``days_off`` / ``days_worked`` override the official calendar.
    """

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    hours: Sequence[tuple[time, time]] = DEFAULT_HOURS
    days_off: frozenset[date] = frozenset()
    days_worked: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        spans = sorted(self.hours)
        if not spans or any(start >= end for start, end in spans):
            raise ValueError("working hours need at least one span with start before end")
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
            raise ValueError("working hour spans overlap")
        object.__setattr__(self, "hours", tuple(spans))

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day (调休 Saturdays yes, holidays no)."""
        if day in self.days_worked:
            return True
        if day in self.days_off:
            return False
        off, worked = _official(day.year)
        if day in worked:
            return True
        if day in off:
            return False
        return day.weekday() < 5

    def _spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        return _day_spans(self, day)

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of working time after ``start`` (aware; returned in UTC
        form of the same zone as ``start``)."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        local = start.astimezone(self.tz)
        left = timedelta(seconds=seconds)
        day = local.date()
        # Ten years of calendar days is more than any service target; stops a bad input.
        for _ in range(3660):
            for span_start, span_end in self._spans(day):
                begin = max(span_start, local)
                if begin >= span_end:
                    continue
                room = span_end - begin
                if left <= room:
                    return (begin + left).astimezone(start.tzinfo)
                left -= room
            day += timedelta(days=1)
        raise ValueError("deadline beyond ten years")

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Working seconds from ``start`` to ``end`` (0 when ``end`` is not later)."""
        if end <= start:
            return 0.0
        a, b = start.astimezone(self.tz), end.astimezone(self.tz)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            for span_start, span_end in self._spans(day):
                lo, hi = max(span_start, a), min(span_end, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds()


@lru_cache(maxsize=8192)
def _day_spans(calendar: BusinessCalendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """A day's working spans as aware moments; cached, because every SLA computation walks
    the same few weeks of days (the calendar is frozen, so it can key the cache)."""
    if not calendar.is_workday(day):
        return ()
    return tuple(
        (datetime.combine(day, s, calendar.tz), datetime.combine(day, e, calendar.tz))
        for s, e in calendar.hours
    )


@dataclass(frozen=True)
class ClockSpan:
    """A stretch of a ticket's life: from ``start`` to ``end`` (None: still going), paused
    or counting."""

    start: datetime
    end: datetime | None
    paused: bool


def elapsed(
    spans: Iterable[ClockSpan],
    now: datetime,
    calendar: BusinessCalendar | None,
) -> float:
    """Seconds counted against a target: the non-paused spans, in working time when a
    calendar is given, in calendar time otherwise."""
    total = 0.0
    for span in spans:
        if span.paused:
            continue
        end = span.end or now
        if calendar is None:
            total += max((end - span.start).total_seconds(), 0.0)
        else:
            total += calendar.seconds_between(span.start, end)
    return total


def _length(span_start: datetime, end: datetime, calendar: BusinessCalendar | None) -> float:
    if calendar is None:
        return max((end - span_start).total_seconds(), 0.0)
    return calendar.seconds_between(span_start, end)


def _after(start: datetime, seconds: float, calendar: BusinessCalendar | None) -> datetime:
    return start + timedelta(seconds=seconds) if calendar is None else calendar.add(start, seconds)


def due_at(
    spans: Sequence[ClockSpan],
    target_seconds: float,
    now: datetime,
    calendar: BusinessCalendar | None,
) -> datetime | None:
    """When the target falls (or fell) due: the moment the counted time reaches it — in the
    past for a breached target — or, if not reached yet, when it will if the clock runs on
    from ``now``. None while the clock is paused (waiting on the customer or a third party)
    and the target is not yet reached."""
    used = 0.0
    for span in spans:
        if span.paused:
            if span.end is None:
                return None
            continue
        length = _length(span.start, span.end or now, calendar)
        if used + length >= target_seconds:
            return _after(span.start, target_seconds - used, calendar)
        used += length
    return _after(now, target_seconds - used, calendar)
