"""What the dashboards show: the KPI rows of the newest ``kpi`` run, read for a period and
a slice; the customers, shipments, tickets or claims behind any number (drill-down); and
every table as CSV or XLSX.

The dashboards read only the precomputed ``analytics_kpi`` rows (through the lookup
index), so a page costs the same at a thousand customers as at a million. A drill-down is
computed on demand from the domain tables with the same definitions as the step
(``analytics/kpi.py``), bounded by the run's cut-off, so the list it gives has as many
rows as the number it explains. Personal data in a drill-down list goes through the
customers domain's read shapes (phones masked); nothing here decrypts anything else.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, func, literal, select, tuple_
from sqlalchemy.orm import Session, selectinload

from guanxi.analytics import labels
from guanxi.analytics.kpi import (
    CLASS_DIMENSIONS,
    DAY_PERIODS,
    LOST_AFTER_DAYS,
    METRICS,
    SNAPSHOT_PERIOD,
    Dimension,
    Metric,
    MetricInfo,
    PeriodKind,
    last_periods,
    period_end,
    shift,
)
from guanxi.analytics.models import AnalyticsStep, CustomerClass, KpiValue
from guanxi.analytics.runner import latest_run_at
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_, gettext
from guanxi.core.pagination import decode_cursor, encode_cursor
from guanxi.core.web import format_fen
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerSummary
from guanxi.customers.service import to_summary
from guanxi.imports.export import neutralise
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.shipments.enums import LABELS as SHIPMENT_LABELS
from guanxi.shipments.models import Shipment
from guanxi.tickets.enums import LABELS as TICKET_LABELS
from guanxi.tickets.models import Claim, SlaEvent, Ticket, TicketCategory

if TYPE_CHECKING:
    # The forecast module brings LightGBM: imported where a forecast is read, not here.
    from guanxi.analytics.forecast import ForecastSeries

M = Metric
OVERVIEW = (
    M.active_customers,
    M.new_customers,
    M.lost_customers,
    M.retention_rate,
    M.churn_rate,
    M.repeat_rate,
    M.shipments,
    M.revenue_fen,
    M.on_time_rate,
    M.damage_rate,
    M.loss_rate,
)
SERVICE = (
    M.tickets,
    M.complaints,
    M.complaints_per_10k,
    M.first_response_median_min,
    M.first_response_mean_min,
    M.resolution_median_h,
    M.resolution_mean_h,
    M.sla_attainment,
    M.reopen_rate,
    M.csat,
    M.claim_cost_fen,
)
# Periods a trend chart and the KPI table show, the chosen one last.
TREND_LENGTH = {"day": 31, "week": 13, "month": 13, "quarter": 8, "year": 6}
# Rows a file export holds at most (XLSX sheets end at 1,048,576; nobody reads more).
EXPORT_LIMIT = 100_000
PAGE_MAX = 200


def _invalid(name: str, code: str, message: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([FieldError(("query", name), code, message, params)])


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class KpiRun:
    """The run whose KPI rows are current: its id, its cut-off (UTC) and that cut-off in
    local wall-clock time (what the step's periods were cut at)."""

    run_id: int
    as_of: datetime
    local: datetime
    timezone: str

    @property
    def today(self) -> date:
        """The local day of the cut-off."""
        return self.local.date()


def current_run(session: Session, timezone: str) -> KpiRun | None:
    """The newest successful ``kpi`` run, or None when the KPIs never ran."""
    found = latest_run_at(session, "kpi")
    if found is None:
        return None
    run_id, as_of = found
    local = as_of.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return KpiRun(run_id, as_of, local, timezone)


def periods(session: Session, run: KpiRun, kind: str) -> list[date]:
    """The periods the run has figures for, oldest first: the last 90 days for days, the
    whole history otherwise (a period without any activity included)."""
    last = last_periods(run.local)[kind]
    if kind == PeriodKind.day:
        first = run.today - timedelta(days=DAY_PERIODS - 1)
    else:
        found = session.scalar(
            select(func.min(KpiValue.period_start)).where(
                KpiValue.run_id == run.run_id,
                KpiValue.metric.in_([M.shipments.value, M.active_customers.value]),
                KpiValue.period == kind,
                KpiValue.dimension == Dimension.all.value,
                KpiValue.member == "",
            )
        )
        if found is None:
            return []
        first = found
    out = []
    start = first
    while start <= last:
        out.append(start)
        start = shift(kind, start, 1)
    return out


def members(session: Session, run: KpiRun, dimension: str) -> list[str]:
    """The members a dimension has in the run (regions, service types, segments)."""
    if dimension == Dimension.all:
        return [""]
    found = session.scalars(
        select(KpiValue.member)
        .where(
            KpiValue.run_id == run.run_id,
            KpiValue.metric.in_([M.shipments.value, M.active_customers.value, M.tickets.value]),
            KpiValue.period == PeriodKind.year.value,
            KpiValue.dimension == dimension,
        )
        .distinct()
    )
    return sorted(set(found))


def default_start(run: KpiRun, kind: str, available: Sequence[date]) -> date | None:
    """The latest period that has ended by the cut-off (the current one is partial)."""
    if not available:
        return None
    current = last_periods(run.local)[kind]
    ended = [p for p in available if p < current]
    return ended[-1] if ended else available[-1]


# --------------------------------------------------------------------------- the board


@dataclass(frozen=True)
class Point:
    """One stored KPI value."""

    start: date
    value: float | None
    numerator: float | None
    denominator: float | None


@dataclass(frozen=True)
class Tile:
    """A KPI of the chosen period beside the previous period's."""

    info: MetricInfo
    point: Point | None
    previous: Point | None

    @property
    def value(self) -> float | None:
        """This period's value (a count without a row is 0)."""
        return _value_of(self.info, self.point)

    @property
    def previous_value(self) -> float | None:
        """The previous period's value."""
        return _value_of(self.info, self.previous)

    @property
    def change(self) -> float | None:
        """Change over the previous period: percentage points for shares (as a fraction,
        0.012 = 1.2 points), relative change otherwise (0.05 = +5 %)."""
        now, before = self.value, self.previous_value
        if now is None or before is None:
            return None
        if self.info.unit == "rate":
            return now - before
        if before == 0:
            return None
        return (now - before) / abs(before)

    @property
    def verdict(self) -> str:
        """ "good", "bad" or "" for the change, given which way is better."""
        change = self.change
        if change is None or change == 0 or not self.info.better:
            return ""
        up = change > 0
        return "good" if up == (self.info.better == "up") else "bad"


def _value_of(info: MetricInfo, point: Point | None) -> float | None:
    if point is not None:
        return point.value
    # No row: nothing happened in the slice; counts and sums are 0, shares unknown.
    return 0.0 if info.unit in ("count", "fen") else None


@dataclass
class Board:
    """A dashboard tab for one period and slice."""

    run: KpiRun
    kind: str
    start: date
    dimension: str
    member: str
    available: list[date]
    members: list[str]
    trend: list[date]
    metrics: tuple[Metric, ...]
    series: dict[Metric, list[Point | None]] = field(default_factory=dict)

    def tiles(self) -> list[Tile]:
        """One tile per metric: the chosen period and the one before."""
        out = []
        for metric in self.metrics:
            points = self.series.get(metric, [])
            current = points[-1] if points else None
            previous = points[-2] if len(points) > 1 else None
            out.append(Tile(METRICS[metric], current, previous))
        return out

    def values(self, metric: Metric) -> list[float | None]:
        """The trend of a metric (a count without a row is 0)."""
        info = METRICS[metric]
        return [_value_of(info, p) for p in self.series.get(metric, [])]


def check_slice(session: Session, run: KpiRun, dimension: str, member: str) -> list[str]:
    """The dimension's members; a member it does not have is refused (422 on ``member``)."""
    known = members(session, run, dimension)
    if dimension == Dimension.all:
        if member:
            raise _invalid(
                "member", "value_unknown", "Unknown value; expected one of: ", choices=""
            )
        return known
    if member not in known:
        raise _invalid(
            "member",
            "value_unknown",
            f"Unknown value; expected one of: {', '.join(known)}",
            choices=", ".join(known),
        )
    return known


def board(
    session: Session,
    *,
    run: KpiRun,
    kind: str,
    start: date | None,
    dimension: str,
    member: str,
    metrics: tuple[Metric, ...],
) -> Board:
    """The figures of ``metrics`` for the chosen period (default: the latest complete one)
    and the periods before it, in one indexed read."""
    available = periods(session, run, kind)
    known = check_slice(session, run, dimension, member)
    if start is None:
        start = default_start(run, kind, available) or last_periods(run.local)[kind]
    elif start not in available:
        raise _invalid(
            "start",
            "value_unknown",
            "Unknown value; expected one of: the starts of the run's periods",
            choices=", ".join(p.isoformat() for p in available[-5:]),
        )
    trend = [shift(kind, start, -n) for n in range(TREND_LENGTH[kind] - 1, -1, -1)]
    trend = [p for p in trend if not available or p >= available[0]] or [start]
    found = session.execute(
        select(
            KpiValue.metric,
            KpiValue.period_start,
            KpiValue.value,
            KpiValue.numerator,
            KpiValue.denominator,
        ).where(
            KpiValue.run_id == run.run_id,
            KpiValue.metric.in_([m.value for m in metrics]),
            KpiValue.period == kind,
            KpiValue.dimension == dimension,
            KpiValue.member == member,
            KpiValue.period_start >= trend[0],
            KpiValue.period_start <= start,
        )
    ).all()
    by_key = {(m, s): Point(s, v, n, d) for m, s, v, n, d in found}
    out = Board(run, kind, start, dimension, member, available, known, trend, metrics)
    for metric in metrics:
        out.series[metric] = [by_key.get((metric.value, p)) for p in trend]
    return out


def classes(session: Session, run: KpiRun) -> dict[str, list[tuple[str, int]]]:
    """Customers per class of the RFM run the KPIs used, per class dimension."""
    out: dict[str, list[tuple[str, int]]] = {d: [] for d in CLASS_DIMENSIONS}
    for dimension, member, value in session.execute(
        select(KpiValue.dimension, KpiValue.member, KpiValue.value)
        .where(
            KpiValue.run_id == run.run_id,
            KpiValue.metric == M.customers.value,
            KpiValue.period == SNAPSHOT_PERIOD,
        )
        .order_by(KpiValue.dimension, KpiValue.value.desc(), KpiValue.member)
    ):
        out.setdefault(dimension, []).append((member, int(value or 0)))
    return out


# --------------------------------------------------------------------------- API rows


@dataclass(frozen=True)
class KpiRow:
    """One stored KPI value as the API lists it."""

    id: int
    metric: str
    period: str
    period_start: date
    dimension: str
    member: str
    value: float | None
    numerator: float | None
    denominator: float | None


def kpi_rows(
    session: Session,
    *,
    run: KpiRun,
    metrics: Sequence[Metric] | None,
    kind: str,
    dimension: str,
    member: str | None,
    date_from: date | None,
    date_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[KpiRow], str | None]:
    """KPI rows in period order (then metric), ``limit`` per page with a cursor."""
    stmt = select(
        KpiValue.id,
        KpiValue.metric,
        KpiValue.period,
        KpiValue.period_start,
        KpiValue.dimension,
        KpiValue.member,
        KpiValue.value,
        KpiValue.numerator,
        KpiValue.denominator,
    ).where(
        KpiValue.run_id == run.run_id,
        KpiValue.metric.in_(
            [m.value for m in (metrics or [m for m in Metric if m != M.customers])]
        ),
        KpiValue.period == kind,
        KpiValue.dimension == dimension,
    )
    if dimension == Dimension.all:
        stmt = stmt.where(KpiValue.member == "")
    elif member is not None:
        check_slice(session, run, dimension, member)
        stmt = stmt.where(KpiValue.member == member)
    if date_from is not None:
        stmt = stmt.where(KpiValue.period_start >= date_from)
    if date_to is not None:
        stmt = stmt.where(KpiValue.period_start <= date_to)
    if cursor:
        after = decode_cursor(cursor)
        try:
            key = (date.fromisoformat(str(after[0])), str(after[1]), int(after[2]))
        except (ValueError, IndexError, TypeError) as exc:
            raise _invalid("cursor", "cursor_invalid", "Invalid cursor") from exc
        stmt = stmt.where(tuple_(KpiValue.period_start, KpiValue.metric, KpiValue.id) > key)
    found = session.execute(
        stmt.order_by(KpiValue.period_start, KpiValue.metric, KpiValue.id).limit(limit + 1)
    ).all()
    rows = [KpiRow(*r) for r in found[:limit]]
    more = len(found) > limit
    next_cursor = (
        encode_cursor([rows[-1].period_start.isoformat(), rows[-1].metric, rows[-1].id])
        if more and rows
        else None
    )
    return rows, next_cursor


# --------------------------------------------------------------------------- drill-down

ENTITY_OF_PART = ("numerator", "denominator")


@dataclass(frozen=True)
class DrillKey:
    """Which number to explain: a metric of one period and slice, its numerator (the
    counted rows of a count) or its denominator."""

    metric: Metric
    kind: str
    start: date
    dimension: str
    member: str
    part: str = "numerator"


@dataclass(frozen=True)
class _Bounds:
    """The period's moments as aware UTC: start, end (the cut-off for the current
    period), the previous period's start, the cut-off, and the lost-customer window."""

    start: datetime
    end: datetime
    prev_start: datetime
    as_of: datetime
    quiet_from: datetime
    quiet_to: datetime


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


def _bounds(run: KpiRun, kind: str, start: date) -> _Bounds:
    tz = ZoneInfo(run.timezone)
    lo = datetime.combine(start, time())
    hi = min(datetime.combine(period_end(kind, start), time()), run.local)
    quiet = timedelta(days=LOST_AFTER_DAYS)
    return _Bounds(
        start=_utc(lo, tz),
        end=_utc(hi, tz),
        prev_start=_utc(datetime.combine(shift(kind, start, -1), time()), tz),
        as_of=run.as_of,
        quiet_from=_utc(lo - quiet, tz),
        quiet_to=_utc(hi - quiet, tz),
    )


def _rfm_run(session: Session, run: KpiRun) -> int | None:
    """The rfm run the KPI run's segments came from (the newest one not after it)."""
    return session.scalar(
        select(func.max(AnalyticsStep.run_id)).where(
            AnalyticsStep.step == "rfm",
            AnalyticsStep.status == "succeeded",
            AnalyticsStep.run_id <= run.run_id,
        )
    )


def _segment_ids(session: Session, run: KpiRun, segment: str) -> Select[Any]:
    rfm = _rfm_run(session, run)
    return select(CustomerClass.customer_id).where(
        CustomerClass.run_id == (rfm if rfm is not None else -1),
        CustomerClass.segment == segment,
    )


def _shipped(
    customer: Any, lo: datetime | None, hi: datetime, service_type: str | None
) -> ColumnElement[bool]:
    """The customer has a shipment (of the service type) created in [lo, hi).

    A correlated EXISTS: answered per customer from the (customer, created) index alone,
    which on SQLite beats reading a month's shipments through the creation-time index
    (their rows are scattered over the table)."""
    cond = [Shipment.customer_id == customer, Shipment.created_at < hi]
    if lo is not None:
        cond.append(Shipment.created_at >= lo)
    if service_type is not None:
        cond.append(Shipment.service_type == service_type)
    return exists(select(literal(1)).where(*cond))


def _customer_ids(session: Session, run: KpiRun, key: DrillKey, b: _Bounds) -> Select[Any]:
    """The customers behind a customer KPI (``kpi.customer_sql``'s definitions)."""
    st = key.member if key.dimension == Dimension.service_type else None
    metric, part = key.metric, key.part
    cid = Customer.id
    active_now = _shipped(cid, b.start, b.end, st)
    active_before = _shipped(cid, b.prev_start, b.start, st)
    cond: list[Any]
    if metric == M.active_customers or (metric == M.repeat_rate and part == "denominator"):
        cond = [active_now]
    elif metric == M.repeat_rate:
        inner = [
            Shipment.customer_id == cid,
            Shipment.created_at >= b.start,
            Shipment.created_at < b.end,
        ]
        if st is not None:
            inner.append(Shipment.service_type == st)
        shipped = select(func.count()).where(*inner).scalar_subquery()
        cond = [active_now, shipped >= 2]
    elif metric == M.new_customers:
        cond = [active_now, ~_shipped(cid, None, b.start, st)]
    elif metric == M.lost_customers:
        # Last shipment before the end in the 90 days before [start, end).
        cond = [
            _shipped(cid, b.quiet_from, b.quiet_to, st),
            ~_shipped(cid, b.quiet_to, b.end, st),
        ]
    elif metric in (M.retention_rate, M.churn_rate) and part == "denominator":
        cond = [active_before]
    elif metric == M.retention_rate:
        cond = [active_before, active_now]
    elif metric == M.churn_rate:
        cond = [active_before, ~active_now]
    else:  # pragma: no cover - callers route only customer metrics here
        raise ValueError(metric)
    stmt = select(Customer.id).where(*cond)
    if key.dimension == Dimension.region:
        stmt = stmt.where(Customer.region == key.member)
    elif key.dimension == Dimension.segment:
        stmt = stmt.where(Customer.id.in_(_segment_ids(session, run, key.member)))
    return stmt


def _class_ids(session: Session, run: KpiRun, key: DrillKey) -> Select[Any]:
    rfm = _rfm_run(session, run)
    column = getattr(CustomerClass, key.dimension)
    return select(CustomerClass.customer_id.label("id")).where(
        CustomerClass.run_id == (rfm if rfm is not None else -1), column == key.member
    )


def _shipment_ids(session: Session, run: KpiRun, key: DrillKey, b: _Bounds) -> Select[Any]:
    """The shipments behind a shipment KPI (or a complaint rate's denominator)."""
    metric, part = key.metric, key.part
    if metric == M.on_time_rate:
        cond: list[ColumnElement[bool]] = [
            Shipment.delivered_at.is_not(None),
            Shipment.promised_at.is_not(None),
            Shipment.delivered_at >= b.start,
            Shipment.delivered_at < b.end,
            Shipment.created_at < b.as_of,
        ]
        if part == "numerator":
            cond.append(Shipment.delivered_at <= Shipment.promised_at)
    else:
        cond = [Shipment.created_at >= b.start, Shipment.created_at < b.end]
        if metric == M.damage_rate and part == "numerator":
            cond.append(Shipment.is_damaged.is_(True))
        if metric == M.loss_rate and part == "numerator":
            cond.append(Shipment.is_lost.is_(True))
    stmt = select(Shipment.id).where(*cond)
    if key.dimension == Dimension.region:
        # The complaint rate's denominator counts shipments to the province.
        column = (
            Shipment.dest_province if metric == M.complaints_per_10k else Shipment.origin_province
        )
        stmt = stmt.where(column == key.member)
    elif key.dimension == Dimension.service_type:
        stmt = stmt.where(Shipment.service_type == key.member)
    elif key.dimension == Dimension.segment:
        stmt = stmt.where(Shipment.customer_id.in_(_segment_ids(session, run, key.member)))
    return stmt


_BREACHED = exists(
    select(literal(1)).where(SlaEvent.ticket_id == Ticket.id, SlaEvent.kind == "breach")
)


def _ticket_ids(session: Session, run: KpiRun, key: DrillKey, b: _Bounds) -> Select[Any]:
    """The tickets behind a ticket KPI."""
    metric, part = key.metric, key.part
    opened = [Ticket.created_at >= b.start, Ticket.created_at < b.end]
    if metric in (M.tickets, M.complaints, M.complaints_per_10k):
        cond = opened
        if metric != M.tickets:
            cond = [*cond, Ticket.type == "complaint"]
    elif metric in (M.first_response_mean_min, M.first_response_median_min):
        cond = [
            *opened,
            Ticket.first_response_at.is_not(None),
            Ticket.first_response_at < b.as_of,
        ]
    else:
        cond = [
            Ticket.resolved_at.is_not(None),
            Ticket.resolved_at >= b.start,
            Ticket.resolved_at < b.end,
            Ticket.created_at < b.as_of,
        ]
        if part == "numerator":
            if metric == M.sla_attainment:
                breached = exists(
                    select(literal(1)).where(
                        SlaEvent.ticket_id == Ticket.id,
                        SlaEvent.kind == "breach",
                        SlaEvent.recorded_at < b.as_of,
                    )
                )
                cond.append(~breached)
            elif metric == M.reopen_rate:
                cond.append(Ticket.reopened > 0)
        if metric == M.csat:
            cond.append(Ticket.satisfaction.is_not(None))
    stmt = select(Ticket.id).where(*cond)
    if key.dimension == Dimension.region:
        stmt = stmt.where(Ticket.region == key.member)
    elif key.dimension == Dimension.service_type:
        stmt = stmt.where(
            exists(
                select(literal(1)).where(
                    Shipment.waybill_no == Ticket.waybill_no,
                    Shipment.service_type == key.member,
                )
            )
        )
    elif key.dimension == Dimension.segment:
        stmt = stmt.where(Ticket.customer_id.in_(_segment_ids(session, run, key.member)))
    return stmt


def _claim_ids(session: Session, run: KpiRun, key: DrillKey, b: _Bounds) -> Select[Any]:
    """The claims behind the claim cost."""
    stmt = select(Claim.id).where(
        Claim.status.in_(("approved", "paid")),
        Claim.decided_at.is_not(None),
        Claim.decided_at >= b.start,
        Claim.decided_at < b.end,
    )
    if key.dimension in (Dimension.region, Dimension.service_type):
        column = (
            Shipment.origin_province if key.dimension == Dimension.region else Shipment.service_type
        )
        stmt = stmt.where(
            exists(select(literal(1)).where(Shipment.id == Claim.shipment_id, column == key.member))
        )
    elif key.dimension == Dimension.segment:
        stmt = stmt.where(Claim.customer_id.in_(_segment_ids(session, run, key.member)))
    return stmt


def entity_of(key: DrillKey) -> str:
    """What the drill-down lists: customers, shipments, tickets or claims."""
    info = METRICS[key.metric]
    if key.part == "denominator" and info.base_drill:
        return info.base_drill
    return info.drill


def _check_key(session: Session, run: KpiRun, key: DrillKey) -> None:
    if key.part not in ENTITY_OF_PART:
        raise _invalid("part", "value_unknown", "Unknown value", choices=", ".join(ENTITY_OF_PART))
    if key.metric == M.customers:
        if key.kind != SNAPSHOT_PERIOD or key.dimension not in CLASS_DIMENSIONS:
            raise _invalid(
                "dimension",
                "value_unknown",
                "Unknown value",
                choices=", ".join(CLASS_DIMENSIONS),
            )
        return
    if key.kind == SNAPSHOT_PERIOD:
        raise _invalid("period", "value_unknown", "Unknown value", choices=", ".join(PeriodKind))
    if key.dimension in CLASS_DIMENSIONS[1:]:
        raise _invalid("dimension", "value_unknown", "Unknown value", choices=", ".join(Dimension))
    if key.start not in periods(session, run, key.kind):
        raise _invalid(
            "start",
            "value_unknown",
            "Unknown value; expected one of: the starts of the run's periods",
            choices="",
        )
    check_slice(session, run, key.dimension, key.member)


def drill_ids(session: Session, run: KpiRun, key: DrillKey) -> Select[Any]:
    """A SELECT of the ids (one column, ``id``) behind the number."""
    _check_key(session, run, key)
    if key.metric == M.customers:
        return _class_ids(session, run, key)
    b = _bounds(run, key.kind, key.start)
    entity = entity_of(key)
    if entity == "customers":
        return _customer_ids(session, run, key, b)
    if entity == "shipments":
        return _shipment_ids(session, run, key, b)
    if entity == "tickets":
        return _ticket_ids(session, run, key, b)
    return _claim_ids(session, run, key, b)


@dataclass(frozen=True)
class ShipmentLine:
    """A shipment in a drill-down list (no receiver details)."""

    id: int
    waybill_no: str
    customer_id: int
    customer_name: str
    service_type: str | None
    status: str
    origin_province: str | None
    dest_province: str | None
    fee_fen: int
    created_at: datetime
    promised_at: datetime | None
    delivered_at: datetime | None
    is_damaged: bool
    is_lost: bool


@dataclass(frozen=True)
class TicketLine:
    """A ticket in a drill-down list: its figures, not its text."""

    id: int
    type: str
    channel: str
    category: str | None
    region: str | None
    priority: str
    status: str
    customer_id: int | None
    created_at: datetime
    first_response_minutes: float | None
    resolution_hours: float | None
    reopened: int
    satisfaction: int | None
    breached: bool


@dataclass(frozen=True)
class ClaimLine:
    """A claim in a drill-down list."""

    id: int
    reason: str
    status: str
    approved_fen: int | None
    decided_at: datetime | None
    waybill_no: str
    customer_id: int
    customer_name: str


Line = CustomerSummary | ShipmentLine | TicketLine | ClaimLine


@dataclass
class DrillPage:
    """One page of the rows behind a number, with how many there are in all."""

    key: DrillKey
    entity: str
    total: int
    rows: list[Any]
    next_cursor: str | None


def _minutes(a: datetime | None, b: datetime | None, unit: float) -> float | None:
    if a is None or b is None:
        return None
    return (b - a).total_seconds() / unit


def _load(session: Session, entity: str, ids: list[int]) -> list[Any]:
    """Display rows for ``ids``, in that order."""
    if not ids:
        return []
    loaders = {
        "customers": _load_customers,
        "shipments": _load_shipments,
        "tickets": _load_tickets,
        "claims": _load_claims,
    }
    by_id = loaders[entity](session, ids)
    return [by_id[i] for i in ids if i in by_id]


def _load_customers(session: Session, ids: list[int]) -> dict[int, Any]:
    customers = session.scalars(
        select(Customer)
        .where(Customer.id.in_(ids))
        .options(selectinload(Customer.phones), selectinload(Customer.tags))
    ).all()
    return {c.id: to_summary(c) for c in customers}


def _load_shipments(session: Session, ids: list[int]) -> dict[int, Any]:
    stmt = (
        select(
            Shipment.id,
            Shipment.waybill_no,
            Shipment.customer_id,
            Customer.name.label("customer_name"),
            Shipment.service_type,
            Shipment.status,
            Shipment.origin_province,
            Shipment.dest_province,
            Shipment.fee_fen,
            Shipment.created_at,
            Shipment.promised_at,
            Shipment.delivered_at,
            Shipment.is_damaged,
            Shipment.is_lost,
        )
        .join(Customer, Customer.id == Shipment.customer_id)
        .where(Shipment.id.in_(ids))
    )
    return {r.id: ShipmentLine(**r._asdict()) for r in session.execute(stmt)}


def _load_tickets(session: Session, ids: list[int]) -> dict[int, Any]:
    stmt = select(
        Ticket.id,
        Ticket.type,
        Ticket.channel,
        Ticket.category,
        Ticket.region,
        Ticket.priority,
        Ticket.status,
        Ticket.customer_id,
        Ticket.created_at,
        Ticket.first_response_at,
        Ticket.resolved_at,
        Ticket.reopened,
        Ticket.satisfaction,
        _BREACHED,
    ).where(Ticket.id.in_(ids))
    out: dict[int, Any] = {}
    for r in session.execute(stmt):
        out[r.id] = TicketLine(
            id=r.id,
            type=r.type,
            channel=r.channel,
            category=r.category,
            region=r.region,
            priority=r.priority,
            status=r.status,
            customer_id=r.customer_id,
            created_at=r.created_at,
            first_response_minutes=_minutes(r.created_at, r.first_response_at, 60),
            resolution_hours=_minutes(r.created_at, r.resolved_at, 3600),
            reopened=r.reopened,
            satisfaction=r.satisfaction,
            breached=bool(r[13]),
        )
    return out


def _load_claims(session: Session, ids: list[int]) -> dict[int, Any]:
    stmt = (
        select(
            Claim.id,
            Claim.reason,
            Claim.status,
            Claim.approved_fen,
            Claim.decided_at,
            Shipment.waybill_no,
            Claim.customer_id,
            Customer.name.label("customer_name"),
        )
        .join(Shipment, Shipment.id == Claim.shipment_id)
        .join(Customer, Customer.id == Claim.customer_id)
        .where(Claim.id.in_(ids))
    )
    return {r.id: ClaimLine(**r._asdict()) for r in session.execute(stmt)}


def category_names(session: Session, codes: Sequence[str | None], lang: str) -> dict[str, str]:
    """The names of ticket categories in the user's language, by code."""
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    rows = session.execute(
        select(TicketCategory.code, TicketCategory.name_zh, TicketCategory.name_en).where(
            TicketCategory.code.in_(wanted)
        )
    )
    return {code: (zh if lang == "zh_CN" else en) for code, zh, en in rows}


def _restricted(stmt: Select[Any], entity: str, viewer: User) -> Select[Any]:
    """A viewer who may read only their own customers sees only their rows (the
    analytics roles read every customer; this keeps a narrower role narrow)."""
    if entity != "customers" or has_permission(viewer, Permission.customer_read_all):
        return stmt
    return stmt.where(
        stmt.selected_columns[0].in_(select(Customer.id).where(Customer.owner_id == viewer.id))
    )


def drill(
    session: Session,
    *,
    run: KpiRun,
    key: DrillKey,
    viewer: User,
    cursor: str | None = None,
    limit: int = 50,
) -> DrillPage:
    """One page (by id) of the rows behind the number, and how many there are."""
    entity = "customers" if key.metric == M.customers else entity_of(key)
    ids_stmt = _restricted(drill_ids(session, run, key), entity, viewer).subquery()
    id_col = ids_stmt.c[0]
    total = session.scalar(select(func.count()).select_from(ids_stmt)) or 0
    page = select(id_col).order_by(id_col).limit(limit + 1)
    if cursor:
        values = decode_cursor(cursor)
        try:
            page = page.where(id_col > int(values[0]))
        except (ValueError, IndexError, TypeError) as exc:
            raise _invalid("cursor", "cursor_invalid", "Invalid cursor") from exc
    ids = [int(i) for i in session.scalars(page)]
    more = len(ids) > limit
    ids = ids[:limit]
    return DrillPage(
        key=key,
        entity=entity,
        total=int(total),
        rows=_load(session, entity, ids),
        next_cursor=encode_cursor([ids[-1]]) if more and ids else None,
    )


def drill_all(
    session: Session, *, run: KpiRun, key: DrillKey, viewer: User, limit: int = EXPORT_LIMIT
) -> Iterator[Any]:
    """Every row behind the number (up to ``limit``), page by page, for a file export."""
    cursor = None
    given = 0
    while given < limit:
        page = drill(
            session,
            run=run,
            key=key,
            viewer=viewer,
            cursor=cursor,
            limit=min(PAGE_MAX * 10, limit - given),
        )
        yield from page.rows
        given += len(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            return


# --------------------------------------------------------------------------- display


def member_label(dimension: str, member: str, lang: str) -> str:
    """A slice member in words: service types and classes translated, regions as named."""
    if dimension == Dimension.all or not member:
        return gettext(lang, N_("All"))
    if dimension == Dimension.service_type:
        return gettext(lang, SHIPMENT_LABELS[member]) if member in SHIPMENT_LABELS else member
    if dimension in CLASS_DIMENSIONS:
        return labels.name(member, lang)
    return member


def display(info: MetricInfo, value: float | None, lang: str) -> str:
    """A KPI value as shown: counts with separators, money in yuan, shares in %."""
    if value is None:
        return "—"
    unit = info.unit
    if unit == "count":
        return f"{round(value):,}"
    if unit == "fen":
        return "¥" + format_fen(round(value))
    if unit == "rate":
        return f"{100 * value:.1f}%"
    if unit == "per10k":
        return f"{value:.1f}"
    if unit == "minutes":
        return gettext(lang, N_("{n} min"), n=f"{value:.0f}")
    if unit == "hours":
        return gettext(lang, N_("{n} h"), n=f"{value:.1f}")
    return f"{value:.2f}"


def display_change(tile: Tile) -> str:
    """The change as shown: "+1.2 pp" for shares, "+5.0%" otherwise."""
    change = tile.change
    if change is None:
        return ""
    if tile.info.unit == "rate":
        return f"{100 * change:+.1f} pp"
    return f"{100 * change:+.1f}%"


def period_label(kind: str, start: date, lang: str) -> str:
    """A period as people name it: 2026-05, 2026 Q2, 2026-W19, 2026-05-04, 2026."""
    if kind == PeriodKind.month:
        return f"{start.year}-{start.month:02d}"
    if kind == PeriodKind.quarter:
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    if kind == PeriodKind.year:
        return str(start.year)
    if kind == PeriodKind.week:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return start.isoformat()


# --------------------------------------------------------------------------- files

Table = tuple[list[str], list[list[Any]]]


def _translator(lang: str) -> Callable[[str], str]:
    def t(message: str) -> str:
        return gettext(lang, message)

    return t


def kpi_table(rows: Sequence[KpiRow], lang: str) -> Table:
    """KPI rows as a table: one line per value, with its numerator and denominator."""
    t = _translator(lang)
    header = [
        t(N_("Metric")),
        t(N_("Metric code")),
        t(N_("Unit")),
        t(N_("Period")),
        t(N_("Period start")),
        t(N_("Slice")),
        t(N_("Member")),
        t(N_("Value")),
        t(N_("Numerator")),
        t(N_("Denominator")),
    ]
    lines = []
    for r in rows:
        info = METRICS[Metric(r.metric)]
        lines.append(
            [
                t(info.label),
                r.metric,
                info.unit,
                period_label(r.period, r.period_start, lang),
                r.period_start,
                r.dimension,
                r.member,
                r.value,
                r.numerator,
                r.denominator,
            ]
        )
    return header, lines


def drill_table(entity: str, rows: Sequence[Any], lang: str, timezone: str) -> Table:
    """Drill-down rows as a table (personal identifiers as the read shapes mask them)."""
    t = _translator(lang)
    tz = ZoneInfo(timezone)

    def when(v: datetime | None) -> str:
        return v.astimezone(tz).strftime("%Y-%m-%d %H:%M") if v else ""

    def lab(code: str | None, table: dict[str, str]) -> str:
        return t(table[code]) if code and code in table else (code or "")

    if entity == "customers":
        header = [t(N_("Customer ID")), t(N_("Name")), t(N_("Phone")), t(N_("Region")),
                  t(N_("Industry")), t(N_("Created"))]  # fmt: skip
        lines = [
            [c.id, c.name, c.phone or "", c.region or "", c.industry or "", when(c.created_at)]
            for c in rows
        ]
    elif entity == "shipments":
        header = [t(N_("Waybill")), t(N_("Customer ID")), t(N_("Customer")),
                  t(N_("Service type")), t(N_("Status")), t(N_("Origin")),
                  t(N_("Destination")), t(N_("Fee (yuan)")), t(N_("Created")),
                  t(N_("Promised")), t(N_("Delivered")), t(N_("Damaged")),
                  t(N_("Lost"))]  # fmt: skip
        lines = [
            [s.waybill_no, s.customer_id, s.customer_name,
             lab(s.service_type, SHIPMENT_LABELS), lab(s.status, SHIPMENT_LABELS),
             s.origin_province or "", s.dest_province or "", format_fen(s.fee_fen),
             when(s.created_at), when(s.promised_at), when(s.delivered_at),
             t(N_("Yes")) if s.is_damaged else "", t(N_("Yes")) if s.is_lost else ""]
            for s in rows
        ]  # fmt: skip
    elif entity == "tickets":
        header = [t(N_("Ticket")), t(N_("Type")), t(N_("Channel")), t(N_("Category")),
                  t(N_("Region")), t(N_("Priority")), t(N_("Status")), t(N_("Customer ID")),
                  t(N_("Opened")), t(N_("First response (min)")),
                  t(N_("Resolution (h)")), t(N_("Reopened")), t(N_("Satisfaction")),
                  t(N_("SLA breached"))]  # fmt: skip
        lines = [
            [k.id, lab(k.type, TICKET_LABELS), lab(k.channel, TICKET_LABELS), k.category or "",
             k.region or "", lab(k.priority, TICKET_LABELS), lab(k.status, TICKET_LABELS),
             k.customer_id or "", when(k.created_at),
             "" if k.first_response_minutes is None else round(k.first_response_minutes, 1),
             "" if k.resolution_hours is None else round(k.resolution_hours, 2),
             k.reopened, "" if k.satisfaction is None else k.satisfaction,
             t(N_("Yes")) if k.breached else ""]
            for k in rows
        ]  # fmt: skip
    else:
        header = [t(N_("Claim")), t(N_("Reason")), t(N_("Status")), t(N_("Approved (yuan)")),
                  t(N_("Decided")), t(N_("Waybill")), t(N_("Customer ID")),
                  t(N_("Customer"))]  # fmt: skip
        lines = [
            [c.id, lab(c.reason, TICKET_LABELS), lab(c.status, TICKET_LABELS),
             "" if c.approved_fen is None else format_fen(c.approved_fen), when(c.decided_at),
             c.waybill_no, c.customer_id, c.customer_name]
            for c in rows
        ]  # fmt: skip
    return header, lines


def classes_table(found: dict[str, list[tuple[str, int]]], lang: str) -> Table:
    """Customers per class as a table."""
    t = _translator(lang)
    header = [t(N_("Class")), t(N_("Code")), t(N_("Name")), t(N_("Customers"))]
    names = {
        "segment": N_("Segment"),
        "value_tier": N_("Value tier"),
        "frequency_class": N_("Shipping frequency"),
        "relationship": N_("Relationship"),
    }
    lines = [
        [t(names[d]), m, labels.name(m, lang), n]
        for d in CLASS_DIMENSIONS
        for m, n in found.get(d, [])
    ]
    return header, lines


def _cell(value: Any) -> Any:
    """A cell as written: dates as ISO text, whole numbers without a decimal point, text
    neutralised against formulas."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        # Counts and fen are stored as floats beside the shares; 3, not 3.0.
        return int(value)
    if isinstance(value, str):
        return neutralise(value)
    return "" if value is None else value


def to_csv(table: Table) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text correctly."""
    header, lines = table
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([_cell(h) for h in header])
    for line in lines:
        writer.writerow([_cell(v) for v in line])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(table: Table, sheet: str = "data") -> bytes:
    """One worksheet, numbers as numbers, text never read as a formula."""
    import xlsxwriter

    header, lines = table
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(
        buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    ws = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    ws.write_row(0, 0, [_cell(h) for h in header], bold)
    for n, line in enumerate(lines, start=1):
        ws.write_row(n, 0, [_cell(v) for v in line])
    ws.freeze_panes(1, 0)
    book.close()
    return buf.getvalue()


def check_forecast_series(session: Session, region: str | None, service_type: str | None) -> None:
    """Refuse a region or service type the newest forecast has no series for (422 naming
    the field) before it reaches a query."""
    from guanxi.analytics.forecast import forecast_members

    regions, services = forecast_members(session)
    for name, value, known in (
        ("region", region, regions),
        ("service_type", service_type, services),
    ):
        if value and value not in known:
            raise _invalid(
                name,
                "value_unknown",
                f"Unknown value; expected one of: {', '.join(known)}",
                choices=", ".join(known),
            )


def forecast_table(series: ForecastSeries, lang: str) -> Table:
    """A forecast as a table: the actual days, then the forecast days with the band."""
    t = _translator(lang)
    header = [t(N_("Day")), t(N_("Kind")), t(N_("Shipments")), t(N_("Low")), t(N_("High")),
              t(N_("Tickets"))]  # fmt: skip
    actual, ahead = t(N_("Actual")), t(N_("Forecast"))
    lines: list[list[Any]] = [
        [d.day, actual, round(d.shipments, 1), "", "", round(d.tickets, 1)] for d in series.actuals
    ]
    lines += [
        [d.day, ahead, round(d.expected, 1), round(d.low, 1), round(d.high, 1),
         round(d.expected_tickets, 1)]
        for d in series.forecast
    ]  # fmt: skip
    return header, lines
