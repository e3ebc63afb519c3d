"""The dashboards (``/analytics``): customer and shipment KPIs, service KPIs, the volume
forecast, and the drill-down list behind every number.

Pages read the precomputed KPI rows only (``dashboards.board``); charts are drawn in the
browser by the vendored ECharts from a JSON block on the page (no inline script: the
content security policy allows scripts from this site only).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.analytics import dashboards, labels
from guanxi.analytics.dashboards import Board, DrillKey, KpiRun
from guanxi.analytics.kpi import (
    CLASS_DIMENSIONS,
    METRICS,
    SNAPSHOT_PERIOD,
    Dimension,
    Metric,
    PeriodKind,
)
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_, gettext
from guanxi.core.web import request_language
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets.enums import LABELS as TICKET_LABELS
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.analytics_read)]
Text = Annotated[str | None, Query(max_length=60)]

TABS = (
    ("/analytics", "overview"),
    ("/analytics/service", "service"),
    ("/analytics/forecast", "forecast"),
)


def _render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    lang = request_language(request)
    helpers = {
        "metric_label": lambda m: gettext(lang, METRICS[Metric(m)].label),
        "member_label": lambda d, m: dashboards.member_label(d, m, lang),
        "class_label": lambda code: labels.name(code, lang),
        "period_label": lambda kind, start: dashboards.period_label(kind, start, lang),
        "show": lambda info, value: dashboards.display(info, value, lang),
        "change": dashboards.display_change,
        "tlabel": lambda code: (
            gettext(lang, TICKET_LABELS[code]) if code in TICKET_LABELS else code
        ),
        "tabs": TABS,
    }
    return render(request, template, status_code=status_code, **helpers, **values)


def _choice(value: str | None, allowed: list[str], name: str, default: str) -> str:
    if not value:
        return default
    if value not in allowed:
        raise ValidationFailed(
            [
                FieldError(
                    ("query", name),
                    "value_unknown",
                    f"Unknown value; expected one of: {', '.join(allowed)}",
                    {"choices": ", ".join(allowed)},
                )
            ]
        )
    return value


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(
            [FieldError(("query", name), "date_invalid", "Not a date (YYYY-MM-DD)")]
        ) from exc


def drill_url(
    metric: Metric | str,
    kind: str,
    start: date | None,
    dimension: str,
    member: str,
    part: str = "numerator",
) -> str:
    """The drill-down page of one number."""
    params = {"metric": str(metric), "period": kind, "dimension": dimension, "member": member}
    if start is not None:
        params["start"] = start.isoformat()
    if part != "numerator":
        params["part"] = part
    return "/analytics/drill?" + urlencode(params)


def _board(
    request: Request,
    session: SessionDep,
    run: KpiRun,
    metrics: tuple[Metric, ...],
    period: str | None,
    start: str | None,
    dimension: str | None,
    member: str | None,
) -> Board:
    kind = _choice(period, [k.value for k in PeriodKind], "period", PeriodKind.month.value)
    dim = _choice(dimension, [d.value for d in Dimension], "dimension", Dimension.all.value)
    return dashboards.board(
        session,
        run=run,
        kind=kind,
        start=_date(start, "start"),
        dimension=dim,
        member=(member or "") if dim != Dimension.all else "",
        metrics=metrics,
    )


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def _chart_values(b: Board, metric: Metric) -> list[float | None]:
    """A metric's trend as the chart plots it: money in yuan, shares in %."""
    unit = METRICS[metric].unit
    values = b.values(metric)
    if unit == "fen":
        return [None if v is None else round(v / 100, 2) for v in values]
    if unit == "rate":
        return [_pct(v) for v in values]
    return [None if v is None else round(v, 2) for v in values]


def _series(b: Board, metric: Metric, lang: str, kind: str, axis: int = 0) -> dict[str, Any]:
    return {
        "name": gettext(lang, METRICS[metric].label),
        "type": kind,
        "data": _chart_values(b, metric),
        "yAxis": axis,
        "links": [drill_url(metric, b.kind, p, b.dimension, b.member) for p in b.trend],
    }


def _axis(unit: str, lang: str) -> dict[str, str]:
    suffix = {"rate": "%", "fen": gettext(lang, "yuan")}.get(unit, "")
    return {"suffix": suffix}


# The trend charts of a tab: (id, title, axis units, (metric, chart type, y axis) a series).
TrendChart = tuple[str, str, tuple[str, ...], tuple[tuple[Metric, str, int], ...]]

OVERVIEW_TRENDS: tuple[TrendChart, ...] = (
    (
        "chart-volume",
        N_("Shipments and revenue"),
        ("count", "fen"),
        ((Metric.shipments, "bar", 0), (Metric.revenue_fen, "line", 1)),
    ),
    (
        "chart-customers",
        N_("Active, new and lost customers"),
        ("count",),
        (
            (Metric.active_customers, "line", 0),
            (Metric.new_customers, "bar", 0),
            (Metric.lost_customers, "bar", 0),
        ),
    ),
    (
        "chart-retention",
        N_("Retention, churn and repeat rates"),
        ("rate",),
        (
            (Metric.retention_rate, "line", 0),
            (Metric.churn_rate, "line", 0),
            (Metric.repeat_rate, "line", 0),
        ),
    ),
)

SERVICE_TRENDS: tuple[TrendChart, ...] = (
    (
        "chart-complaints",
        N_("Complaints per 10,000 shipments and SLA attainment"),
        ("count", "rate"),
        ((Metric.complaints_per_10k, "bar", 0), (Metric.sla_attainment, "line", 1)),
    ),
    (
        "chart-times",
        N_("First response (minutes) and resolution (hours), medians"),
        ("count", "count"),
        ((Metric.first_response_median_min, "line", 0), (Metric.resolution_median_h, "line", 1)),
    ),
    (
        "chart-quality",
        N_("Reopen rate and CSAT"),
        ("rate", "count"),
        ((Metric.reopen_rate, "bar", 0), (Metric.csat, "line", 1)),
    ),
)


def _trend_charts(b: Board, specs: tuple[TrendChart, ...], lang: str) -> list[Any]:
    categories = [dashboards.period_label(b.kind, p, lang) for p in b.trend]
    return [
        {
            "id": chart_id,
            "title": gettext(lang, title),
            "categories": categories,
            "axes": [_axis(unit, lang) for unit in units],
            "series": [_series(b, metric, lang, kind, axis) for metric, kind, axis in series],
        }
        for chart_id, title, units, series in specs
    ]


def _overview_charts(b: Board, classes: dict[str, list[tuple[str, int]]], lang: str) -> list[Any]:
    # Smallest first: a horizontal bar chart lists its categories bottom up.
    segments = list(reversed(classes.get("segment", [])))
    seg_link = "/analytics/drill?" + urlencode(
        {"metric": "customers", "period": SNAPSHOT_PERIOD, "dimension": "segment"}
    )
    return [
        *_trend_charts(b, OVERVIEW_TRENDS, lang),
        {
            "id": "chart-segments",
            "title": gettext(lang, "Customers by RFM segment"),
            "horizontal": True,
            "categories": [labels.name(member, lang) for member, _n in segments],
            "axes": [_axis("count", lang)],
            "series": [
                {
                    "name": gettext(lang, "Customers"),
                    "type": "bar",
                    "data": [n for _m, n in segments],
                    "yAxis": 0,
                    "links": [seg_link + "&" + urlencode({"member": m}) for m, _n in segments],
                }
            ],
        },
    ]


def _slice_params(b: Board) -> dict[str, str]:
    return {
        "period": b.kind,
        "start": b.start.isoformat(),
        "dimension": b.dimension,
        "member": b.member,
    }


def _export_params(b: Board) -> str:
    params: list[tuple[str, str]] = [("metric", m.value) for m in b.metrics]
    params += [
        ("period", b.kind),
        ("dimension", b.dimension),
        ("from", b.trend[0].isoformat()),
        ("to", b.start.isoformat()),
    ]
    if b.dimension != Dimension.all:
        params.append(("member", b.member))
    return urlencode(params)


def _empty(request: Request) -> Response:
    return _render(request, "analytics/empty.html", tab="")


def _tab(
    request: Request,
    session: SessionDep,
    *,
    tab: str,
    metrics: tuple[Metric, ...],
    period: str | None,
    start: str | None,
    dimension: str | None,
    member: str | None,
) -> Response:
    lang = request_language(request)
    run = dashboards.current_run(session, request.app.state.settings.timezone)
    if run is None:
        return _empty(request)
    b = _board(request, session, run, metrics, period, start, dimension, member)
    classes = dashboards.classes(session, run) if tab == "overview" else {}
    charts = (
        _overview_charts(b, classes, lang)
        if tab == "overview"
        else _trend_charts(b, SERVICE_TRENDS, lang)
    )
    return _render(
        request,
        f"analytics/{tab}.html",
        tab=tab,
        board=b,
        run=run,
        tiles=b.tiles(),
        charts=charts,
        classes=classes,
        class_dimensions=CLASS_DIMENSIONS,
        infos=METRICS,
        drill_url=drill_url,
        slice_params=_slice_params(b),
        export_params=_export_params(b),
        kinds=[k.value for k in PeriodKind],
        dimensions=[d.value for d in Dimension],
    )


@router.get("/analytics", response_class=HTMLResponse)
def overview(
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Text = None,
    start: Text = None,
    dimension: Text = None,
    member: Text = None,
) -> Response:
    """Customers and shipments: tiles with the change over the previous period, trends,
    the RFM segments, and the KPI table."""
    return _tab(
        request,
        session,
        tab="overview",
        metrics=dashboards.OVERVIEW,
        period=period,
        start=start,
        dimension=dimension,
        member=member,
    )


@router.get("/analytics/service", response_class=HTMLResponse)
def service_kpis(
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Text = None,
    start: Text = None,
    dimension: Text = None,
    member: Text = None,
) -> Response:
    """Service: complaints, response and resolution times, SLA attainment, reopen rate,
    CSAT and claim cost."""
    return _tab(
        request,
        session,
        tab="service",
        metrics=dashboards.SERVICE,
        period=period,
        start=start,
        dimension=dimension,
        member=member,
    )


@router.get("/analytics/forecast", response_class=HTMLResponse)
def forecast_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    region: Text = None,
    service_type: Text = None,
) -> Response:
    """Daily shipments ahead with the prediction band, and the tickets they will bring."""
    from guanxi.analytics.forecast import forecast_members, forecast_series

    lang = request_language(request)
    dashboards.check_forecast_series(session, region, service_type)
    series = forecast_series(session, region or None, service_type or None)
    regions, services = forecast_members(session)
    chart: dict[str, Any] | None = None
    if series is not None:
        days = [d.day for d in series.actuals] + [d.day for d in series.forecast]
        n_actual = len(series.actuals)
        blank: list[float | None] = [None] * n_actual
        chart = {
            "id": "chart-forecast",
            "title": gettext(lang, "Shipments per day: actual, forecast and band"),
            "categories": [d.isoformat() for d in days],
            "axes": [_axis("count", lang), _axis("count", lang)],
            "series": [
                {
                    "name": gettext(lang, "Actual shipments"),
                    "type": "line",
                    "data": [round(d.shipments, 1) for d in series.actuals]
                    + [None] * len(series.forecast),
                    "yAxis": 0,
                },
                {
                    "name": gettext(lang, "Band low"),
                    "type": "line",
                    "band": "low",
                    "data": blank + [round(d.low, 1) for d in series.forecast],
                    "yAxis": 0,
                },
                {
                    "name": gettext(lang, "Band"),
                    "type": "line",
                    "band": "width",
                    "data": blank + [round(d.high - d.low, 1) for d in series.forecast],
                    "yAxis": 0,
                },
                {
                    "name": gettext(lang, "Forecast shipments"),
                    "type": "line",
                    "dashed": True,
                    "data": blank + [round(d.expected, 1) for d in series.forecast],
                    "yAxis": 0,
                },
                {
                    "name": gettext(lang, "Expected tickets"),
                    "type": "bar",
                    "data": [round(d.tickets, 1) for d in series.actuals]
                    + [round(d.expected_tickets, 1) for d in series.forecast],
                    "yAxis": 1,
                },
            ],
        }
    params = {"region": region or "", "service_type": service_type or ""}
    return _render(
        request,
        "analytics/forecast.html",
        tab="forecast",
        series=series,
        charts=[chart] if chart else [],
        regions=regions,
        services=services,
        region=region or "",
        service_type=service_type or "",
        export_params=urlencode(params),
    )


@router.get("/analytics/drill", response_class=HTMLResponse)
def drill_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    metric: Text = None,
    period: Text = None,
    start: Text = None,
    dimension: Text = None,
    member: Text = None,
    part: Text = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The customers, shipments, tickets or claims behind one number, 50 to a page."""
    run = dashboards.current_run(session, request.app.state.settings.timezone)
    if run is None:
        return _empty(request)
    name = _choice(metric, [m.value for m in Metric], "metric", "")
    if not name:
        raise ValidationFailed([FieldError(("query", "metric"), "missing", "Field required")])
    kind = _choice(period, [*(k.value for k in PeriodKind), SNAPSHOT_PERIOD], "period", "month")
    dim = _choice(
        dimension,
        [*(d.value for d in Dimension), *CLASS_DIMENSIONS[1:]],
        "dimension",
        "all",
    )
    key = DrillKey(
        metric=Metric(name),
        kind=kind,
        start=_date(start, "start") or run.today,
        dimension=dim,
        member=member or "",
        part=_choice(part, ["numerator", "denominator"], "part", "numerator"),
    )
    page = dashboards.drill(session, run=run, key=key, viewer=user, cursor=cursor)
    stored = None
    if key.metric != Metric.customers:
        stored = dashboards.board(
            session,
            run=run,
            kind=key.kind,
            start=key.start,
            dimension=key.dimension,
            member=key.member,
            metrics=(key.metric,),
        ).tiles()[0]
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    other_part = "denominator" if key.part == "numerator" else "numerator"
    categories = (
        dashboards.category_names(
            session, [t.category for t in page.rows], request_language(request)
        )
        if page.entity == "tickets"
        else {}
    )
    return _render(
        request,
        "analytics/drill.html",
        categories=categories,
        tab="",
        run=run,
        key=key,
        info=METRICS[key.metric],
        page=page,
        stored=stored,
        params=params,
        export_params=urlencode(params),
        other_part=other_part,
        other_url=drill_url(
            key.metric,
            key.kind,
            key.start if key.kind != SNAPSHOT_PERIOD else None,
            key.dimension,
            key.member,
            other_part,
        ),
        timezone=request.app.state.settings.timezone,
    )
