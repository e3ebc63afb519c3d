"""SLA arithmetic on China's working calendar: nights, weekends, the 2026 Spring Festival
with its adjusted working Saturdays (2月14日, 2月28日), lunch breaks, pauses, a reopen."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from guanxi.tickets.calendar import BusinessCalendar, ClockSpan, due_at, elapsed

SH = ZoneInfo("Asia/Shanghai")
H = 3600


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


CAL = BusinessCalendar()  # 09:00-18:00, Asia/Shanghai


def test_working_days_follow_the_state_council_notice() -> None:
    assert CAL.is_workday(date(2026, 2, 13))  # Friday
    assert CAL.is_workday(date(2026, 2, 14))  # Saturday worked in lieu (调休)
    assert not CAL.is_workday(date(2026, 2, 15))  # Sunday
    assert [CAL.is_workday(date(2026, 2, d)) for d in range(16, 24)] == [False] * 8
    assert CAL.is_workday(date(2026, 2, 24))  # back to work on Tuesday
    assert CAL.is_workday(date(2026, 2, 28))  # Saturday worked in lieu
    assert not CAL.is_workday(date(2026, 3, 1))  # an ordinary Sunday
    assert not CAL.is_workday(date(2026, 10, 1))  # National Day
    assert CAL.is_workday(date(2026, 10, 10))  # Saturday worked in lieu


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (at(3, 2, 10), 2, at(3, 2, 12)),  # inside one working day
        (at(3, 2, 17), 2, at(3, 3, 10)),  # across a night
        (at(3, 2, 20), 2, at(3, 3, 11)),  # created after hours: counts from 09:00
        (at(3, 6, 17), 2, at(3, 9, 10)),  # Friday evening -> Monday
        (at(3, 7, 11), 2, at(3, 9, 11)),  # created on a Saturday
        (at(2, 13, 17), 2, at(2, 14, 10)),  # Friday before the holiday -> the worked Saturday
        (at(2, 14, 17), 2, at(2, 24, 10)),  # over the Spring Festival
        (at(2, 14, 17), 24, at(2, 26, 14)),  # 24 business hours: 1 + 9 + 9 + 5
    ],
)
def test_business_hours_deadlines(start: datetime, hours: int, due: datetime) -> None:
    assert CAL.add(start, hours * H) == due
    assert CAL.seconds_between(start, due) == hours * H


def test_lunch_break_and_team_hours() -> None:
    team = BusinessCalendar(hours=((time(13, 0), time(18, 0)), (time(8, 30), time(12, 0))))
    assert team.hours == ((time(8, 30), time(12, 0)), (time(13, 0), time(18, 0)))
    assert team.add(at(3, 2, 11), 2 * H) == at(3, 2, 14)
    assert team.seconds_between(at(3, 2, 11), at(3, 2, 14)) == 2 * H
    with pytest.raises(ValueError, match="overlap"):
        BusinessCalendar(hours=((time(9, 0), time(13, 0)), (time(12, 0), time(18, 0))))
    with pytest.raises(ValueError, match="start before end"):
        BusinessCalendar(hours=((time(18, 0), time(9, 0)),))


def test_overrides_for_days_the_library_does_not_know() -> None:
    local = BusinessCalendar(
        days_off=frozenset({date(2026, 3, 3)}), days_worked=frozenset({date(2026, 3, 8)})
    )
    assert not local.is_workday(date(2026, 3, 3))
    assert local.is_workday(date(2026, 3, 8))  # a Sunday made a working day
    assert local.add(at(3, 2, 17), 2 * H) == at(3, 4, 10)


def test_utc_in_utc_out() -> None:
    start = at(3, 6, 17).astimezone(UTC)  # 09:00 UTC on Friday
    due = CAL.add(start, 2 * H)
    assert due.tzinfo is UTC
    assert due == at(3, 9, 10).astimezone(UTC)


def test_clock_pauses_while_waiting_on_the_customer_and_resumes_on_reopen() -> None:
    # Opened Friday 16:00; waiting on the customer from Monday 10:00 to Tuesday 15:00;
    # resolved Tuesday 16:00; reopened Wednesday 09:30, still open Wednesday 11:00.
    spans = [
        ClockSpan(at(3, 6, 16), at(3, 9, 10), paused=False),  # 2 h Fri + 1 h Mon
        ClockSpan(at(3, 9, 10), at(3, 10, 15), paused=True),
        ClockSpan(at(3, 10, 15), at(3, 10, 16), paused=False),  # 1 h
        ClockSpan(at(3, 10, 16), at(3, 11, 9, 30), paused=True),  # resolved (not counting)
        ClockSpan(at(3, 11, 9, 30), None, paused=False),  # reopened
    ]
    now = at(3, 11, 11)
    assert elapsed(spans, now, CAL) == 5.5 * H
    # An 8-hour resolution target: 2.5 h left from 11:00 -> 13:30 the same day.
    assert due_at(spans, 8 * H, now, CAL) == at(3, 11, 13, 30)
    # A 3-hour target was reached during the first span: Monday 10:00.
    assert due_at(spans, 3 * H, now, CAL) == at(3, 9, 10)
    # Calendar hours (regulator referrals): every hour counts, pauses still excluded.
    assert elapsed(spans, now, None) == (66 + 1 + 1.5) * H  # Fri 16:00 -> Mon 10:00 is 66 h
    paused = [*spans[:-1], ClockSpan(at(3, 11, 9, 30), None, paused=True)]
    assert due_at(paused, 8 * H, now, CAL) is None


def test_no_negative_time() -> None:
    assert CAL.seconds_between(at(3, 3, 10), at(3, 2, 10)) == 0.0
    with pytest.raises(ValueError, match="negative"):
        CAL.add(at(3, 2, 10), -1)
    assert CAL.add(at(3, 2, 10), 0) == at(3, 2, 10)
    assert CAL.add(at(3, 2, 20), 0) == at(3, 3, 9)  # zero time still waits for opening
    assert due_at([], 2 * H, at(3, 2, 10), CAL) == at(3, 2, 12)
    assert timedelta(seconds=CAL.seconds_between(at(3, 2, 0), at(3, 9, 0))) == timedelta(hours=45)
