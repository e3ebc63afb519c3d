"""RFM scores, named segments and the manuals' classes for every active customer.

R, F and M are quantile scores (1 … ``bins``) over the customers who ever shipped:
recency of the last shipment, shipments and revenue within the window. Ties share a
score (percent rank, not row number), so two customers with the same figures always get
the same class. Named segments come from the policy's rules on R and FM (the rounded mean
of F and M); frequency class from fixed shipment counts; value tier from the revenue rank;
the relationship segment (忠诚 / 潜在 / 风险) from the named segment.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from guanxi.analytics.models import CustomerClass
from guanxi.analytics.policy import PROSPECT, AnalyticsPolicy
from guanxi.analytics.runner import Step, StepContext, StepResult, register

# One statement, DuckDB dialect; sqlglot renders it for PostgreSQL. No GROUP BY ALL, no
# integer division: both differ between the engines. The scores (percent ranks) are taken
# in numpy: three window sorts in SQL cost more than the aggregation itself.
FIGURES_SQL = """
WITH active AS (
    SELECT id FROM customer WHERE status = 'active' AND created_at < $as_of
),
s AS (
    SELECT
        sh.customer_id,
        MAX(sh.created_at) AS last_at,
        SUM(CASE WHEN sh.created_at >= $window_start THEN 1 ELSE 0 END) AS frequency,
        SUM(CASE WHEN sh.created_at >= $window_start THEN sh.fee_fen ELSE 0 END) AS monetary
    FROM shipment AS sh
    JOIN active AS a ON a.id = sh.customer_id
    WHERE sh.created_at < $as_of
    GROUP BY sh.customer_id
)
SELECT
    c.id AS customer_id,
    s.last_at AS last_shipment_at,
    -- Local calendar days between dates: the same on DuckDB, PostgreSQL and Spark (whose
    -- DATEDIFF on timestamps counts whole 24-hour days instead).
    CAST(DATE_DIFF('day', CAST(s.last_at AS DATE), CAST($as_of AS DATE)) AS INTEGER)
        AS recency_days,
    CAST(COALESCE(s.frequency, 0) AS INTEGER) AS frequency,
    CAST(COALESCE(s.monetary, 0) AS BIGINT) AS monetary_fen
FROM active AS c
LEFT JOIN s ON s.customer_id = c.id
"""


def percent_rank(values: np.ndarray) -> np.ndarray:
    """SQL's PERCENT_RANK: (rank − 1) / (n − 1) with ties sharing their lowest rank."""
    n = len(values)
    if n <= 1:
        return np.zeros(n)
    order = np.argsort(values)
    ordered = values[order]
    # Each sorted position takes the index where its run of equal values starts.
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = first
    return ranks / (n - 1)


def score(figures: pa.Table, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R, F and M scores (0 for customers who never shipped) and M's percent rank."""
    # Never shipped = no last shipment: a sentinel below every real moment.
    missing = np.iinfo(np.int64).min
    when_all = (
        figures["last_shipment_at"]
        .cast(pa.timestamp("us"))
        .cast(pa.int64())
        .fill_null(missing)
        .to_numpy()
    )
    shipped = when_all != missing
    r = np.zeros(len(figures), dtype=np.int64)
    f = np.zeros(len(figures), dtype=np.int64)
    m = np.zeros(len(figures), dtype=np.int64)
    pr_m = np.zeros(len(figures))
    if shipped.any():
        when = when_all[shipped]
        freq = figures["frequency"].to_numpy(zero_copy_only=False)[shipped]
        money = figures["monetary_fen"].to_numpy(zero_copy_only=False)[shipped]
        ranks = [percent_rank(when), percent_rank(freq), percent_rank(money)]
        for out, rank in zip((r, f, m), ranks, strict=True):
            out[shipped] = np.minimum(bins, 1 + np.floor(bins * rank)).astype(np.int64)
        pr_m[shipped] = ranks[2]
    return r, f, m, pr_m


def classify(figures: pa.Table, policy: AnalyticsPolicy) -> pa.Table:
    """Scores, named segment, frequency class, value tier and relationship for the rows
    of :data:`FIGURES_SQL`."""
    bins = policy.rfm.bins
    r, f, m, pr_m = score(figures, bins)
    fm = (f + m + 1) // 2
    # The rules as a lookup grid: index [r, fm]; row/column 0 are customers who never
    # shipped (no scores).
    names = [PROSPECT]
    grid = np.zeros((bins + 1, bins + 1), dtype=np.int32)
    for ri in range(1, bins + 1):
        for fi in range(1, bins + 1):
            # The policy's validator guarantees every cell has a rule.
            name = policy.rfm.segment(ri, fi) or PROSPECT
            if name not in names:
                names.append(name)
            grid[ri, fi] = names.index(name)
    segment_idx = grid[r, np.where(r > 0, fm, 0)]

    classes = policy.classes
    freq = figures["frequency"].to_numpy(zero_copy_only=False)
    tiers = ["high", "medium", "low"]
    frequency_idx = np.where(
        freq >= classes.frequency_high, 0, np.where(freq >= classes.frequency_medium, 1, 2)
    ).astype(np.int32)
    monetary = figures["monetary_fen"].to_numpy(zero_copy_only=False)
    high_cut = 1.0 - classes.value_high_share
    medium_cut = high_cut - classes.value_medium_share
    value_idx = np.where(
        (monetary > 0) & (pr_m >= high_cut),
        0,
        np.where((monetary > 0) & (pr_m >= medium_cut), 1, 2),
    ).astype(np.int32)
    kinds = ["loyal", "potential", "at_risk"]
    relation = [kinds.index(classes.relationship(n)) if n != PROSPECT else 1 for n in names]
    relationship_idx = np.array(relation, dtype=np.int32)[segment_idx]

    def labels(indices: np.ndarray, dictionary: list[str]) -> pa.Array:
        # Dictionary-encoded, then plain strings: no Python object per row.
        return pa.DictionaryArray.from_arrays(
            pa.array(indices, pa.int32()), pa.array(dictionary, pa.string())
        ).cast(pa.string())

    return (
        figures.append_column("r", pa.array(r, pa.int32()))
        .append_column("f", pa.array(f, pa.int32()))
        .append_column("m", pa.array(m, pa.int32()))
        .append_column("segment", labels(segment_idx, names))
        .append_column("frequency_class", labels(frequency_idx, tiers))
        .append_column("value_tier", labels(value_idx, tiers))
        .append_column("relationship", labels(relationship_idx, kinds))
    )


def compute(ctx: StepContext) -> pa.Table:
    """Every active customer's scores and classes as of the run's cut-off."""
    policy = ctx.policy
    figures = ctx.workspace.query(
        FIGURES_SQL,
        as_of=ctx.as_of,
        window_start=ctx.as_of - timedelta(days=policy.rfm.window_days),
        bins=policy.rfm.bins,
    )
    return classify(figures, policy)


def _run(ctx: StepContext) -> StepResult:
    table = compute(ctx)
    ctx.progress(1, 2)
    # Stored as UTC like every moment in the product's tables.
    table = _to_utc(table, "last_shipment_at", ctx.settings.timezone)
    rows = ctx.write(CustomerClass, table)
    ctx.progress(2, 2)
    counts = pc.value_counts(table["segment"]).to_pylist() if len(table) else []
    return StepResult(
        rows=rows,
        metrics={"segments": {c["values"]: c["counts"] for c in counts}},
    )


def _to_utc(table: pa.Table, column: str, tz: str) -> pa.Table:
    """Local naive moments (the workspace's) as aware UTC datetimes for the database."""
    local = table[column].cast(pa.timestamp("us"))
    aware = pc.assume_timezone(local, tz, ambiguous="earliest", nonexistent="earliest")
    index = table.column_names.index(column)
    return table.set_column(index, column, aware.cast(pa.timestamp("us", tz="UTC")))


STEP = register(Step(name="rfm", reads=("customer", "shipment"), run=_run, writes=(CustomerClass,)))
