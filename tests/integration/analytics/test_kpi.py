"""Every KPI against the hand-counted world of ``_kpi_data`` on SQLite (DuckDB over the
snapshot), on PostgreSQL through the snapshot and on PostgreSQL in place; the drill-down
lists exactly the customers, shipments, tickets or claims behind each number."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics import dashboards, kpi, runner
from guanxi.analytics.dashboards import DrillKey
from guanxi.analytics.engine import bind
from guanxi.analytics.kpi import Metric
from guanxi.analytics.models import KpiValue
from guanxi.audit.service import Actor
from guanxi.core.errors import ValidationFailed
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD
from tests.integration.analytics._kpi_data import (
    AS_OF,
    CLASSES,
    DRILLS,
    EXPECTED,
    JUNE,
    Figures,
    Key,
    fill,
)
from tests.integration.analytics.conftest import AnalyticsDb


@pytest.fixture(scope="module")
def world(analytics_db: AnalyticsDb) -> dict[str, int]:
    return fill(analytics_db.rows)


@pytest.fixture(scope="module")
def kpi_run(analytics_db: AnalyticsDb, world: dict[str, int]) -> int:
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["kpi"], force=True, as_of=AS_OF
    )
    assert summary.status == "succeeded", summary
    # The segments come from the rfm step, which runs first.
    assert summary.steps == {"rfm": "succeeded", "kpi": "succeeded"}
    return summary.run_id


def stored(analytics_db: AnalyticsDb, run_id: int) -> dict[Key, Figures]:
    with Session(analytics_db.engine) as session:
        rows = session.execute(
            select(
                KpiValue.metric,
                KpiValue.period,
                KpiValue.period_start,
                KpiValue.dimension,
                KpiValue.member,
                KpiValue.value,
                KpiValue.numerator,
                KpiValue.denominator,
            ).where(KpiValue.run_id == run_id)
        ).all()
    out: dict[Key, Figures] = {}
    for metric, period, start, dimension, member, value, num, den in rows:
        key = (metric, period, start, dimension, member)
        assert key not in out, f"two rows for {key}"
        out[key] = (value, num, den)
    return out


def same(got: Figures, expected: Figures) -> bool:
    return all(
        (g is None and e is None)
        or (g is not None and e is not None and g == pytest.approx(e, rel=1e-12, abs=1e-12))
        for g, e in zip(got, expected, strict=True)
    )


def test_every_kpi_matches_the_hand_count(analytics_db: AnalyticsDb, kpi_run: int) -> None:
    got = stored(analytics_db, kpi_run)
    wrong = {
        key: (got.get(key), expected)
        for key, expected in EXPECTED.items()
        if key not in got or not same(got[key], expected)
    }
    assert wrong == {}
    # Every metric is covered by the hand count.
    assert {k[0] for k in EXPECTED} == {m.value for m in Metric} - {"customers"}


def test_june_has_exactly_the_hand_counted_metrics(analytics_db: AnalyticsDb, kpi_run: int) -> None:
    got = stored(analytics_db, kpi_run)
    june = {k[0] for k in got if k[1:] == ("month", JUNE, "all", "")}
    assert june == {k[0] for k in EXPECTED if k[1:] == ("month", JUNE, "all", "")}


def test_quiet_periods_and_data_after_the_cut_off_leave_no_rows(
    analytics_db: AnalyticsDb, kpi_run: int
) -> None:
    got = stored(analytics_db, kpi_run)
    # No shipment in February; s10 (after the cut-off) is in no figure.
    assert ("shipments", "month", date(2026, 2, 1), "all", "") not in got
    assert ("shipments", "day", date(2026, 6, 30), "all", "") not in got
    # Day periods cover the last 90 days only (from 2026-04-02).
    days = {k[2] for k in got if k[1] == "day"}
    assert min(days) >= date(2026, 4, 2)
    assert ("lost_customers", "day", date(2026, 4, 15), "all", "") in got
    # D has no region: counted in "all", in no region.
    assert ("active_customers", "month", JUNE, "region", "") not in got


def test_class_counts_of_the_rfm_run(analytics_db: AnalyticsDb, kpi_run: int) -> None:
    got = stored(analytics_db, kpi_run)
    classes = {(k[3], k[4]): v[0] for k, v in got.items() if k[0] == "customers" and k[1] == "asof"}
    assert classes == CLASSES
    assert {k[2] for k in got if k[1] == "asof"} == {date(2026, 6, 30)}


def test_the_in_place_run_on_postgresql_gives_the_same_rows(
    analytics_db: AnalyticsDb, kpi_run: int
) -> None:
    if analytics_db.backend != "postgresql":
        pytest.skip("in-place execution is the PostgreSQL engine")
    place = runner.run(
        analytics_db.engine, analytics_db.in_place(), only=["kpi"], force=True, as_of=AS_OF
    )
    assert place.status == "succeeded", place
    snapshot, in_place = stored(analytics_db, kpi_run), stored(analytics_db, place.run_id)
    assert set(in_place) == set(snapshot)
    assert [k for k in snapshot if not same(in_place[k], snapshot[k])] == []


# Eleven statements of many stages each: ~50 s on a local Spark, too long for every CI run.
@pytest.mark.slow
def test_the_same_statements_run_on_spark(analytics_db: AnalyticsDb, kpi_run: int) -> None:
    if os.environ.get("GUANXI_SLOW", "") not in ("1", "true", "yes"):
        pytest.skip("slow: set GUANXI_SLOW=1")
    if analytics_db.backend != "sqlite":
        pytest.skip("one Spark session is enough: it reads the same snapshot")
    pytest.importorskip("pyspark")
    spark_settings = analytics_db.settings.model_copy(update={"analytics_engine": "spark"})
    spark = runner.run(analytics_db.engine, spark_settings, only=["kpi"], force=True, as_of=AS_OF)
    assert spark.status == "succeeded", spark
    duck, on_spark = stored(analytics_db, kpi_run), stored(analytics_db, spark.run_id)
    assert set(on_spark) == set(duck)
    assert [k for k in duck if not same(on_spark[k], duck[k])] == []


def test_the_statements_render_for_postgresql() -> None:
    params: dict[str, Any] = {
        "as_of": datetime(2026, 6, 30, 12),  # noqa: DTZ001 - the workspace takes local naive moments
        "day_from": date(2026, 4, 2),
        "day_base": date(2026, 4, 1),
    }
    statements = [kpi.lifecycle_sql("seg"), *(kpi.activity_sql("seg", k) for k in kpi.PeriodKind)]
    statements += [
        f("seg")
        for f in (
            kpi.shipment_sql,
            kpi.delivery_sql,
            kpi.opened_sql,
            kpi.resolved_sql,
            kpi.claim_sql,
        )
    ]
    for sql in statements:
        rendered = bind(sql, params, "postgres")
        assert "GROUP BY ALL" not in rendered
        assert "MEDIAN(" not in rendered
        assert "EPOCH(" not in rendered
    assert "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY fr)" in bind(
        kpi.opened_sql("seg"), params, "postgres"
    )


# --------------------------------------------------------------------------- drill-down


@pytest.fixture(scope="module")
def viewer(analytics_db: AnalyticsDb, kpi_run: int) -> User:
    with Session(analytics_db.engine, expire_on_commit=False) as session:
        user = create_user(
            session,
            user_in=UserCreate(
                username="kpi_analyst", display_name="分析师", role="analyst", password=PASSWORD
            ),  # type: ignore[arg-type]
            actor=Actor.system("test"),
        )
        session.commit()
        return user


def _key(key: Key, part: str) -> DrillKey:
    metric, period, start, dimension, member = key
    return DrillKey(Metric(metric), period, start, dimension, member, part)


@pytest.mark.parametrize(("key", "part"), list(DRILLS), ids=lambda v: str(v))
def test_the_drill_down_lists_exactly_the_rows_behind_the_number(
    analytics_db: AnalyticsDb,
    world: dict[str, int],
    kpi_run: int,
    viewer: User,
    key: Any,
    part: str,
) -> None:
    expected = {world[name] for name in DRILLS[(key, part)]}
    figures = stored(analytics_db, kpi_run)[key]
    # A sum or an average lists the rows it adds up: as many as its denominator.
    summed = kpi.METRICS[Metric(key[0])].summed
    count = figures[1] if part == "numerator" and not summed else figures[2]
    with Session(analytics_db.engine) as session:
        run = dashboards.current_run(session, analytics_db.settings.timezone)
        assert run is not None
        page = dashboards.drill(session, run=run, key=_key(key, part), viewer=viewer, limit=200)
        assert {row.id for row in page.rows} == expected
        # As many rows as the number counts.
        assert page.total == len(expected) == count
        # One row a page: the cursor walks them all, in id order, once.
        seen: list[int] = []
        cursor = None
        while True:
            one = dashboards.drill(
                session, run=run, key=_key(key, part), viewer=viewer, cursor=cursor, limit=1
            )
            seen += [row.id for row in one.rows]
            cursor = one.next_cursor
            if cursor is None:
                break
        assert seen == sorted(expected)


def test_the_drill_down_of_a_class_lists_its_customers(
    analytics_db: AnalyticsDb, world: dict[str, int], kpi_run: int, viewer: User
) -> None:
    with Session(analytics_db.engine) as session:
        run = dashboards.current_run(session, analytics_db.settings.timezone)
        assert run is not None
        key = DrillKey(Metric.customers, "asof", run.today, "relationship", "at_risk")
        page = dashboards.drill(session, run=run, key=key, viewer=viewer)
        assert {c.id for c in page.rows} == {world["b"], world["c"]}
        # Customers come masked, through the customers domain's list shape.
        assert page.entity == "customers"
        assert type(page.rows[0]).__name__ == "CustomerSummary"


@pytest.mark.parametrize(
    ("key", "field"),
    [
        (DrillKey(Metric.shipments, "month", date(2026, 6, 2), "all", ""), "start"),
        (DrillKey(Metric.shipments, "month", JUNE, "region", "火星"), "member"),
        (DrillKey(Metric.shipments, "month", JUNE, "all", "", "both"), "part"),
        (DrillKey(Metric.shipments, "asof", JUNE, "segment", "champions"), "period"),
        (DrillKey(Metric.shipments, "month", JUNE, "value_tier", "high"), "dimension"),
    ],
)
def test_a_number_the_run_does_not_have_is_refused_naming_the_field(
    analytics_db: AnalyticsDb, kpi_run: int, viewer: User, key: DrillKey, field: str
) -> None:
    with Session(analytics_db.engine) as session:
        run = dashboards.current_run(session, analytics_db.settings.timezone)
        assert run is not None
        with pytest.raises(ValidationFailed) as caught:
            dashboards.drill(session, run=run, key=key, viewer=viewer)
    assert caught.value.errors[0].loc == ("query", field)
