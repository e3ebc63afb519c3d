"""Pieces of the analytics engine that need no database: parameter binding, percent ranks,
the segment grid of the policy."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from guanxi.analytics.engine import bind
from guanxi.analytics.policy import AnalyticsPolicy, RfmPolicy, SegmentRule
from guanxi.analytics.rfm import percent_rank


def test_bind_inlines_typed_literals_per_dialect() -> None:
    sql = "SELECT COUNT(*) FROM shipment WHERE created_at < $as_of AND fee_fen > $floor"
    params = {"as_of": datetime(2026, 1, 2, 3, 4, 5), "floor": 100}  # noqa: DTZ001
    assert bind(sql, params, "duckdb") == (
        "SELECT COUNT(*) FROM shipment "
        "WHERE created_at < CAST('2026-01-02 03:04:05' AS TIMESTAMP) AND fee_fen > 100"
    )
    assert bind("SELECT $d AS d", {"d": date(2026, 1, 2)}, "postgres") == (
        "SELECT CAST('2026-01-02' AS DATE) AS d"
    )


def test_bind_refuses_aware_moments_and_missing_parameters() -> None:
    from datetime import UTC

    with pytest.raises(ValueError, match="local naive"):
        bind("SELECT $t", {"t": datetime(2026, 1, 1, tzinfo=UTC)}, "duckdb")
    with pytest.raises(KeyError, match=r"\$missing"):
        bind("SELECT $missing", {}, "duckdb")


def test_bind_quotes_text_parameters() -> None:
    assert bind("SELECT $s", {"s": "it's"}, "postgres") == "SELECT 'it''s'"


def test_percent_rank_matches_sql_with_ties() -> None:
    # SQL: PERCENT_RANK() = (rank - 1) / (n - 1), ties take their lowest rank.
    values = np.array([5, 1, 5, 3, 1, 9])
    assert percent_rank(values).tolist() == [0.6, 0.0, 0.6, 0.4, 0.0, 1.0]
    assert percent_rank(np.array([7])).tolist() == [0.0]


def test_policy_rules_must_cover_the_whole_grid() -> None:
    rules = [r for r in RfmPolicy().rules if r.name != "lost"]
    with pytest.raises(ValidationError, match="no segment for R 1, FM 1"):
        RfmPolicy(rules=rules)
    with pytest.raises(ValidationError, match="scores run from 1 to 5"):
        RfmPolicy(rules=[SegmentRule(name="lost", r=(0, 5), fm=(1, 5))])


def test_default_grid_names_every_cell_as_documented() -> None:
    rfm = AnalyticsPolicy().rfm
    grid = {(r, fm): rfm.segment(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert grid[(5, 5)] == grid[(4, 4)] == "champions"
    assert grid[(5, 1)] == "new"
    assert grid[(4, 1)] == grid[(5, 3)] == "potential_loyalist"
    assert grid[(3, 3)] == grid[(3, 5)] == "loyal"
    assert grid[(1, 5)] == grid[(2, 5)] == "cant_lose"
    assert grid[(2, 3)] == grid[(1, 4)] == "at_risk"
    assert grid[(3, 1)] == grid[(2, 2)] == "hibernating"
    assert grid[(1, 1)] == grid[(1, 2)] == "lost"
