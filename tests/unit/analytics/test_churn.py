"""Churn's arithmetic against hand-computed figures: quality measures, calibration bins,
bands, reasons from contributions, suggested actions; and SQL that renders for PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from guanxi.analytics import churn
from guanxi.analytics.churn import FEATURES, Features, band, calibration, quality, reasons, suggest
from guanxi.analytics.engine import bind


def test_quality_matches_the_hand_computed_figures() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    got = quality(y, p)
    # Positive-negative pairs ranked right: (.35 > .1), (.8 > .1), (.8 > .4) of four.
    assert got["roc_auc"] == 0.75
    # Ranked .8 (churn), .4, .35 (churn), .1: precision 1/1 and 2/3 at the two churners.
    assert got["pr_auc"] == round((1 + 2 / 3) / 2, 4)
    assert got["brier"] == round((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4, 4)
    assert (got["customers"], got["churn_rate"]) == (4, 0.5)
    assert got["calibration"] == [
        {"low": 0.1, "high": 0.2, "customers": 1, "predicted": 0.1, "observed": 0.0},
        {"low": 0.3, "high": 0.4, "customers": 1, "predicted": 0.35, "observed": 1.0},
        {"low": 0.4, "high": 0.5, "customers": 1, "predicted": 0.4, "observed": 0.0},
        {"low": 0.8, "high": 0.9, "customers": 1, "predicted": 0.8, "observed": 1.0},
    ]


def test_one_class_has_no_auc() -> None:
    got = quality(np.array([1, 1]), np.array([0.2, 0.9]))
    assert (got["roc_auc"], got["pr_auc"]) == (None, None)
    assert got["brier"] == round((0.8**2 + 0.1**2) / 2, 4)


def test_calibration_bins_hold_their_edges() -> None:
    bins = calibration(np.array([0, 1, 1, 0]), np.array([0.0, 0.999, 1.0, 0.1]), bins=2)
    assert bins == [
        {"low": 0.0, "high": 0.5, "customers": 2, "predicted": 0.05, "observed": 0.0},
        {"low": 0.5, "high": 1.0, "customers": 2, "predicted": 0.9995, "observed": 1.0},
    ]


def test_bands() -> None:
    risk = np.array([0.0, churn.MEDIUM_RISK - 1e-9, churn.MEDIUM_RISK, churn.HIGH_RISK - 1e-9,
                     churn.HIGH_RISK, 1.0])  # fmt: skip
    assert band(risk).tolist() == ["low", "low", "medium", "medium", "high", "high"]


def _population(rows: list[dict[str, float]]) -> Features:
    names = list(FEATURES)
    values = np.array([[row.get(n, np.nan) for n in names] for row in rows])
    return Features(np.arange(1, len(rows) + 1), values, np.array(["active"] * len(rows)))


def test_reasons_are_the_largest_positive_contributions() -> None:
    names = list(FEATURES)
    population = _population(
        [
            {"kind": 0.0, "breaches_90": 2.0, "recency_days": 12.5, "shipments_90": 3.0},
            {"kind": 1.0, "recency_days": 40.0},
        ]
    )
    effects = np.zeros((2, len(names) + 1))
    at = names.index
    effects[0, at("breaches_90")] = 1.2
    effects[0, at("recency_days")] = 0.4
    effects[0, at("kind")] = 0.7
    effects[0, at("shipments_90")] = 0.1
    effects[0, -1] = 5.0  # the base value is not a reason
    effects[1, at("recency_days")] = 0.3
    effects[1, at("days_since_breach")] = -2.0
    got = reasons(effects, population)
    assert got == [
        [
            {"feature": "breaches_90", "value": 2, "effect": 1.2},
            {"feature": "kind", "value": "individual", "effect": 0.7},
            {"feature": "recency_days", "value": 12.5, "effect": 0.4},
        ],
        # Only what raises the risk; a missing value is shown as None.
        [{"feature": "recency_days", "value": 40, "effect": 0.3}],
    ]


def test_suggested_actions() -> None:
    breach = [{"feature": "breaches_90", "value": 1, "effect": 1.0}]
    fading = [{"feature": "shipment_trend", "value": -1.2, "effect": 0.8}]
    assert suggest(breach, "low", True, True) is None
    assert suggest(breach, "high", True, False) == "return_visit"
    assert suggest(fading, "medium", False, True) == "return_visit"
    assert suggest(fading, "high", True, False) == "account_manager_call"
    assert suggest(fading, "medium", False, False) == "coupon"


def test_service_issues_are_recent_or_open() -> None:
    population = _population(
        [
            {"open_tickets": 1.0},
            {"days_since_breach": 30.0},
            {"days_since_breach": 300.0},
            {"last_answer_unsatisfied": 1.0},
            {"claims_rejected_365": 1.0},
            {"claims_slow_365": 1.0},
            {"claims_pending": 1.0},
            {"complaints_365": 3.0},
        ]
    )
    assert churn.service_issue(population).tolist() == [
        True, True, False, True, True, True, True, False,
    ]  # fmt: skip


@pytest.mark.parametrize("sql", [churn.SHIPMENTS_SQL, churn.CUSTOMERS_SQL, *churn.GROUPS,
                                 churn.LABELS_SQL])  # fmt: skip
def test_statements_render_for_postgresql(sql: str) -> None:
    # Cut-offs are local wall-clock moments (naive), as the workspace shows them.
    cutoff = datetime(2026, 6, 30, 12, tzinfo=UTC).replace(tzinfo=None)
    params = churn._params(cutoff) | {"horizon_end": cutoff + timedelta(days=90)}
    rendered = bind(sql, params, "postgres")
    assert "GROUP BY ALL" not in rendered
    assert "$" not in rendered
    # Every statement is bounded by the cut-off.
    assert "< CAST('2026-06-30 12:00:00' AS TIMESTAMP)" in rendered or (
        ">= CAST('2026-06-30 12:00:00' AS TIMESTAMP)" in rendered
    )
    if "INTERVAL" in sql:
        assert "INTERVAL '7 DAY'" in rendered
