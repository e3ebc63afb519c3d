"""KPIs per period and slice (step ``kpi``): customers active / new / lost, retention,
churn and repeat rates, shipments and revenue, on-time, damage and loss rates, complaints
per 10,000 shipments, first-response and resolution times, SLA attainment, reopen rate,
claim cost and CSAT.

Periods are local calendar days (the last 90), ISO weeks (from Monday), months, quarters
and years over the whole history. Slices are everything (``all``), a ``region``, a
``service_type`` and an RFM ``segment`` of the current ``rfm`` run. Which region a figure
belongs to follows the figure: the customer's own region for customer counts, the origin
province for shipments and claims, the ticket's region (the province the case is about)
for tickets. A service-type slice restricts the shipments a customer figure looks at
(a customer "active in express" shipped express in the period).

Every value is stored with its numerator and denominator so a rate can be re-aggregated
(sum the numerators, sum the denominators). The SQL is written once in DuckDB's dialect
and adds up counts only; the rates are assembled here from those counts. Pages and the
API read these rows only — nothing on screen recomputes a KPI from the domain tables.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select

from guanxi.analytics.engine import DuckWorkspace, PostgresWorkspace, SparkWorkspace
from guanxi.analytics.models import CustomerClass, KpiValue
from guanxi.analytics.runner import Step, StepContext, StepResult, latest_run, register
from guanxi.core.i18n import N_

# This many days without a shipment and a customer counts as lost.
LOST_AFTER_DAYS = 90
# Day periods are kept for the last this many days (today included).
DAY_PERIODS = 90


class PeriodKind(StrEnum):
    """How long a period is."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Dimension(StrEnum):
    """How the figures are sliced (``all``: not sliced, member '')."""

    all = "all"
    region = "region"
    service_type = "service_type"
    segment = "segment"


# The customer distributions of the current ``rfm`` run: period ``asof`` (the run's day),
# metric ``customers``, one row per class.
SNAPSHOT_PERIOD = "asof"
CLASS_DIMENSIONS = ("segment", "value_tier", "frequency_class", "relationship")


class Metric(StrEnum):
    """The KPIs the step computes (names as stored in ``analytics_kpi.metric``)."""

    active_customers = "active_customers"
    new_customers = "new_customers"
    lost_customers = "lost_customers"
    retention_rate = "retention_rate"
    churn_rate = "churn_rate"
    repeat_rate = "repeat_rate"
    shipments = "shipments"
    revenue_fen = "revenue_fen"
    on_time_rate = "on_time_rate"
    damage_rate = "damage_rate"
    loss_rate = "loss_rate"
    tickets = "tickets"
    complaints = "complaints"
    complaints_per_10k = "complaints_per_10k"
    first_response_median_min = "first_response_median_min"
    first_response_mean_min = "first_response_mean_min"
    resolution_median_h = "resolution_median_h"
    resolution_mean_h = "resolution_mean_h"
    sla_attainment = "sla_attainment"
    reopen_rate = "reopen_rate"
    claim_cost_fen = "claim_cost_fen"
    csat = "csat"
    # A class distribution of the rfm run (period "asof"), not a KPI over time.
    customers = "customers"


@dataclass(frozen=True)
class MetricInfo:
    """How a KPI is shown and what lies behind it.

    ``unit``: count, fen, rate (a share, shown as %), per10k, minutes, hours or score.
    ``drill``: what the drill-down lists — customers, shipments, tickets or claims — for
    the numerator (or the counted rows of a count). ``better``: "up", "down" or "" when a
    change is neither good nor bad.
    """

    metric: Metric
    label: str
    unit: str
    drill: str
    better: str
    definition: str
    # What the drill-down of the denominator lists, when it differs from the numerator's.
    base_drill: str | None = None

    @property
    def summed(self) -> bool:
        """The value is a sum or an average over the rows listed (revenue, claim cost,
        times, CSAT): the numerator is their sum, the denominator how many they are."""
        return self.metric in _SUMMED


M = Metric
_SUMMED = frozenset(
    {
        M.revenue_fen,
        M.claim_cost_fen,
        M.csat,
        M.first_response_mean_min,
        M.first_response_median_min,
        M.resolution_mean_h,
        M.resolution_median_h,
    }
)
METRICS: dict[Metric, MetricInfo] = {
    i.metric: i
    for i in (
        MetricInfo(
            M.active_customers,
            N_("Active customers"),
            "count",
            "customers",
            "up",
            N_("Customers with at least one shipment created in the period."),
        ),
        MetricInfo(
            M.new_customers,
            N_("New customers"),
            "count",
            "customers",
            "up",
            N_("Customers whose first shipment ever was created in the period."),
        ),
        MetricInfo(
            M.lost_customers,
            N_("Lost customers"),
            "count",
            "customers",
            "down",
            N_(
                "Customers who reached 90 days without a shipment during the period and had "
                "not shipped again by its end (or by now, for the current period)."
            ),
        ),
        MetricInfo(
            M.retention_rate,
            N_("Retention rate"),
            "rate",
            "customers",
            "up",
            N_(
                "Of the customers active in the previous period, the share also active in this one."
            ),
        ),
        MetricInfo(
            M.churn_rate,
            N_("Churn rate"),
            "rate",
            "customers",
            "down",
            N_(
                "Of the customers active in the previous period, the share not active in this "
                "one (1 − retention)."
            ),
        ),
        MetricInfo(
            M.repeat_rate,
            N_("Repeat rate"),
            "rate",
            "customers",
            "up",
            N_("Active customers with two or more shipments in the period, of all active."),
        ),
        MetricInfo(
            M.shipments,
            N_("Shipments"),
            "count",
            "shipments",
            "up",
            N_("Shipments created in the period."),
        ),
        MetricInfo(
            M.revenue_fen,
            N_("Revenue"),
            "fen",
            "shipments",
            "up",
            N_("Sum of the fees of the shipments created in the period."),
        ),
        MetricInfo(
            M.on_time_rate,
            N_("On-time rate"),
            "rate",
            "shipments",
            "up",
            N_(
                "Shipments delivered in the period at or before their promised time, of those "
                "delivered in the period with a promised time."
            ),
        ),
        MetricInfo(
            M.damage_rate,
            N_("Damage rate"),
            "rate",
            "shipments",
            "down",
            N_("Shipments created in the period marked damaged, of all created."),
        ),
        MetricInfo(
            M.loss_rate,
            N_("Loss rate"),
            "rate",
            "shipments",
            "down",
            N_("Shipments created in the period marked lost, of all created."),
        ),
        MetricInfo(
            M.tickets,
            N_("Tickets"),
            "count",
            "tickets",
            "",
            N_("Tickets of any type opened in the period."),
        ),
        MetricInfo(
            M.complaints,
            N_("Complaints"),
            "count",
            "tickets",
            "down",
            N_("Complaint tickets opened in the period."),
        ),
        MetricInfo(
            M.complaints_per_10k,
            N_("Complaints per 10,000 shipments"),
            "per10k",
            "tickets",
            "down",
            N_(
                "Complaints opened in the period per 10,000 shipments created in it (by "
                "region: shipments to that province, where complaints are placed)."
            ),
            base_drill="shipments",
        ),
        MetricInfo(
            M.first_response_median_min,
            N_("First response, median"),
            "minutes",
            "tickets",
            "down",
            N_(
                "Median minutes from opening to the first response, over tickets opened in "
                "the period that have one (calendar time)."
            ),
        ),
        MetricInfo(
            M.first_response_mean_min,
            N_("First response, mean"),
            "minutes",
            "tickets",
            "down",
            N_(
                "Mean minutes from opening to the first response, over tickets opened in the "
                "period that have one (calendar time)."
            ),
        ),
        MetricInfo(
            M.resolution_median_h,
            N_("Resolution time, median"),
            "hours",
            "tickets",
            "down",
            N_(
                "Median hours from opening to resolution, over tickets resolved in the period "
                "(calendar time)."
            ),
        ),
        MetricInfo(
            M.resolution_mean_h,
            N_("Resolution time, mean"),
            "hours",
            "tickets",
            "down",
            N_(
                "Mean hours from opening to resolution, over tickets resolved in the period "
                "(calendar time)."
            ),
        ),
        MetricInfo(
            M.sla_attainment,
            N_("SLA attainment"),
            "rate",
            "tickets",
            "up",
            N_(
                "Tickets resolved in the period without any SLA breach recorded, of all "
                "resolved in the period."
            ),
        ),
        MetricInfo(
            M.reopen_rate,
            N_("Reopen rate"),
            "rate",
            "tickets",
            "down",
            N_("Tickets resolved in the period that had been reopened, of all resolved."),
        ),
        MetricInfo(
            M.claim_cost_fen,
            N_("Claim cost"),
            "fen",
            "claims",
            "down",
            N_(
                "Amounts approved on claims decided (approved or paid) in the period; the "
                "denominator is the number of those claims."
            ),
        ),
        MetricInfo(
            M.csat,
            N_("CSAT"),
            "score",
            "tickets",
            "up",
            N_(
                "Mean satisfaction score (1–10, the survey's CSAT) the customers gave on tickets "
                "resolved in the period."
            ),
        ),
        MetricInfo(
            M.customers,
            N_("Customers"),
            "count",
            "customers",
            "",
            N_("Customers in each class of the latest RFM run."),
        ),
    )
}


# --------------------------------------------------------------------------- periods


def period_start(kind: str, moment: date) -> date:
    """The first day of the ``kind`` period holding ``moment`` (weeks start on Monday)."""
    if kind == "day":
        return moment
    if kind == "week":
        return moment - timedelta(days=moment.weekday())
    if kind == "month":
        return moment.replace(day=1)
    if kind == "quarter":
        return date(moment.year, 3 * ((moment.month - 1) // 3) + 1, 1)
    if kind == "year":
        return date(moment.year, 1, 1)
    raise ValueError(f"period {kind!r}")


def shift(kind: str, start: date, n: int) -> date:
    """The start of the period ``n`` periods after (negative: before) ``start``."""
    if kind == "day":
        return start + timedelta(days=n)
    if kind == "week":
        return start + timedelta(days=7 * n)
    months = {"month": 1, "quarter": 3, "year": 12}[kind] * n
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


def period_end(kind: str, start: date) -> date:
    """The first day after the period (exclusive end)."""
    return shift(kind, start, 1)


# --------------------------------------------------------------------------- SQL

# (DATE_TRUNC unit, one period as an interval) per kind.
_UNITS = {
    "day": ("day", "INTERVAL 1 DAY"),
    "week": ("week", "INTERVAL 7 DAY"),
    "month": ("month", "INTERVAL 1 MONTH"),
    "quarter": ("quarter", "INTERVAL 3 MONTH"),
    "year": ("year", "INTERVAL 1 YEAR"),
}


def _trunc(kind: str, column: str) -> str:
    return f"CAST(DATE_TRUNC('{_UNITS[kind][0]}', {column}) AS DATE)"


# The member of a customer's shipment sequence that is every service type together.
_EVERY = "*"


def _customer_slices(segments: str, ctes: str, columns: str) -> str:
    """The customer rows of the CTE ``ev`` (defined last in ``ctes``; ``st`` is
    ``_EVERY`` or a service type) summed per period: by service type, and for every
    service type together by everything, region and segment."""
    sums = ", ".join(f"SUM({c}) AS {c}" for c in columns.split(", "))
    return f"""
WITH {ctes}
SELECT kind, p AS period_start, 'service_type' AS dimension, st AS member, {sums}
FROM ev
WHERE st <> '{_EVERY}'
GROUP BY kind, p, st
UNION ALL
SELECT e.kind, e.p,
       CASE WHEN GROUPING(c.region) = 0 THEN 'region'
            WHEN GROUPING(g.segment) = 0 THEN 'segment' ELSE 'all' END,
       CASE WHEN GROUPING(c.region) = 0 THEN c.region
            WHEN GROUPING(g.segment) = 0 THEN g.segment ELSE '' END,
       {", ".join(f"SUM(e.{c})" for c in columns.split(", "))}
FROM ev AS e
LEFT JOIN customer AS c ON c.id = e.customer_id
LEFT JOIN {segments} AS g ON g.customer_id = e.customer_id
WHERE e.st = '{_EVERY}'
GROUP BY GROUPING SETS ((e.kind, e.p), (e.kind, e.p, c.region), (e.kind, e.p, g.segment))
"""  # noqa: S608 - names from code, values bound


def activity_sql(segments: str, kind: str) -> str:
    """Customers active in each ``kind`` period, those with 2+ shipments (repeat), and
    those also active in the period before (retained), per slice.

    One statement per kind: each sorts only its own customer-periods (a week statement
    over ten million shipments stays in memory where all five kinds together spill).
    """
    since = " AND created_at >= $day_base" if kind == "day" else ""
    ctes = f"""ev AS (
    SELECT '{kind}' AS kind, customer_id, st, p, 1 AS active,
           CASE WHEN n >= 2 THEN 1 ELSE 0 END AS repeated,
           CASE WHEN LAG(p) OVER (PARTITION BY customer_id, st ORDER BY p)
                     = CAST(p - {_UNITS[kind][1]} AS DATE) THEN 1 ELSE 0 END AS retained
    FROM (
        SELECT customer_id,
               CASE WHEN GROUPING(service_type) = 1 THEN '{_EVERY}'
                    ELSE COALESCE(service_type, '') END AS st,
               p, COUNT(*) AS n
        FROM (
            SELECT customer_id, service_type, {_trunc(kind, "created_at")} AS p
            FROM shipment
            WHERE created_at < $as_of{since}
        ) AS x
        GROUP BY GROUPING SETS ((customer_id, p), (customer_id, service_type, p))
    ) AS cp
    WHERE st <> ''
)"""  # noqa: S608 - names from code, values bound
    return _customer_slices(segments, ctes, "active, repeated, retained")


def lifecycle_sql(segments: str) -> str:
    """Customers whose first shipment fell in each period (new) and customers who went
    90 days without a shipment in it and had not come back by its end (lost), per slice
    and for every kind of period, from one pass over each customer's shipments."""
    news = []
    losses = []
    for kind in PeriodKind:
        news.append(
            f"SELECT '{kind}' AS kind, customer_id, st, {_trunc(kind, 'created_at')} AS p, "  # noqa: S608
            "1 AS n_new, 0 AS n_lost FROM edges WHERE prv IS NULL"
        )
        # Lost in the period the 90th day fell in, unless they shipped again before its
        # end (or the cut-off, for the current period).
        losses.append(
            f"SELECT '{kind}' AS kind, customer_id, st, {_trunc(kind, 'lost_at')} AS p, "  # noqa: S608
            "0 AS n_new, 1 AS n_lost FROM edges "
            f"WHERE lost_at < $as_of AND (nxt IS NULL OR nxt >= LEAST("
            f"CAST({_trunc(kind, 'lost_at')} + {_UNITS[kind][1]} AS TIMESTAMP), $as_of))"
        )
    ctes = f"""x AS (
        SELECT customer_id, service_type, created_at FROM shipment WHERE created_at < $as_of
    ),
    seq AS (
        SELECT customer_id, '{_EVERY}' AS st, created_at FROM x
        UNION ALL
        SELECT customer_id, service_type, created_at FROM x WHERE service_type IS NOT NULL
    ),
    edges AS (
        SELECT customer_id, st, created_at, lost_at, prv, nxt
        FROM (
            SELECT customer_id, st, created_at,
                   created_at + INTERVAL {LOST_AFTER_DAYS} DAY AS lost_at,
                   LAG(created_at) OVER w AS prv,
                   LEAD(created_at) OVER w AS nxt
            FROM seq
            WINDOW w AS (PARTITION BY customer_id, st ORDER BY created_at)
        ) AS ordered
        WHERE prv IS NULL OR nxt IS NULL OR nxt > lost_at
    ),
    ev AS (
    {" UNION ALL ".join(news + losses)}
    )"""  # noqa: S608 - names from code, values bound
    sql = _customer_slices(segments, ctes, "n_new, n_lost")
    return f"SELECT * FROM ({sql}) AS t WHERE kind <> 'day' OR period_start >= $day_base"  # noqa: S608


def _blocks(kind_column: str, since_column: str, columns: str) -> str:
    """One SELECT per period kind over the rows of ``b``, UNION ALL'ed (the day kind only
    over the last days)."""
    parts = []
    for kind in PeriodKind:
        since = f" WHERE {since_column} >= $day_from" if kind == "day" else ""
        parts.append(
            f"SELECT '{kind}' AS kind, {_trunc(kind, kind_column)} AS p, {columns} FROM b{since}"  # noqa: S608
        )
    return " UNION ALL ".join(parts)


def _sliced(dimensions: dict[str, str]) -> tuple[str, str]:
    """(dimension and member columns, GROUPING SETS clause) for slice name -> column."""
    dim = "CASE " + " ".join(
        f"WHEN GROUPING({col}) = 0 THEN '{name}'" for name, col in dimensions.items()
    )
    member = "CASE " + " ".join(
        f"WHEN GROUPING({col}) = 0 THEN {col}" for col in dimensions.values()
    )
    sets = ", ".join(["(kind, p)", *[f"(kind, p, {col})" for col in dimensions.values()]])
    return (
        f"{dim} ELSE 'all' END AS dimension, {member} ELSE '' END AS member",
        f"GROUPING SETS ({sets})",
    )


def shipment_sql(segments: str) -> str:
    """Shipments, revenue, damaged and lost per creation period and slice; also per
    destination province (the complaint rate's denominator by region)."""
    slices, sets = _sliced(
        {
            "region": "origin_province",
            "service_type": "service_type",
            "segment": "segment",
            "dest_region": "dest_province",
        }
    )
    base = f"""
        SELECT s.created_at, s.origin_province, s.dest_province, s.service_type, g.segment,
               s.fee_fen, s.is_damaged, s.is_lost
        FROM shipment AS s
        LEFT JOIN {segments} AS g ON g.customer_id = s.customer_id
        WHERE s.created_at < $as_of
    """  # noqa: S608 - names from code, values bound
    rows = _blocks(
        "created_at",
        "created_at",
        "origin_province, dest_province, service_type, segment, fee_fen, "
        "CASE WHEN is_damaged THEN 1 ELSE 0 END AS damaged, "
        "CASE WHEN is_lost THEN 1 ELSE 0 END AS lost",
    )
    return f"""
WITH b AS ({base})
SELECT kind, p AS period_start, {slices},
       COUNT(*) AS shipments, SUM(COALESCE(fee_fen, 0)) AS revenue,
       SUM(damaged) AS damaged, SUM(lost) AS lost
FROM ({rows}) AS x
GROUP BY {sets}
"""  # noqa: S608 - names from code, values bound


def delivery_sql(segments: str) -> str:
    """Deliveries with a promised time per delivery period and slice, and how many were
    on time."""
    slices, sets = _sliced(
        {"region": "origin_province", "service_type": "service_type", "segment": "segment"}
    )
    base = f"""
        SELECT s.delivered_at, s.origin_province, s.service_type, g.segment,
               CASE WHEN s.delivered_at <= s.promised_at THEN 1 ELSE 0 END AS on_time
        FROM shipment AS s
        LEFT JOIN {segments} AS g ON g.customer_id = s.customer_id
        WHERE s.delivered_at IS NOT NULL AND s.promised_at IS NOT NULL
          AND s.delivered_at < $as_of AND s.created_at < $as_of
    """  # noqa: S608 - names from code, values bound
    rows = _blocks(
        "delivered_at", "delivered_at", "origin_province, service_type, segment, on_time"
    )
    return f"""
WITH b AS ({base})
SELECT kind, p AS period_start, {slices},
       COUNT(*) AS delivered, SUM(on_time) AS on_time
FROM ({rows}) AS x
GROUP BY {sets}
"""  # noqa: S608 - names from code, values bound


_TICKET_SLICES = {"region": "region", "service_type": "service_type", "segment": "segment"}


def opened_sql(segments: str) -> str:
    """Tickets and complaints per opening period and slice, with first-response minutes
    (count, sum, median) of those answered before the cut-off."""
    slices, sets = _sliced(_TICKET_SLICES)
    base = f"""
        SELECT t.created_at, t.region, sh.service_type, g.segment,
               CASE WHEN t.type = 'complaint' THEN 1 ELSE 0 END AS complaint,
               CASE WHEN t.first_response_at IS NOT NULL AND t.first_response_at < $as_of
                    THEN (EPOCH(t.first_response_at) - EPOCH(t.created_at)) / 60.0 END AS fr
        FROM ticket AS t
        LEFT JOIN shipment AS sh ON sh.waybill_no = t.waybill_no
        LEFT JOIN {segments} AS g ON g.customer_id = t.customer_id
        WHERE t.created_at < $as_of
    """  # noqa: S608 - names from code, values bound
    rows = _blocks("created_at", "created_at", "region, service_type, segment, complaint, fr")
    return f"""
WITH b AS ({base})
SELECT kind, p AS period_start, {slices},
       COUNT(*) AS tickets, SUM(complaint) AS complaints,
       COUNT(fr) AS fr_n, SUM(fr) AS fr_sum, MEDIAN(fr) AS fr_median
FROM ({rows}) AS x
GROUP BY {sets}
"""  # noqa: S608 - names from code, values bound


def resolved_sql(segments: str) -> str:
    """Tickets resolved per resolution period and slice: resolution hours (count, sum,
    median), resolved without an SLA breach, reopened before, satisfaction (sum, count)."""
    slices, sets = _sliced(_TICKET_SLICES)
    base = f"""
        SELECT t.resolved_at, t.region, sh.service_type, g.segment,
               (EPOCH(t.resolved_at) - EPOCH(t.created_at)) / 3600.0 AS hours,
               CASE WHEN b.ticket_id IS NULL THEN 1 ELSE 0 END AS attained,
               CASE WHEN t.reopened > 0 THEN 1 ELSE 0 END AS was_reopened,
               t.satisfaction
        FROM ticket AS t
        LEFT JOIN shipment AS sh ON sh.waybill_no = t.waybill_no
        LEFT JOIN {segments} AS g ON g.customer_id = t.customer_id
        LEFT JOIN (
            SELECT DISTINCT ticket_id FROM sla_event
            WHERE kind = 'breach' AND recorded_at < $as_of
        ) AS b ON b.ticket_id = t.id
        WHERE t.resolved_at IS NOT NULL AND t.resolved_at < $as_of AND t.created_at < $as_of
    """  # noqa: S608 - names from code, values bound
    rows = _blocks(
        "resolved_at",
        "resolved_at",
        "region, service_type, segment, hours, attained, was_reopened, satisfaction",
    )
    return f"""
WITH b AS ({base})
SELECT kind, p AS period_start, {slices},
       COUNT(*) AS resolved, SUM(hours) AS hours_sum, MEDIAN(hours) AS hours_median,
       SUM(attained) AS attained, SUM(was_reopened) AS reopened,
       SUM(satisfaction) AS csat_sum, COUNT(satisfaction) AS csat_n
FROM ({rows}) AS x
GROUP BY {sets}
"""  # noqa: S608 - names from code, values bound


def claim_sql(segments: str) -> str:
    """Claims decided (approved or paid) per decision period and slice, and the amounts
    approved on them."""
    slices, sets = _sliced(
        {"region": "origin_province", "service_type": "service_type", "segment": "segment"}
    )
    base = f"""
        SELECT c.decided_at, sh.origin_province, sh.service_type, g.segment,
               COALESCE(c.approved_fen, 0) AS approved_fen
        FROM claim AS c
        LEFT JOIN shipment AS sh ON sh.id = c.shipment_id
        LEFT JOIN {segments} AS g ON g.customer_id = c.customer_id
        WHERE c.status IN ('approved', 'paid') AND c.decided_at IS NOT NULL
          AND c.decided_at < $as_of
    """  # noqa: S608 - names from code, values bound
    rows = _blocks(
        "decided_at", "decided_at", "origin_province, service_type, segment, approved_fen"
    )
    return f"""
WITH b AS ({base})
SELECT kind, p AS period_start, {slices},
       COUNT(*) AS claims, SUM(approved_fen) AS cost
FROM ({rows}) AS x
GROUP BY {sets}
"""  # noqa: S608 - names from code, values bound


# --------------------------------------------------------------------------- the step

Key = tuple[str, date, str, str]


def _as_date(value: Any) -> date:
    day: date = value.date() if isinstance(value, datetime) else value
    return day


def _rows(table: pa.Table) -> dict[Key, dict[str, Any]]:
    """Query rows keyed by (kind, period start, dimension, member); slices without a
    member (no region, no segment) are dropped — the ``all`` slice counts them."""
    out: dict[Key, dict[str, Any]] = {}
    for row in table.to_pylist():
        member = row.pop("member")
        if member is None:
            continue
        key = (row.pop("kind"), _as_date(row.pop("period_start")), row.pop("dimension"), member)
        out[key] = row
    return out


def _segments_relation(ctx: StepContext, rfm_run: int | None) -> str:
    """A relation of (customer_id, segment) for the SQL: the rfm run's classes.

    In place on PostgreSQL the class table is read where it is; DuckDB and Spark get the
    rows from the product's database (the snapshot holds only domain tables)."""
    if isinstance(ctx.workspace, PostgresWorkspace):
        # (The runner starts a fresh read transaction per step: rfm's rows are visible.)
        run = int(rfm_run) if rfm_run is not None else -1  # an integer we read
        return (
            "(SELECT customer_id, segment FROM analytics_customer_class "  # noqa: S608
            f"WHERE run_id = {run})"
        )
    ids: list[int] = []
    names: list[str] = []
    if rfm_run is not None:
        for cid, segment in ctx.session.execute(
            select(CustomerClass.customer_id, CustomerClass.segment).where(
                CustomerClass.run_id == rfm_run
            )
        ):
            ids.append(cid)
            names.append(segment)
    table = pa.table(
        {"customer_id": pa.array(ids, pa.int64()), "segment": pa.array(names, pa.string())}
    )
    if isinstance(ctx.workspace, SparkWorkspace):
        path = Path(ctx.settings.data_dir) / "analytics" / "kpi_segment.parquet"
        pq.write_table(table, path)
        ctx.workspace.spark.read.parquet(str(path)).createOrReplaceTempView("kpi_segment")
    elif isinstance(ctx.workspace, DuckWorkspace):
        ctx.workspace.register("kpi_segment", table)
    else:  # pragma: no cover - the three workspaces above are all there is
        raise TypeError(f"no segments for {type(ctx.workspace).__name__}")
    return "kpi_segment"


def _ratio(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    if num is None or not den:
        return None
    return scale * float(num) / float(den)


def _value(
    key: Key, metric: Metric, value: Any, num: Any = None, den: Any = None
) -> dict[str, Any]:
    kind, start, dimension, member = key
    return {
        "period": kind,
        "period_start": start,
        "dimension": dimension,
        "member": member,
        "metric": metric.value,
        "value": None if value is None else float(value),
        "numerator": None if num is None else float(num),
        "denominator": None if den is None else float(den),
    }


def customer_values(
    found: dict[Key, dict[str, Any]], last: dict[str, date]
) -> list[dict[str, Any]]:
    """Customer KPIs from the counts; retention and churn compare with the previous
    period's actives (a slice active before and idle now still gets its churn)."""
    keys = set(found)
    for kind, start, dim, member in list(found):
        following = shift(kind, start, 1)
        if found[(kind, start, dim, member)].get("active") and following <= last[kind]:
            keys.add((kind, following, dim, member))
    out: list[dict[str, Any]] = []
    for key in sorted(keys):
        kind, start, dim, member = key
        row = found.get(key, {})
        active = int(row.get("active") or 0)
        previous = found.get((kind, shift(kind, start, -1), dim, member), {})
        before = int(previous.get("active") or 0)
        retained = int(row.get("retained") or 0)
        repeated = int(row.get("repeated") or 0)
        out += [
            _value(key, M.active_customers, active, active),
            _value(key, M.new_customers, row.get("n_new") or 0, row.get("n_new") or 0),
            _value(key, M.lost_customers, row.get("n_lost") or 0, row.get("n_lost") or 0),
            _value(key, M.repeat_rate, _ratio(repeated, active), repeated, active),
        ]
        if before:
            out += [
                _value(key, M.retention_rate, _ratio(retained, before), retained, before),
                _value(
                    key,
                    M.churn_rate,
                    _ratio(before - retained, before),
                    before - retained,
                    before,
                ),
            ]
    return out


def shipment_values(
    shipped: dict[Key, dict[str, Any]],
    delivered: dict[Key, dict[str, Any]],
    opened: dict[Key, dict[str, Any]],
    resolved: dict[Key, dict[str, Any]],
    claims: dict[Key, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Shipment, ticket and claim KPIs from the counts."""
    out: list[dict[str, Any]] = []
    for key, row in shipped.items():
        if key[2] == "dest_region":
            continue
        n = int(row["shipments"])
        out += [
            _value(key, M.shipments, n, n),
            _value(key, M.revenue_fen, row["revenue"], row["revenue"], n),
            _value(key, M.damage_rate, _ratio(row["damaged"], n), row["damaged"], n),
            _value(key, M.loss_rate, _ratio(row["lost"], n), row["lost"], n),
        ]
    for key, row in delivered.items():
        n = int(row["delivered"])
        out.append(_value(key, M.on_time_rate, _ratio(row["on_time"], n), row["on_time"], n))
    for key, row in opened.items():
        kind, start, dim, member = key
        base_key = (kind, start, "dest_region" if dim == "region" else dim, member)
        base = int(shipped.get(base_key, {}).get("shipments") or 0)
        complaints = int(row["complaints"] or 0)
        out += [
            _value(key, M.tickets, row["tickets"], row["tickets"]),
            _value(key, M.complaints, complaints, complaints),
            _value(key, M.complaints_per_10k, _ratio(complaints, base, 10_000), complaints, base),
        ]
        if row["fr_n"]:
            out += [
                _value(
                    key,
                    M.first_response_mean_min,
                    _ratio(row["fr_sum"], row["fr_n"]),
                    row["fr_sum"],
                    row["fr_n"],
                ),
                _value(key, M.first_response_median_min, row["fr_median"], None, row["fr_n"]),
            ]
    for key, row in resolved.items():
        n = int(row["resolved"])
        out += [
            _value(key, M.resolution_mean_h, _ratio(row["hours_sum"], n), row["hours_sum"], n),
            _value(key, M.resolution_median_h, row["hours_median"], None, n),
            _value(key, M.sla_attainment, _ratio(row["attained"], n), row["attained"], n),
            _value(key, M.reopen_rate, _ratio(row["reopened"], n), row["reopened"], n),
        ]
        if row["csat_n"]:
            out.append(
                _value(
                    key,
                    M.csat,
                    _ratio(row["csat_sum"], row["csat_n"]),
                    row["csat_sum"],
                    row["csat_n"],
                )
            )
    for key, row in claims.items():
        out.append(_value(key, M.claim_cost_fen, row["cost"], row["cost"], row["claims"]))
    return out


def class_values(ctx: StepContext, rfm_run: int | None) -> list[dict[str, Any]]:
    """How many customers each class of the rfm run holds (period ``asof``)."""
    if rfm_run is None:
        return []
    out = []
    day = ctx.as_of.date()
    for dimension in CLASS_DIMENSIONS:
        column = getattr(CustomerClass, dimension)
        for member, n in ctx.session.execute(
            select(column, func.count())
            .where(CustomerClass.run_id == rfm_run)
            .group_by(column)
            .order_by(column)
        ):
            key = (SNAPSHOT_PERIOD, day, dimension, str(member))
            out.append(_value(key, M.customers, n, n))
    return out


def nps_values(ctx: StepContext) -> list[dict[str, Any]]:
    """NPS per period and slice: the hook for when surveys exist.

    There are no survey answers in the product yet (``surveys/`` is to come). Once there
    are, NPS is (promoters − detractors) / answers × 100 over the 0–10 answers given in the
    period: numerator promoters − detractors, denominator answers, value × 100.
    """
    return []


def last_periods(as_of: datetime) -> dict[str, date]:
    """The start of the period the cut-off falls in, per kind."""
    today = as_of.date()
    return {kind.value: period_start(kind.value, today) for kind in PeriodKind}


def compute(ctx: StepContext) -> list[dict[str, Any]]:
    """Every KPI row of the run (without ``run_id``)."""
    rfm_run = latest_run(ctx.session, "rfm")
    segments = _segments_relation(ctx, rfm_run)
    day_from = ctx.as_of.date() - timedelta(days=DAY_PERIODS - 1)
    params = {"as_of": ctx.as_of, "day_from": day_from}
    steps = 7
    day_base = day_from - timedelta(days=1)
    found = _rows(ctx.workspace.query(lifecycle_sql(segments), as_of=ctx.as_of, day_base=day_base))
    for kind in PeriodKind:
        for key, row in _rows(
            ctx.workspace.query(activity_sql(segments, kind), as_of=ctx.as_of, day_base=day_base)
        ).items():
            found.setdefault(key, {}).update(row)
    ctx.progress(1, steps)
    shipped = _rows(ctx.workspace.query(shipment_sql(segments), **params))
    ctx.progress(2, steps)
    delivered = _rows(ctx.workspace.query(delivery_sql(segments), **params))
    ctx.progress(3, steps)
    opened = _rows(ctx.workspace.query(opened_sql(segments), **params))
    ctx.progress(4, steps)
    resolved = _rows(ctx.workspace.query(resolved_sql(segments), **params))
    ctx.progress(5, steps)
    claims = _rows(ctx.workspace.query(claim_sql(segments), **params))
    ctx.progress(6, steps)
    rows = [
        r
        for r in customer_values(found, last_periods(ctx.as_of))
        # The day before the first kept day only served as the previous period.
        if r["period"] != "day" or r["period_start"] >= day_from
    ]
    rows += shipment_values(shipped, delivered, opened, resolved, claims)
    rows += class_values(ctx, rfm_run)
    rows += nps_values(ctx)
    return rows


def _run(ctx: StepContext) -> StepResult:
    rows = compute(ctx)
    written = ctx.write(KpiValue, rows)
    ctx.progress(7, 7)
    return StepResult(rows=written, metrics=_summary(rows))


def _summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Rows per period kind (what a run produced, for the runs page)."""
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["period"]] += 1
    return {"rows_per_period": dict(sorted(counts.items()))}


STEP = register(
    Step(
        name="kpi",
        reads=("customer", "shipment", "ticket", "sla_event", "claim"),
        run=_run,
        writes=(KpiValue,),
        after=("rfm",),
    )
)
