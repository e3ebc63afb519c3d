"""The ``clv`` step end to end: the CDNOW sample loaded as customers and shipments, the
snapshot (or PostgreSQL in place), the summary SQL and both fits give the published
estimates (Fader, Hardie & Lee 2005: r 0.243, alpha 4.414, a 0.793, b 2.426; Gamma-Gamma
p 6.25, q 3.74, gamma 15.44 — here in fen, so gamma is 100 times larger)."""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics.models import CustomerClv
from guanxi.customers.models import Customer
from guanxi.shipments.models import Shipment
from tests.integration.analytics.conftest import SHANGHAI, AnalyticsDb, local

lifetimes_datasets = pytest.importorskip("lifetimes.datasets")
SAMPLE = Path(os.path.dirname(lifetimes_datasets.__file__)) / "CDNOW_sample.txt"
# The cut-off: the end of 1997-09-30 in Beijing (the 39-week calibration period).
AS_OF = local(1997, 9, 30, 23, 0)


@pytest.fixture(scope="module")
def cdnow(analytics_db: AnalyticsDb) -> int:
    """The 2,357 CDNOW sample customers and their 6,919 purchases as shipments."""
    purchases: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for line in SAMPLE.read_text().splitlines():
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
    shipments = []
    for cid, rows in purchases.items():
        for at, fen in rows:
            sid = len(shipments) + 1
            shipments.append(
                {
                    "id": sid,
                    "kind": "waybill",
                    "waybill_no": f"CD{sid:08d}",
                    "customer_id": cid,
                    "service_type": "standard",
                    "status": "delivered",
                    "fee_fen": fen,
                    "created_at": at,
                    "insured_value_fen": 0,
                    "cod_amount_fen": 0,
                    "door_delivery": False,
                    "signed_receipt_return": False,
                    "is_damaged": False,
                    "is_lost": False,
                }
            )
    with analytics_db.engine.begin() as conn:
        conn.execute(insert(Customer), customers)
        conn.execute(insert(Shipment), shipments)
    return len(customers)


def _check(summary: runner.RunSummary, customers: int) -> None:
    assert summary.steps == {"clv": "succeeded"}
    metrics = summary.metrics["clv"]
    assert metrics["customers"] == customers == 2357
    bg = metrics["bgnbd"]
    assert (round(bg["r"], 3), round(bg["alpha"], 3), round(bg["a"], 3), round(bg["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(bg["log_likelihood"], 1) == -9582.4
    gg = metrics["gamma_gamma"]
    assert (round(gg["p"], 2), round(gg["q"], 2), round(gg["gamma"] / 100, 2)) == (
        6.25,
        3.74,
        15.44,
    )


def test_clv_step_reproduces_the_published_cdnow_estimates(
    analytics_db: AnalyticsDb, cdnow: int
) -> None:
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["clv"], force=True, as_of=AS_OF
    )
    _check(summary, cdnow)
    with Session(analytics_db.engine) as session:
        rows = session.scalar(select(func.count()).where(CustomerClv.run_id == summary.run_id))
        # Customer 1 bought on 1997-01-01, 01-18 and 08-02 within the period: 2 repeats,
        # recency 213 days, age 272 days (in weeks).
        first = session.get(CustomerClv, (summary.run_id, 1))
    assert rows == cdnow
    assert first is not None
    assert (first.frequency, round(first.recency, 4), round(first.age, 4)) == (
        2.0,
        round(213 / 7, 4),
        round(272 / 7, 4),
    )
    assert 0 < first.p_alive <= 1
    assert first.clv_fen > 0


def test_clv_step_in_place_on_postgresql(analytics_db: AnalyticsDb, cdnow: int) -> None:
    if analytics_db.backend != "postgresql":
        pytest.skip("in-place execution is the PostgreSQL engine")
    summary = runner.run(
        analytics_db.engine, analytics_db.in_place(), only=["clv"], force=True, as_of=AS_OF
    )
    assert summary.status == "succeeded"
    _check(summary, cdnow)  # the published estimates, as through the snapshot
