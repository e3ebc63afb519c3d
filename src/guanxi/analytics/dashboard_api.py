"""JSON routes of the dashboards (``/api/v1/analytics``): KPI values by period and slice,
the volume forecast, the rows behind any number, and each of them as CSV or XLSX.

Every route needs ``analytics.read``. Figures come from the newest ``kpi`` / ``forecast``
runs; before the first run the KPI routes answer 404 ``analytics_not_run``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from guanxi.analytics import dashboards
from guanxi.analytics.dashboards import DrillKey, KpiRun

if TYPE_CHECKING:
    from guanxi.analytics.forecast import ForecastSeries
from guanxi.analytics.kpi import Dimension, Metric, PeriodKind
from guanxi.core.errors import NotFound
from guanxi.core.web import request_language
from guanxi.customers.schemas import CustomerSummary
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Reader = Annotated[User, require(Permission.analytics_read)]
FileFormat = Literal["csv", "xlsx"]
Member = Annotated[str, Query(max_length=60)]
DrillPeriod = Literal["day", "week", "month", "quarter", "year", "asof"]
DrillDimension = Literal[
    "all", "region", "service_type", "segment", "value_tier", "frequency_class", "relationship"
]


class KpiRead(BaseModel):
    """One KPI value: rates are fractions (0.25 = 25 %), money in fen, times in minutes or
    hours as the metric's name says; numerator and denominator re-aggregate it."""

    metric: Metric
    period: PeriodKind
    period_start: date
    dimension: Dimension
    member: str
    value: float | None
    numerator: float | None
    denominator: float | None


class KpiPage(BaseModel):
    """One page of KPI values of the current run (none before the first run)."""

    run_id: int | None
    as_of: datetime | None
    items: list[KpiRead]
    next_cursor: str | None


class ForecastDayRead(BaseModel):
    """A forecast day: expected shipments with the band, and the tickets they bring."""

    day: date
    expected: float
    low: float
    high: float
    expected_tickets: float


class ActualDayRead(BaseModel):
    """A recent day's actual shipments and tickets."""

    day: date
    shipments: float
    tickets: float


class ForecastRead(BaseModel):
    """The newest forecast of one series."""

    run_id: int
    region: str | None
    service_type: str | None
    first_day: date
    forecast: list[ForecastDayRead]
    actuals: list[ActualDayRead]


class ShipmentLineRead(BaseModel):
    """A shipment behind a number."""

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


class TicketLineRead(BaseModel):
    """A ticket behind a number (its figures, not its text)."""

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


class ClaimLineRead(BaseModel):
    """A claim behind the claim cost."""

    id: int
    reason: str
    status: str
    approved_fen: int | None
    decided_at: datetime | None
    waybill_no: str
    customer_id: int
    customer_name: str


class DrillRead(BaseModel):
    """The rows behind a number: ``entity`` says which list is filled; ``total`` is how
    many rows there are in all (the number's numerator or denominator)."""

    metric: Metric
    period: str
    start: date | None
    dimension: str
    member: str
    part: Literal["numerator", "denominator"]
    entity: Literal["customers", "shipments", "tickets", "claims"]
    total: int
    customers: list[CustomerSummary] = []
    shipments: list[ShipmentLineRead] = []
    tickets: list[TicketLineRead] = []
    claims: list[ClaimLineRead] = []
    next_cursor: str | None


def _run(request: Request, session: SessionDep) -> KpiRun:
    run = dashboards.current_run(session, request.app.state.settings.timezone)
    if run is None:
        raise NotFound("the KPIs have not been computed yet")
    return run


def _file(content: bytes, fmt: str, name: str) -> Response:
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def _encode(table: dashboards.Table, fmt: str) -> bytes:
    return dashboards.to_csv(table) if fmt == "csv" else dashboards.to_xlsx(table)


@router.get("/kpis", response_model=KpiPage)
def list_kpis(
    request: Request,
    session: SessionDep,
    user: Reader,
    metric: Annotated[list[Metric] | None, Query()] = None,
    period: PeriodKind = PeriodKind.month,
    dimension: Dimension = Dimension.all,
    member: Annotated[str | None, Query(max_length=60)] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> KpiPage:
    """KPI values of the current run by period start (``from`` / ``to`` inclusive), for one
    slice (``dimension``; ``member`` or every member) and some or all metrics."""
    run = dashboards.current_run(session, request.app.state.settings.timezone)
    if run is None:
        return KpiPage(run_id=None, as_of=None, items=[], next_cursor=None)
    rows, next_cursor = dashboards.kpi_rows(
        session,
        run=run,
        metrics=metric,
        kind=period.value,
        dimension=dimension.value,
        member=member,
        date_from=date_from,
        date_to=date_to,
        cursor=cursor,
        limit=limit,
    )
    return KpiPage(
        run_id=run.run_id,
        as_of=run.as_of,
        items=[KpiRead.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/kpis/export")
def export_kpis(
    request: Request,
    session: SessionDep,
    user: Reader,
    format: FileFormat = "csv",  # noqa: A002 - the query parameter's public name
    metric: Annotated[list[Metric] | None, Query()] = None,
    period: PeriodKind = PeriodKind.month,
    dimension: Dimension = Dimension.all,
    member: Annotated[str | None, Query(max_length=60)] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """The KPI values ``/kpis`` lists, every page, as CSV (UTF-8 with BOM) or XLSX."""
    run = _run(request, session)
    rows, _next = dashboards.kpi_rows(
        session,
        run=run,
        metrics=metric,
        kind=period.value,
        dimension=dimension.value,
        member=member,
        date_from=date_from,
        date_to=date_to,
        cursor=None,
        limit=dashboards.EXPORT_LIMIT,
    )
    table = dashboards.kpi_table(rows, request_language(request))
    return _file(_encode(table, format), format, f"kpi-{period.value}-{dimension.value}")


def _forecast(session: SessionDep, region: str | None, service_type: str | None) -> ForecastSeries:
    # Imported here: the forecast module brings LightGBM, which the other routes never need.
    from guanxi.analytics.forecast import forecast_series

    dashboards.check_forecast_series(session, region, service_type)
    series = forecast_series(session, region or None, service_type or None)
    if series is None:
        raise NotFound("no forecast has been computed yet")
    return series


@router.get("/forecast", response_model=ForecastRead)
def get_forecast(
    session: SessionDep,
    user: Reader,
    region: Annotated[str | None, Query(max_length=30)] = None,
    service_type: Annotated[str | None, Query(max_length=16)] = None,
) -> ForecastRead:
    """Daily shipments ahead with the prediction band and the expected tickets, for all
    regions and service types or one of each, and the recent actual days."""
    series = _forecast(session, region, service_type)
    return ForecastRead(
        run_id=series.run_id,
        region=series.region,
        service_type=series.service_type,
        first_day=series.first_day,
        forecast=[ForecastDayRead(**d._asdict()) for d in series.forecast],
        actuals=[ActualDayRead(**d._asdict()) for d in series.actuals],
    )


@router.get("/forecast/export")
def export_forecast(
    request: Request,
    session: SessionDep,
    user: Reader,
    format: FileFormat = "csv",  # noqa: A002
    region: Annotated[str | None, Query(max_length=30)] = None,
    service_type: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The forecast of one series as CSV or XLSX."""
    series = _forecast(session, region, service_type)
    table = dashboards.forecast_table(series, request_language(request))
    return _file(_encode(table, format), format, "forecast")


def _key(
    metric: Metric,
    period: DrillPeriod,
    start: date | None,
    dimension: DrillDimension,
    member: str,
    part: Literal["numerator", "denominator"],
    run: KpiRun,
) -> DrillKey:
    return DrillKey(
        metric=metric,
        kind=period,
        start=start if start is not None else run.today,
        dimension=dimension,
        member=member,
        part=part,
    )


@router.get("/drill", response_model=DrillRead)
def drill(
    request: Request,
    session: SessionDep,
    user: Reader,
    metric: Metric,
    period: DrillPeriod = "month",
    start: date | None = None,
    dimension: DrillDimension = "all",
    member: Member = "",
    part: Literal["numerator", "denominator"] = "numerator",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=dashboards.PAGE_MAX)] = 50,
) -> DrillRead:
    """The customers, shipments, tickets or claims behind one number (``start``: the
    period's first day; ``period=asof`` with a class dimension for the RFM classes)."""
    run = _run(request, session)
    key = _key(metric, period, start, dimension, member, part, run)
    page = dashboards.drill(session, run=run, key=key, viewer=user, cursor=cursor, limit=limit)
    out = DrillRead(
        metric=metric,
        period=period,
        start=key.start,
        dimension=dimension,
        member=member,
        part=part,
        entity=page.entity,
        total=page.total,
        next_cursor=page.next_cursor,
    )
    if page.entity == "customers":
        out.customers = list(page.rows)
    elif page.entity == "shipments":
        out.shipments = [
            ShipmentLineRead.model_validate(r, from_attributes=True) for r in page.rows
        ]
    elif page.entity == "tickets":
        out.tickets = [TicketLineRead.model_validate(r, from_attributes=True) for r in page.rows]
    else:
        out.claims = [ClaimLineRead.model_validate(r, from_attributes=True) for r in page.rows]
    return out


@router.get("/drill/export")
def export_drill(
    request: Request,
    session: SessionDep,
    user: Reader,
    metric: Metric,
    format: FileFormat = "csv",  # noqa: A002
    period: DrillPeriod = "month",
    start: date | None = None,
    dimension: DrillDimension = "all",
    member: Member = "",
    part: Literal["numerator", "denominator"] = "numerator",
) -> Response:
    """Every row behind the number (up to 100,000) as CSV or XLSX."""
    run = _run(request, session)
    key = _key(metric, period, start, dimension, member, part, run)
    entity = "customers" if metric == Metric.customers else dashboards.entity_of(key)
    rows = list(dashboards.drill_all(session, run=run, key=key, viewer=user))
    table = dashboards.drill_table(
        entity, rows, request_language(request), request.app.state.settings.timezone
    )
    return _file(_encode(table, format), format, f"{metric.value}-{entity}")


@router.get("/classes/export")
def export_classes(
    request: Request,
    session: SessionDep,
    user: Reader,
    format: FileFormat = "csv",  # noqa: A002
) -> Response:
    """Customers per RFM class (segment, value tier, frequency, relationship)."""
    run = _run(request, session)
    table = dashboards.classes_table(dashboards.classes(session, run), request_language(request))
    return _file(_encode(table, format), format, "classes")
