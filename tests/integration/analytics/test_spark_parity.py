"""The analytics steps with no Spark comparison elsewhere in CI — ``clv``, ``text`` and
``warning`` — give on Spark the rows and figures they give on DuckDB, over one snapshot.

``rfm`` and ``forecast`` are compared in their own modules on every run; ``kpi``, ``churn``
and ``scorecard`` in theirs with GUANXI_SLOW=1 (tens of Spark statements each). Spark reads
the same Parquet snapshot whatever the database, so one SQLite database and the process's
one Spark session (SparkWorkspace keeps it between runs) serve the module.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics.models import Alert, CustomerClv, TermWeek, TrainedModel
from guanxi.customers.models import Customer
from guanxi.demo.texts import complaint_texts
from guanxi.security.models import User
from guanxi.shipments.models import Shipment
from tests.integration.analytics.conftest import SHANGHAI, AnalyticsDb, fresh_analytics_db, local

lifetimes_datasets = pytest.importorskip("lifetimes.datasets")
CDNOW = Path(lifetimes_datasets.__file__).parent / "CDNOW_sample.txt"
CLV_AS_OF = local(1997, 9, 30, 23, 0)
TEXT_AS_OF = local(2026, 3, 29, 23, 0)
WARNING_AS_OF = local(2026, 6, 30, 22, 0)
CODES = ["delay.transit", "damage.package", "loss.whole", "pickup.missed"]


def _shipment(sid: int, customer: int, at: datetime, fee: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "kind": "waybill",
        "waybill_no": f"GXP{sid:09d}",
        "customer_id": customer,
        "service_type": "standard",
        "status": "delivered",
        "fee_fen": fee,
        "created_at": at,
        "insured_value_fen": 0,
        "cod_amount_fen": 0,
        "door_delivery": False,
        "signed_receipt_return": False,
        "is_damaged": False,
        "is_lost": False,
    } | kw


def _cdnow(db: AnalyticsDb) -> None:
    """The 2,357 CDNOW sample customers (ids 1-2357) and their purchases as shipments."""
    purchases: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        _master, sample_id, day, _cds, dollars = line.split()
        at = datetime.strptime(day, "%Y%m%d").replace(hour=12, tzinfo=SHANGHAI)  # noqa: DTZ007
        purchases[int(sample_id)].append((at, int(Decimal(dollars) * 100)))
    start = local(1996, 12, 1, 9, 0)
    customers = [
        {
            "id": cid,
            "kind": "individual",
            "name": f"CDNOW {cid}",
            "source": "other",
            "status": "active",
            "lifecycle_stage": "customer",
            "created_at": start,
            "updated_at": start,
            "version": 1,
        }
        for cid in purchases
    ]
    # Every column the other fixtures fill is filled here too: the SQLite snapshot reader
    # takes a column's type from its first batch of rows, and an all-NULL batch reads as
    # integers (see the report of issue #8).
    shipments = [
        _shipment(
            0,
            cid,
            at,
            fen,
            origin_province="上海市",
            dest_province="上海市",
            promised_at=at + timedelta(days=3),
            delivered_at=at + timedelta(days=2),
        )
        for cid, rows in purchases.items()
        for at, fen in rows
    ]
    for i, row in enumerate(shipments, start=1):
        row["id"], row["waybill_no"] = i, f"CD{i:08d}"
    with db.engine.begin() as conn:
        conn.execute(insert(Customer), customers)
        conn.execute(insert(Shipment), shipments)


def _tickets(db: AnalyticsDb, customer: int) -> None:
    """160 categorised complaints over twelve weeks, a planted topic in the newest."""
    codes = [CODES[i % len(CODES)] for i in range(160)]
    texts = complaint_texts(codes, np.random.default_rng(11))
    start = TEXT_AS_OF - timedelta(weeks=12)
    for i, (code, (subject, description)) in enumerate(zip(codes, texts, strict=True)):
        at = start + timedelta(minutes=756 * i)
        if at >= local(2026, 3, 23, 0, 0):
            description = f"{description} 听说台风停运了。"
        db.rows.ticket(customer, at, category=code, subject=subject, description=description)


def _spike(db: AnalyticsDb, customer: int) -> None:
    """Thirty days of shipments to 广东省 and their complaints: a spike on the last day."""
    spike_day, busy_day = date(2026, 6, 30), date(2026, 6, 29)
    shipments = []
    sid = 500_000
    for back in range(30):
        day = spike_day - timedelta(days=back)
        noon = local(day.year, day.month, day.day, 9, 0)
        for i in range(500 if day == busy_day else 100):
            sid += 1
            shipments.append(
                _shipment(
                    sid,
                    customer,
                    noon + timedelta(seconds=i),
                    1000,
                    dest_province="广东省",
                    origin_province="浙江省",
                    promised_at=noon + timedelta(days=3),
                    delivered_at=noon + timedelta(days=2),
                )
            )
    with db.engine.begin() as conn:
        conn.execute(insert(Shipment), shipments)
        conn.execute(
            insert(User),
            [
                {
                    "username": "boss",
                    "display_name": "经理",
                    "role": "manager",
                    "password_hash": "x",
                    "is_active": True,
                }
            ],
        )
    for back in range(30):
        day = spike_day - timedelta(days=back)
        for i in range({spike_day: 9, busy_day: 5}.get(day, 1)):
            at = local(day.year, day.month, day.day, 10, 0) + timedelta(minutes=i)
            db.rows.ticket(customer, at, region="广东省", category="delay.transit")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyticsDb]:
    for db in fresh_analytics_db("sqlite", tmp_path_factory.mktemp("spark-parity")):
        _cdnow(db)
        db.rows.ids = iter(range(100_000, 200_000))  # clear of the CDNOW ids
        customer = db.rows.customer(local(2025, 1, 1, 9, 0))
        _tickets(db, customer)
        _spike(db, customer)
        yield db


def _rows(db: AnalyticsDb, model: Any, run_id: int, skip: tuple[str, ...]) -> list[Any]:
    """A step's stored rows for a run, without the columns that name the run, sorted."""
    columns = [c for c in model.__table__.columns if c.name not in ("run_id", *skip)]
    with Session(db.engine) as session:
        return sorted(
            tuple(_plain(v) for v in row)
            for row in session.execute(select(*columns).where(model.run_id == run_id))
        )


def _plain(value: Any) -> Any:
    # Floats to 12 significant digits: the engines sum in another order (1e-12 relative).
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else value
    return value


def _figures(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _figures(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_figures(v) for v in value]
    return _plain(value)


def _both(db: AnalyticsDb, step: str, as_of: datetime) -> tuple[Any, Any]:
    duck = runner.run(db.engine, db.settings, only=[step], force=True, as_of=as_of)
    spark_settings = db.settings.model_copy(update={"analytics_engine": "spark"})
    spark = runner.run(db.engine, spark_settings, only=[step], force=True, as_of=as_of)
    assert (duck.steps, spark.steps) == ({step: "succeeded"}, {step: "succeeded"})
    return duck, spark


def test_clv_on_spark(filled: AnalyticsDb) -> None:
    duck, spark = _both(filled, "clv", CLV_AS_OF)
    assert duck.metrics["clv"]["customers"] == 2357
    assert _figures(spark.metrics["clv"]) == _figures(duck.metrics["clv"])
    on_duck = _rows(filled, CustomerClv, duck.run_id, ())
    assert len(on_duck) == 2357
    assert _rows(filled, CustomerClv, spark.run_id, ()) == on_duck


def test_text_on_spark(filled: AnalyticsDb) -> None:
    duck, spark = _both(filled, "text", TEXT_AS_OF)
    assert (duck.metrics["text"]["tickets"], duck.metrics["text"]["trained"]) == (160, True)
    assert _figures(spark.metrics["text"]) == _figures(duck.metrics["text"])
    weeks = _rows(filled, TermWeek, duck.run_id, ("id",))
    assert len(weeks) > 0
    assert _rows(filled, TermWeek, spark.run_id, ("id",)) == weeks
    # The same tickets in the same order train the same classifier, to the byte.
    models = _rows(filled, TrainedModel, duck.run_id, ("id",))
    assert [m[0] for m in models] == ["ticket_text"]
    assert _rows(filled, TrainedModel, spark.run_id, ("id",)) == models


def test_warning_on_spark(filled: AnalyticsDb) -> None:
    duck = runner.run(
        filled.engine, filled.settings, only=["warning"], force=True, as_of=WARNING_AS_OF
    )
    alerts = _rows(filled, Alert, duck.run_id, ("id", "created_at"))
    spark_settings = filled.settings.model_copy(update={"analytics_engine": "spark"})
    spark = runner.run(
        filled.engine, spark_settings, only=["warning"], force=True, as_of=WARNING_AS_OF
    )
    assert spark.steps == {"warning": "succeeded"}
    slices = ["complaints:category:delay", "complaints:region:广东省"]
    assert (duck.metrics["warning"]["slices"], duck.metrics["warning"]["new"]) == (slices, 2)
    # The Spark run finds the same alerts (already raised: none new) and rewrites their
    # figures and evidence with the same values.
    assert spark.metrics["warning"] == {"alerts": 2, "new": 0, "slices": slices}
    assert _rows(filled, Alert, duck.run_id, ("id", "created_at")) == alerts
    # (kind, dimension, member, day, observed, expected, evidence, ...)
    assert [(a[0], a[1], a[2], a[4], len(json.loads(a[6]))) for a in alerts] == [
        ("complaints", "category", "delay", 9.0, 9),
        ("complaints", "region", "广东省", 9.0, 9),
    ]
