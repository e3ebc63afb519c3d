"""RFM scores, segments and classes against a hand-computed fixture, on SQLite (DuckDB over
the snapshot), on PostgreSQL through the snapshot, and on PostgreSQL in place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics.engine import bind
from guanxi.analytics.models import AnalyticsStep, CustomerClass
from guanxi.analytics.rfm import FIGURES_SQL
from tests.integration.analytics.conftest import AnalyticsDb, local

AS_OF = local(2026, 6, 30, 12, 0)

# customer key -> (r, f, m, segment, frequency class, value tier, relationship,
#                  recency days, shipments in window, revenue in window)
EXPECTED: dict[str, tuple[Any, ...]] = {
    # Five shipping customers with distinct figures: percent ranks 0, .25, .5, .75, 1
    # give scores 1 … 5 (1 + floor(5 × rank), capped at 5).
    "c1": (5, 5, 5, "champions", "medium", "high", "loyal", 0, 12, 18_000),
    "c2": (4, 4, 4, "champions", "medium", "medium", "loyal", 10, 8, 8_000),
    "c3": (3, 3, 3, "loyal", "low", "medium", "loyal", 40, 4, 4_800),
    "c4": (2, 2, 2, "hibernating", "low", "low", "at_risk", 200, 2, 1_000),
    # Last shipped 400 days ago: nothing in the 365-day window.
    "c5": (1, 1, 1, "lost", "low", "low", "at_risk", 400, 0, 0),
    # Never shipped: outside the grid.
    "c6": (0, 0, 0, "prospect", "low", "low", "potential", None, 0, 0),
}


@pytest.fixture(scope="module")
def filled(analytics_db: AnalyticsDb) -> dict[str, int]:
    rows = analytics_db.rows
    start = local(2024, 1, 1, 9, 0)
    ids = {key: rows.customer(start) for key in EXPECTED}
    # c1's last shipment is at 00:30 Beijing time on the cut-off day: 0 days ago in local
    # days (it would be 1 in UTC days).
    rows.shipment(ids["c1"], local(2026, 6, 30, 0, 30), 1_500)
    for i in range(1, 12):
        rows.shipment(ids["c1"], AS_OF - timedelta(days=3 * i), 1_500)
    for i in range(8):
        rows.shipment(ids["c2"], AS_OF - timedelta(days=10 + 20 * i), 1_000)
    for i in range(4):
        rows.shipment(ids["c3"], AS_OF - timedelta(days=40 + 30 * i), 1_200)
    # After the cut-off: must not count.
    rows.shipment(ids["c3"], AS_OF + timedelta(hours=1), 99_999)
    for i in range(2):
        rows.shipment(ids["c4"], AS_OF - timedelta(days=200 + 10 * i), 500)
    rows.shipment(ids["c5"], AS_OF - timedelta(days=400), 700)
    # Archived customers are not classified.
    archived = rows.customer(start, status="archived")
    rows.shipment(archived, AS_OF - timedelta(days=1), 5_000)
    return ids


def _classes(analytics_db: AnalyticsDb, run_id: int) -> dict[int, CustomerClass]:
    with Session(analytics_db.engine) as session:
        found = session.scalars(select(CustomerClass).where(CustomerClass.run_id == run_id))
        return {row.customer_id: row for row in found}


def _check(rows: dict[int, CustomerClass], ids: dict[str, int]) -> None:
    assert set(rows) == set(ids.values())
    for key, expected in EXPECTED.items():
        row = rows[ids[key]]
        got = (
            row.r,
            row.f,
            row.m,
            row.segment,
            row.frequency_class,
            row.value_tier,
            row.relationship,
            row.recency_days,
            row.frequency,
            row.monetary_fen,
        )
        assert got == expected, key


def test_rfm_step_matches_the_hand_computed_classes(
    analytics_db: AnalyticsDb, filled: dict[str, int]
) -> None:
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["rfm"], force=True, as_of=AS_OF
    )
    assert summary.status == "succeeded"
    assert summary.steps == {"rfm": "succeeded"}
    assert summary.metrics["rfm"]["segments"] == {
        "champions": 2,
        "loyal": 1,
        "hibernating": 1,
        "lost": 1,
        "prospect": 1,
    }
    rows = _classes(analytics_db, summary.run_id)
    _check(rows, filled)
    assert rows[filled["c1"]].last_shipment_at == local(2026, 6, 30, 0, 30)


def test_unchanged_inputs_skip_the_step_and_keep_its_results(
    analytics_db: AnalyticsDb, filled: dict[str, int]
) -> None:
    first = runner.run(analytics_db.engine, analytics_db.settings, only=["rfm"], as_of=AS_OF)
    again = runner.run(analytics_db.engine, analytics_db.settings, only=["rfm"], as_of=AS_OF)
    assert again.steps == {"rfm": "skipped"}
    with Session(analytics_db.engine) as session:
        current = runner.latest_run(session, "rfm")
    assert current is not None
    assert current <= first.run_id
    _check(_classes(analytics_db, current), filled)


def test_a_new_shipment_is_picked_up_by_the_next_run(
    analytics_db: AnalyticsDb, filled: dict[str, int]
) -> None:
    runner.run(analytics_db.engine, analytics_db.settings, only=["rfm"], as_of=AS_OF)
    # c6 ships for the first time: leaves the prospects.
    analytics_db.rows.shipment(filled["c6"], AS_OF - timedelta(days=2), 300)
    summary = runner.run(analytics_db.engine, analytics_db.settings, only=["rfm"], as_of=AS_OF)
    assert summary.steps == {"rfm": "succeeded"}
    row = _classes(analytics_db, summary.run_id)[filled["c6"]]
    assert (row.recency_days, row.frequency, row.monetary_fen) == (2, 1, 300)
    assert row.segment != "prospect"
    # Older runs beyond the previous one are purged.
    with Session(analytics_db.engine) as session:
        runs = set(session.scalars(select(CustomerClass.run_id).distinct()))
        succeeded = list(
            session.scalars(
                select(AnalyticsStep.run_id)
                .where(AnalyticsStep.step == "rfm", AnalyticsStep.status == "succeeded")
                .order_by(AnalyticsStep.run_id.desc())
            )
        )
    assert runs == set(succeeded[:2])


def test_the_same_statement_runs_on_postgresql_in_place(analytics_db: AnalyticsDb) -> None:
    if analytics_db.backend != "postgresql":
        pytest.skip("in-place execution is the PostgreSQL engine")
    # A fresh fixture state is not needed: compare the in-place scores with the snapshot's
    # for the same cut-off.
    snap = runner.run(
        analytics_db.engine, analytics_db.settings, only=["rfm"], force=True, as_of=AS_OF
    )
    place = runner.run(
        analytics_db.engine, analytics_db.in_place(), only=["rfm"], force=True, as_of=AS_OF
    )
    assert place.status == "succeeded"

    def figures(run_id: int) -> dict[int, tuple[Any, ...]]:
        return {
            cid: (
                r.r,
                r.f,
                r.m,
                r.segment,
                r.frequency_class,
                r.value_tier,
                r.relationship,
                r.recency_days,
                r.frequency,
                r.monetary_fen,
                r.last_shipment_at,
            )
            for cid, r in _classes(analytics_db, run_id).items()
        }

    assert figures(place.run_id) == figures(snap.run_id)


def test_the_same_statement_runs_on_spark(analytics_db: AnalyticsDb) -> None:
    if analytics_db.backend != "sqlite":
        pytest.skip("one Spark session is enough: it reads the same snapshot")
    pytest.importorskip("pyspark")
    duck = runner.run(
        analytics_db.engine, analytics_db.settings, only=["rfm"], force=True, as_of=AS_OF
    )
    spark_settings = analytics_db.settings.model_copy(update={"analytics_engine": "spark"})
    spark = runner.run(analytics_db.engine, spark_settings, only=["rfm"], force=True, as_of=AS_OF)
    assert spark.status == "succeeded"

    def figures(run_id: int) -> dict[int, tuple[Any, ...]]:
        return {
            cid: (
                r.r,
                r.f,
                r.m,
                r.segment,
                r.recency_days,
                r.frequency,
                r.monetary_fen,
                r.last_shipment_at,
            )
            for cid, r in _classes(analytics_db, run_id).items()
        }

    assert figures(spark.run_id) == figures(duck.run_id)


def test_scores_sql_renders_for_postgresql_without_duckdb_only_syntax() -> None:
    from datetime import datetime

    sql = bind(
        FIGURES_SQL,
        {
            "as_of": datetime(2026, 6, 30, 12),  # noqa: DTZ001 - local wall-clock  # noqa: DTZ001 - local wall-clock time
            "window_start": datetime(2025, 6, 30, 12),  # noqa: DTZ001  # noqa: DTZ001
            "bins": 5,
        },
        "postgres",
    )
    assert "GROUP BY ALL" not in sql
    assert "LEFT JOIN s ON s.customer_id = c.id" in sql
    assert "CAST('2026-06-30 12:00:00' AS TIMESTAMP)" in sql


def test_a_requested_run_is_run_once_by_the_worker(
    analytics_db: AnalyticsDb, filled: dict[str, int]
) -> None:
    from guanxi.analytics.models import AnalyticsRun
    from guanxi.core.db import make_sessionmaker

    with make_sessionmaker(analytics_db.engine)() as session, session.begin():
        session.add(AnalyticsRun(as_of=AS_OF, status="queued", trigger="request", requested="rfm"))
    first = runner.run_queued(analytics_db.engine, analytics_db.settings)
    assert first["ran"] == 1
    assert first["status"] == "succeeded"
    assert runner.run_queued(analytics_db.engine, analytics_db.settings) == {"ran": 0}
    with Session(analytics_db.engine) as session:
        run = session.get(AnalyticsRun, first["run_id"])
        assert run is not None
        assert (run.status, run.trigger) == ("succeeded", "request")


def test_the_nightly_run_happens_once_a_day_after_two(
    analytics_db: AnalyticsDb, filled: dict[str, int]
) -> None:
    from guanxi.core import clock

    with clock.frozen(local(2026, 7, 1, 1, 50)):
        assert runner.run_nightly(analytics_db.engine, analytics_db.settings) == {"ran": 0}
    with clock.frozen(local(2026, 7, 1, 2, 10)):
        # Every step runs (the others may find this small fixture too thin to fit).
        assert runner.run_nightly(analytics_db.engine, analytics_db.settings)["ran"] == 1
    with clock.frozen(local(2026, 7, 1, 23, 0)):
        assert runner.run_nightly(analytics_db.engine, analytics_db.settings) == {"ran": 0}
    with clock.frozen(local(2026, 7, 2, 2, 0)):
        assert runner.run_nightly(analytics_db.engine, analytics_db.settings)["ran"] == 1
