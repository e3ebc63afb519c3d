"""Local-time rules of the programme, in Python and as SQL for the set-based statements.

Points earned in a month (local time) expire at the end of the same month
``expiry_months`` later: earned 2026-03-05, 24 months -> gone at 2028-04-01 00:00 local.
Month ends make expiry predictable for a member ("your March 2026 points expire on 1 April
2028") and batch the daily expiry job into a few runs a year per member.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = "Asia/Shanghai"


def expiry_of(at: datetime, months: int, tz: str = LOCAL_TZ) -> datetime:
    """When points credited at ``at`` expire (UTC): the first instant of the local month
    ``months + 1`` months after the month of ``at``."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    index = local.year * 12 + (local.month - 1) + months + 1
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=zone).astimezone(UTC)


def _offset_minutes(tz: str) -> int:
    """The zone's offset from UTC now, in minutes (SQLite has no time zones; China has had
    one fixed offset since 1991)."""
    offset = datetime.now(ZoneInfo(tz)).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def expiry_sql(dialect: str, column: str, months: int, tz: str = LOCAL_TZ) -> str:
    """SQL of :func:`expiry_of` over a timestamp ``column`` (trusted identifiers only;
    ``months`` is a validated integer). SQLite's result has the same text form as the
    stored UTC datetimes, so comparisons stay lexical."""
    months = int(months) + 1
    if dialect == "postgresql":
        zone = tz.replace("'", "")
        return (
            f"((date_trunc('month', {column} AT TIME ZONE '{zone}') "
            f"+ interval '{months} months') AT TIME ZONE '{zone}')"
        )
    off = _offset_minutes(tz)
    return (
        f"(datetime({column}, '{off:+d} minutes', 'start of month', '+{months} months', "
        f"'{-off:+d} minutes') || '.000000')"
    )


def local_month_sql(dialect: str, column: str, tz: str = LOCAL_TZ) -> str:
    """SQL of the local calendar month (``YYYY-MM``) of a timestamp column."""
    if dialect == "postgresql":
        zone = tz.replace("'", "")
        return f"to_char({column} AT TIME ZONE '{zone}', 'YYYY-MM')"
    off = _offset_minutes(tz)
    return f"strftime('%Y-%m', {column}, '{off:+d} minutes')"


def local_month_day_sql(dialect: str, column: str, tz: str = LOCAL_TZ) -> str:
    """SQL of the local month and day (``MM-DD``) of a timestamp column."""
    if dialect == "postgresql":
        zone = tz.replace("'", "")
        return f"to_char({column} AT TIME ZONE '{zone}', 'MM-DD')"
    off = _offset_minutes(tz)
    return f"strftime('%m-%d', {column}, '{off:+d} minutes')"


def month_starts(first: datetime, last: datetime, tz: str = LOCAL_TZ) -> list[datetime]:
    """The UTC instants at which the local months touching ``first`` .. ``last`` begin,
    the month of ``first`` included (the boundaries a batch's expiry dates change at)."""
    zone = ZoneInfo(tz)
    a, b = first.astimezone(zone), last.astimezone(zone)
    index, end = a.year * 12 + a.month - 1, b.year * 12 + b.month - 1
    return [
        datetime(i // 12, i % 12 + 1, 1, tzinfo=zone).astimezone(UTC) for i in range(index, end + 1)
    ]


def expiry_case(
    column: str, first: datetime, last: datetime, months: int, tz: str = LOCAL_TZ
) -> tuple[str, dict[str, datetime]]:
    """:func:`expiry_of` for rows whose ``column`` lies in ``first`` .. ``last``, as a CASE
    over the month boundaries with bound values: one comparison a row instead of date
    arithmetic (a chunk of accrual spans a few days, so a month or two). Returns the SQL
    and its parameters (bind them as UTC datetimes)."""
    starts = month_starts(first, last, tz)
    params: dict[str, datetime] = {}
    whens = []
    for i, start in enumerate(starts[1:], start=1):
        params[f"xb{i}"] = start
        params[f"xe{i - 1}"] = expiry_of(starts[i - 1], months, tz)
        whens.append(f"WHEN {column} < :xb{i} THEN :xe{i - 1}")
    last_key = f"xe{len(starts) - 1}"
    params[last_key] = expiry_of(starts[-1], months, tz)
    if not whens:
        return f":{last_key}", params
    return f"CASE {' '.join(whens)} ELSE :{last_key} END", params
