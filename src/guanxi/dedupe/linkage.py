"""Probabilistic record linkage of customers with splink on an in-memory DuckDB.

The model is Fellegi-Sunter: each compared field contributes a match weight from how often
its level occurs among true matches (m) and among random pairs (u). The m values are set
from what a second record of the same customer looks like (they are stable across
companies); the u values are estimated from each base by random sampling, so a common name
or a busy district counts for less where it is common. Candidate pairs come from blocking on
equal blind-indexed phones, e-mail, the folded name within a city and the folded address
line within a city, so a million customers make a few million comparisons, not 10^12.

DuckDB runs in memory with spilling off: nothing, not even blind indexes, goes to disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

# splink logs every SQL step at INFO; the run reports its own progress.
logging.getLogger("splink").setLevel(logging.WARNING)

from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402
from splink import comparison_level_library as cll  # noqa: E402
from splink import comparison_library as cl  # noqa: E402

# Pairs below this probability are not worth keeping even for review.
KEEP_FROM = 0.5


@dataclass(frozen=True)
class ScoredPair:
    """Two customer ids (lower first), the match probability and the fields that agreed."""

    left: int
    right: int
    probability: float
    weight: float
    agreed: tuple[str, ...]


def _comparisons() -> list[Any]:
    return [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("name_n"),
                cll.ExactMatchLevel("name_n").configure(m_probability=0.72, u_probability=0.0005),
                cll.ExactMatchLevel("name_core").configure(
                    m_probability=0.12, u_probability=0.0001
                ),
                # One character apart (a typo) — unless the names carry numbers, where one
                # digit makes another customer (客户000001 / 客户000002, 3号店 / 5号店).
                cll.And(
                    cll.LevenshteinLevel("name_core", 1),
                    cll.CustomLevel("NOT regexp_matches(name_core_l, '[0-9]')"),
                ).configure(m_probability=0.13, u_probability=0.004),
                cll.ElseLevel().configure(m_probability=0.03, u_probability=0.9954),
            ],
        ),
        cl.CustomComparison(
            output_column_name="phones",
            comparison_levels=[
                cll.NullLevel("phones"),
                cll.ArrayIntersectLevel("phones", min_intersection=1).configure(
                    m_probability=0.8, u_probability=0.000002
                ),
                cll.ElseLevel().configure(m_probability=0.2, u_probability=0.999998),
            ],
        ),
        cl.CustomComparison(
            output_column_name="email",
            comparison_levels=[
                cll.NullLevel("email"),
                cll.ExactMatchLevel("email").configure(m_probability=0.95, u_probability=0.000001),
                cll.ElseLevel().configure(m_probability=0.05, u_probability=0.999999),
            ],
        ),
        cl.CustomComparison(
            output_column_name="id_number",
            comparison_levels=[
                cll.NullLevel("id_number"),
                cll.ExactMatchLevel("id_number").configure(
                    m_probability=0.999, u_probability=0.0000001
                ),
                # Two different ID numbers: two people, whatever else agrees.
                cll.ElseLevel().configure(m_probability=0.001, u_probability=0.9999999),
            ],
        ),
        cl.CustomComparison(
            output_column_name="credit_code",
            comparison_levels=[
                cll.NullLevel("credit_code"),
                cll.ExactMatchLevel("credit_code").configure(
                    m_probability=0.999, u_probability=0.0000001
                ),
                cll.ElseLevel().configure(m_probability=0.001, u_probability=0.9999999),
            ],
        ),
        cl.CustomComparison(
            output_column_name="birthday",
            comparison_levels=[
                cll.NullLevel("birthday"),
                cll.ExactMatchLevel("birthday").configure(
                    m_probability=0.97, u_probability=0.00005
                ),
                cll.ElseLevel().configure(m_probability=0.03, u_probability=0.99995),
            ],
        ),
        cl.CustomComparison(
            output_column_name="address",
            comparison_levels=[
                cll.NullLevel("city"),
                cll.And(cll.ExactMatchLevel("detail_n"), cll.ExactMatchLevel("city")).configure(
                    m_probability=0.85, u_probability=0.00002
                ),
                # Same street and number, another room or none: string similarity would
                # call 人民大道675号 and 人民大道927号 alike, so the building is compared whole.
                cll.And(cll.ExactMatchLevel("building"), cll.ExactMatchLevel("city")).configure(
                    m_probability=0.08, u_probability=0.0001
                ),
                # Same district, another street: a neighbour more often than the same person.
                cll.ExactMatchLevel("district").configure(m_probability=0.03, u_probability=0.003),
                cll.ExactMatchLevel("city").configure(m_probability=0.02, u_probability=0.02),
                cll.ElseLevel().configure(m_probability=0.02, u_probability=0.97688),
            ],
        ),
    ]


def _blocking_rules() -> list[Any]:
    return [
        block_on("phones", arrays_to_explode=["phones"]),
        block_on("email"),
        block_on("id_number"),
        block_on("credit_code"),
        block_on("name_core", "city"),
        block_on("detail_n", "city"),
    ]


def settings(prior: float = 0.0005) -> SettingsCreator:
    """The linkage model: comparisons, blocking rules and the prior match probability."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=prior,
        comparisons=_comparisons(),
        blocking_rules_to_generate_predictions=_blocking_rules(),
        # The partial match weights (mw_*) say which fields agreed, shown in the queue.
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
    )


def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    # No spill files: blind indexes stay in memory like everything else.
    con.execute("SET temp_directory = ''")
    con.execute("SET preserve_insertion_order = false")
    return con


def _agreed(weights: dict[str, float | None]) -> tuple[str, ...]:
    """Names of the comparisons that spoke for a match (positive partial weight)."""
    return tuple(
        sorted(c.removeprefix("mw_") for c, w in weights.items() if w is not None and w > 0)
    )


def _pairs(result: pa.Table) -> Iterator[ScoredPair]:
    gammas = [c for c in result.column_names if c.startswith("mw_")]
    cols = {c: result.column(c).to_pylist() for c in ("unique_id_l", "unique_id_r", *gammas)}
    probs = result.column("match_probability").to_pylist()
    weights = result.column("match_weight").to_pylist()
    for i, (left, right) in enumerate(zip(cols["unique_id_l"], cols["unique_id_r"], strict=True)):
        agreed = _agreed({g: cols[g][i] for g in gammas})
        lo, hi = (left, right) if left < right else (right, left)
        yield ScoredPair(int(lo), int(hi), float(probs[i]), float(weights[i]), agreed)


def score_all(features: pa.Table, *, keep_from: float = KEEP_FROM) -> list[ScoredPair]:
    """Score every candidate pair within ``features`` (a full run)."""
    if features.num_rows < 2:
        return []
    con = _connection()
    try:
        api = DuckDBAPI(connection=con)
        df = api.register(features, table_name="customers")
        linker = Linker(df, settings(), log_level=logging.WARNING)
        predictions = linker.inference.predict(
            threshold_match_probability=keep_from, warning_mode="never"
        )
        result = con.sql(
            f"SELECT * FROM {predictions.physical_name}"  # noqa: S608 - splink's own name
        ).to_arrow_table()
        return list(_pairs(result))
    finally:
        con.close()


def score_between(
    base: pa.Table, new: pa.Table, *, keep_from: float = KEEP_FROM
) -> list[ScoredPair]:
    """Score new records against base records and against each other (incremental)."""
    if new.num_rows == 0:
        return []
    con = _connection()
    try:
        api = DuckDBAPI(connection=con)
        base_df = api.register(base, table_name="base")
        new_df = api.register(new, table_name="new")
        linker = Linker(new_df, settings(), log_level=logging.WARNING)
        found: dict[tuple[int, int], ScoredPair] = {}
        parts = [linker.inference.predict_within(new_df, threshold_match_probability=keep_from)]
        if base.num_rows:
            parts.append(
                linker.inference.predict_between(
                    base_df, new_df, threshold_match_probability=keep_from
                )
            )
        for part in parts:
            result = con.sql(
                f"SELECT * FROM {part.physical_name}"  # noqa: S608 - splink's own name
            ).to_arrow_table()
            for pair in _pairs(result):
                if pair.left != pair.right:
                    found[(pair.left, pair.right)] = pair
        return list(found.values())
    finally:
        con.close()
