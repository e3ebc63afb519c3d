"""Quiet hours in local time: inside or not, and when they end (Asia/Shanghai, UTC+8)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from guanxi.notify.policy import QuietHours, QuietHoursPolicy

NIGHT = QuietHours()  # 21:00-08:00 Asia/Shanghai


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "inside", "release"),
    [
        # 22:30 local (14:30 UTC) -> 08:00 local next day (00:00 UTC)
        (utc(2026, 3, 2, 14, 30), True, utc(2026, 3, 3, 0, 0)),
        # 03:15 local -> 08:00 the same local day
        (utc(2026, 3, 2, 19, 15), True, utc(2026, 3, 3, 0, 0)),
        # 21:00 local exactly: quiet starts
        (utc(2026, 3, 2, 13, 0), True, utc(2026, 3, 3, 0, 0)),
        # 20:59 local: still fine
        (utc(2026, 3, 2, 12, 59), False, utc(2026, 3, 2, 12, 59)),
        # 08:00 local exactly: quiet is over
        (utc(2026, 3, 3, 0, 0), False, utc(2026, 3, 3, 0, 0)),
        # 07:59 local
        (utc(2026, 3, 2, 23, 59), True, utc(2026, 3, 3, 0, 0)),
    ],
)
def test_night_window(moment: datetime, inside: bool, release: datetime) -> None:
    assert NIGHT.contains(moment) is inside
    assert NIGHT.release(moment) == release


def test_a_daytime_window_and_switching_off() -> None:
    lunch = QuietHours(time(12, 0), time(13, 30))
    assert lunch.contains(utc(2026, 3, 2, 4, 0))  # 12:00 local
    assert lunch.release(utc(2026, 3, 2, 4, 45)) == utc(2026, 3, 2, 5, 30)
    assert not lunch.contains(utc(2026, 3, 2, 5, 30))
    off = QuietHours(time(21, 0), time(21, 0))
    assert not off.enabled
    assert off.release(utc(2026, 3, 2, 14, 30)) == utc(2026, 3, 2, 14, 30)


def test_another_time_zone_keeps_its_wall_clock_across_dst() -> None:
    berlin = QuietHours(time(22, 0), time(7, 0), "Europe/Berlin")
    # 23:00 CET on 28 March 2026; the clocks go forward that night: 07:00 CEST = 05:00 UTC.
    assert berlin.release(utc(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 5, 0)


def test_the_policy_refuses_seconds_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="quiet_time|21:00"):
        QuietHoursPolicy.model_validate({"start": "21:00:30", "end": "08:00"})
    with pytest.raises(ValueError, match="Unknown time zone"):
        QuietHoursPolicy.model_validate({"start": "21:00", "end": "08:00", "timezone": "Mars/Base"})
    assert QuietHoursPolicy.model_validate(
        {"start": "22:00", "end": "07:30"}
    ).hours() == QuietHours(time(22, 0), time(7, 30))
