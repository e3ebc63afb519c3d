"""Survey results: CSAT (mean 1-10, share satisfied >= 8), NPS (% promoters 9-10 minus %
detractors 0-6), the dimension means, the response rate, trends by week or month and
breakdowns by template, segment, region, agent, service type, channel and trigger.

Everything is one aggregate over ``survey_response`` (the scores are its columns), grouped
by the breakdown's column; trends group by the local day in SQL and roll the days up into
weeks or months here. Segments come from the newest RFM run of the analytics.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Select, case, cast, func, literal, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import CustomerClass
from guanxi.analytics.runner import latest_run
from guanxi.security.models import User
from guanxi.surveys.enums import (
    DETRACTOR_UP_TO,
    PROMOTER_FROM,
    SATISFIED_FROM,
    Dimension,
    InvitationStatus,
)
from guanxi.surveys.models import SurveyInvitation, SurveyResponse, SurveyTemplate, SurveyVersion
from guanxi.surveys.schemas import ResultsRead, ScoreSummary

R = SurveyResponse
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")
DIM_COLUMNS = {
    Dimension.service_attitude.value: R.dim_service_attitude,
    Dimension.timeliness.value: R.dim_timeliness,
    Dimension.process.value: R.dim_process,
    Dimension.price.value: R.dim_price,
    Dimension.after_sales.value: R.dim_after_sales,
}
BREAKDOWNS = ("template", "segment", "region", "agent", "service_type", "channel", "trigger")
PERIODS = ("week", "month")
# Customers of no RFM class (never shipped, or not in the newest run); responses with no
# value for the breakdown.
UNCLASSIFIED = "unclassified"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Filters:
    """Which responses: answered between two local dates (inclusive) and, optionally, of
    one template, trigger, channel, region, agent, service type or customer segment."""

    start: date
    end: date
    template_id: int | None = None
    trigger: str | None = None
    channel: str | None = None
    region: str | None = None
    agent_id: int | None = None
    service_type: str | None = None
    segment: str | None = None


def bounds(start: date, end: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight on ``start`` and after ``end``."""
    zone = ZoneInfo(timezone)
    lo = datetime.combine(start, time(), zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    return lo, hi


@dataclass
class Tally:
    """The sums behind a summary (they add up across days and groups)."""

    n: int = 0
    csat_n: int = 0
    csat_sum: int = 0
    satisfied: int = 0
    nps_n: int = 0
    promoters: int = 0
    detractors: int = 0
    dim_sum: dict[str, int] = field(default_factory=dict)
    dim_n: dict[str, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        """Add another tally's sums to this one."""
        for f in fields(self):
            if f.name in ("dim_sum", "dim_n"):
                mine, theirs = getattr(self, f.name), getattr(other, f.name)
                for k, v in theirs.items():
                    mine[k] = mine.get(k, 0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> ScoreSummary:
        """The figures: means, shares and NPS from the sums."""
        passives = self.nps_n - self.promoters - self.detractors
        return ScoreSummary(
            responses=self.n,
            csat_answers=self.csat_n,
            csat_mean=self.csat_sum / self.csat_n if self.csat_n else None,
            satisfied_share=self.satisfied / self.csat_n if self.csat_n else None,
            nps_answers=self.nps_n,
            promoters=self.promoters,
            passives=passives,
            detractors=self.detractors,
            nps=100.0 * (self.promoters - self.detractors) / self.nps_n if self.nps_n else None,
            dimensions={
                d: (self.dim_sum.get(d, 0) / self.dim_n[d] if self.dim_n.get(d) else None)
                for d in DIM_COLUMNS
            },
            dimension_answers={d: self.dim_n.get(d, 0) for d in DIM_COLUMNS},
        )


def _columns() -> list[Any]:
    cols: list[Any] = [
        func.count().label("n"),
        func.count(R.csat).label("csat_n"),
        func.coalesce(func.sum(R.csat), 0).label("csat_sum"),
        func.sum(case((R.csat >= SATISFIED_FROM, 1), else_=0)).label("satisfied"),
        func.count(R.nps).label("nps_n"),
        func.sum(case((R.nps >= PROMOTER_FROM, 1), else_=0)).label("promoters"),
        func.sum(case((R.nps <= DETRACTOR_UP_TO, 1), else_=0)).label("detractors"),
    ]
    for name, column in DIM_COLUMNS.items():
        cols.append(func.coalesce(func.sum(column), 0).label(f"sum_{name}"))
        cols.append(func.count(column).label(f"n_{name}"))
    return cols


def _tally(row: Any) -> Tally:
    m = row._mapping
    return Tally(
        n=int(m["n"] or 0),
        csat_n=int(m["csat_n"] or 0),
        csat_sum=int(m["csat_sum"] or 0),
        satisfied=int(m["satisfied"] or 0),
        nps_n=int(m["nps_n"] or 0),
        promoters=int(m["promoters"] or 0),
        detractors=int(m["detractors"] or 0),
        dim_sum={d: int(m[f"sum_{d}"] or 0) for d in DIM_COLUMNS},
        dim_n={d: int(m[f"n_{d}"] or 0) for d in DIM_COLUMNS},
    )


def _segment_join(session: Session, stmt: S) -> S:
    """Join the customer's class of the newest RFM run (none: every class is NULL)."""
    run_id = latest_run(session, "rfm")
    return stmt.outerjoin(
        CustomerClass,
        (CustomerClass.customer_id == R.customer_id) & (CustomerClass.run_id == (run_id or -1)),
    )


def filtered(session: Session, stmt: S, f: Filters, timezone: str) -> S:
    """``stmt`` (over ``survey_response``) restricted to the responses ``f`` selects."""
    lo, hi = bounds(f.start, f.end, timezone)
    stmt = stmt.where(R.submitted_at >= lo, R.submitted_at < hi)
    for column, value in (
        (R.template_id, f.template_id),
        (R.trigger, f.trigger),
        (R.channel, f.channel),
        (R.region, f.region),
        (R.agent_id, f.agent_id),
        (R.service_type, f.service_type),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.segment is not None:
        stmt = _segment_join(session, stmt)
        if f.segment == UNCLASSIFIED:
            stmt = stmt.where(CustomerClass.segment.is_(None))
        else:
            stmt = stmt.where(CustomerClass.segment == f.segment)
    return stmt


def tally(session: Session, f: Filters, timezone: str) -> Tally:
    """The sums of the filtered responses."""
    row = session.execute(filtered(session, select(*_columns()).select_from(R), f, timezone))
    return _tally(row.one())


def summary(session: Session, f: Filters, timezone: str) -> ScoreSummary:
    """CSAT, NPS and the dimension means of the filtered responses."""
    return tally(session, f, timezone).summary()


def _local_day(session: Session, timezone: str) -> Any:
    """The local calendar day of ``submitted_at`` as SQL (SQLite: a fixed offset, exact
    for zones without daylight saving such as Asia/Shanghai)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(timezone, R.submitted_at), Date)
    offset = datetime.now(ZoneInfo(timezone)).utcoffset() or timedelta()
    return func.date(R.submitted_at, f"{int(offset.total_seconds() // 60):+d} minutes")


def period_start(day: date, period: str) -> date:
    """The first day of the week (Monday) or month holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_label(start: date, period: str) -> str:
    """A period's name: ``2026-W47`` or ``2026-11``."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m")


def trend(
    session: Session, f: Filters, timezone: str, period: str = "month"
) -> list[tuple[str, ScoreSummary]]:
    """The figures per week or month, oldest first (periods without answers left out)."""
    day = _local_day(session, timezone).label("day")
    stmt = filtered(session, select(day, *_columns()).select_from(R), f, timezone)
    rolled: dict[date, Tally] = {}
    for row in session.execute(stmt.group_by(day)):
        value = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
        key = period_start(value, period)
        rolled.setdefault(key, Tally()).add(_tally(row))
    return [(period_label(k, period), rolled[k].summary()) for k in sorted(rolled)]


def breakdown(
    session: Session, f: Filters, timezone: str, by: str
) -> list[tuple[str, ScoreSummary]]:
    """The figures per template, segment, region, agent, service type, channel or trigger,
    most responses first. Keys: codes, or the agent's user id as text."""
    if by not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {by!r}")
    stmt: Select[Any]
    if by == "segment":
        key: Any = func.coalesce(CustomerClass.segment, literal(UNCLASSIFIED)).label("key")
        stmt = select(key, *_columns()).select_from(R)
        if f.segment is None:
            stmt = _segment_join(session, stmt)
    elif by == "template":
        key = SurveyTemplate.code.label("key")
        stmt = (
            select(key, *_columns())
            .select_from(R)
            .join(SurveyTemplate, SurveyTemplate.id == R.template_id)
        )
    else:
        column = {
            "region": R.region,
            "agent": R.agent_id,
            "service_type": R.service_type,
            "channel": R.channel,
            "trigger": R.trigger,
        }[by]
        key = column.label("key")
        stmt = select(key, *_columns()).select_from(R)
    stmt = filtered(session, stmt, f, timezone).group_by(key)
    out = [
        (UNKNOWN if row.key is None else str(row.key), _tally(row).summary())
        for row in session.execute(stmt)
    ]
    out.sort(key=lambda kv: (-kv[1].responses, kv[0]))
    return out


def agent_names(session: Session, keys: list[str]) -> dict[str, str]:
    """Display names of the agents a breakdown names by id."""
    ids = [int(k) for k in keys if k.isdigit()]
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {str(uid): name for uid, name in rows}


def response_rate(session: Session, f: Filters, timezone: str) -> tuple[int, int]:
    """(invitations sent between the dates, how many of them were answered) for the
    template and trigger filters."""
    lo, hi = bounds(f.start, f.end, timezone)
    stmt = select(
        func.count(),
        func.sum(case((SurveyInvitation.status == InvitationStatus.answered.value, 1), else_=0)),
    ).where(SurveyInvitation.created_at >= lo, SurveyInvitation.created_at < hi)
    if f.template_id is not None:
        stmt = stmt.where(SurveyInvitation.template_id == f.template_id)
    if f.trigger is not None:
        stmt = stmt.where(SurveyInvitation.trigger == f.trigger)
    sent, answered = session.execute(stmt).one()
    return int(sent or 0), int(answered or 0)


def results(
    session: Session, f: Filters, timezone: str, *, period: str = "month", by: str = "template"
) -> ResultsRead:
    """Everything the results page shows, as one JSON document."""
    sent, answered = response_rate(session, f, timezone)
    return ResultsRead(
        start=f.start,
        end=f.end,
        summary=summary(session, f, timezone),
        invitations=sent,
        answered_invitations=answered,
        response_rate=answered / sent if sent else None,
        trend_period=period,
        trend=trend(session, f, timezone, period),
        breakdown_by=by,
        breakdown=breakdown(session, f, timezone, by),
    )


# --------------------------------------------------------------------------- export

EXPORT_HEADER = [
    "response_id",
    "submitted_at",
    "template",
    "version",
    "trigger",
    "channel",
    "customer_id",
    "ticket_id",
    "shipment_id",
    "region",
    "service_type",
    "agent_id",
    "csat",
    "nps",
    *[f"dim_{d}" for d in DIM_COLUMNS],
    "reason",
    "follow_up_ticket_id",
]


def export_csv(session: Session, f: Filters, timezone: str) -> Iterator[str]:
    """The filtered responses as CSV (UTF-8 with BOM for spreadsheet programs), in chunks.
    No names, phone numbers or addresses: customers by id."""
    zone = ZoneInfo(timezone)
    stmt = filtered(
        session,
        select(R, SurveyTemplate.code, SurveyVersion.number)
        .join(SurveyTemplate, SurveyTemplate.id == R.template_id)
        .join(SurveyVersion, SurveyVersion.id == R.version_id),
        f,
        timezone,
    ).order_by(R.submitted_at, R.id)
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(EXPORT_HEADER)
    for n, (r, code, number) in enumerate(session.execute(stmt.execution_options(yield_per=2000))):
        writer.writerow(
            [
                r.id,
                r.submitted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                code,
                number,
                r.trigger,
                r.channel,
                r.customer_id,
                r.ticket_id,
                r.shipment_id,
                r.region,
                r.service_type,
                r.agent_id,
                r.csat,
                r.nps,
                *[getattr(r, col.key) for col in DIM_COLUMNS.values()],
                _safe(r.reason),
                r.follow_up_ticket_id,
            ]
        )
        if n % 500 == 499:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _safe(text: str | None) -> str | None:
    """A free text made harmless for spreadsheets (no formula injection)."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csat_of_customers(
    session: Session, *, customers: Select[int], since: datetime, until: datetime
) -> tuple[int, float | None]:
    """How many responses with a CSAT score the customers of ``customers`` (a select of
    customer ids) gave in ``[since, until)``, and their mean CSAT (None without any):
    satisfaction before and after a campaign."""
    row = session.execute(
        select(func.count(R.csat), func.avg(R.csat)).where(
            R.customer_id.in_(customers),
            R.submitted_at >= since,
            R.submitted_at < until,
            R.csat.is_not(None),
        )
    ).one()
    count = int(row[0] or 0)
    return count, (float(row[1]) if count else None)
