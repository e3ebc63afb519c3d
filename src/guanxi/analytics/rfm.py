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
# integer division: both differ between the engines.
SCORES_SQL = """
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
),
ranked AS (
    SELECT
        customer_id,
        last_at,
        frequency,
        monetary,
        PERCENT_RANK() OVER (ORDER BY last_at) AS pr_r,
        PERCENT_RANK() OVER (ORDER BY frequency) AS pr_f,
        PERCENT_RANK() OVER (ORDER BY monetary) AS pr_m
    FROM s
)
SELECT
    c.id AS customer_id,
    r.last_at AS last_shipment_at,
    CAST(DATE_DIFF('day', r.last_at, $as_of) AS INTEGER) AS recency_days,
    CAST(COALESCE(r.frequency, 0) AS INTEGER) AS frequency,
    CAST(COALESCE(r.monetary, 0) AS BIGINT) AS monetary_fen,
    -- LEAST skips NULLs on both engines: customers who never shipped need the CASE.
    CAST(CASE WHEN r.customer_id IS NULL THEN 0
         ELSE LEAST($bins, 1 + FLOOR($bins * r.pr_r)) END AS INTEGER) AS r,
    CAST(CASE WHEN r.customer_id IS NULL THEN 0
         ELSE LEAST($bins, 1 + FLOOR($bins * r.pr_f)) END AS INTEGER) AS f,
    CAST(CASE WHEN r.customer_id IS NULL THEN 0
         ELSE LEAST($bins, 1 + FLOOR($bins * r.pr_m)) END AS INTEGER) AS m,
    COALESCE(r.pr_m, 0.0) AS pr_m
FROM active AS c
LEFT JOIN ranked AS r ON r.customer_id = c.id
ORDER BY c.id
"""


def classify(scores: pa.Table, policy: AnalyticsPolicy) -> pa.Table:
    """Named segment, frequency class, value tier and relationship for scored rows
    (columns of :data:`SCORES_SQL`)."""
    bins = policy.rfm.bins
    r = scores["r"].to_numpy(zero_copy_only=False).astype(np.int64)
    f = scores["f"].to_numpy(zero_copy_only=False).astype(np.int64)
    m = scores["m"].to_numpy(zero_copy_only=False).astype(np.int64)
    fm = (f + m + 1) // 2
    # The rules as a lookup grid: index [r, fm]; row/column 0 are customers who never
    # shipped (no scores).
    names = [PROSPECT]
    grid = np.zeros((bins + 1, bins + 1), dtype=np.int64)
    for ri in range(1, bins + 1):
        for fi in range(1, bins + 1):
            # The policy's validator guarantees every cell has a rule.
            name = policy.rfm.segment(ri, fi) or PROSPECT
            if name not in names:
                names.append(name)
            grid[ri, fi] = names.index(name)
    shipped = r > 0
    segment_idx = np.where(shipped, grid[r, np.where(shipped, fm, 0)], 0)
    segment = np.array(names, dtype=object)[segment_idx]

    classes = policy.classes
    freq = scores["frequency"].to_numpy(zero_copy_only=False)
    frequency_class = np.where(
        freq >= classes.frequency_high,
        "high",
        np.where(freq >= classes.frequency_medium, "medium", "low"),
    )
    monetary = scores["monetary_fen"].to_numpy(zero_copy_only=False)
    pr_m = scores["pr_m"].to_numpy(zero_copy_only=False)
    high_cut = 1.0 - classes.value_high_share
    medium_cut = high_cut - classes.value_medium_share
    value_tier = np.where(
        (monetary > 0) & (pr_m >= high_cut),
        "high",
        np.where((monetary > 0) & (pr_m >= medium_cut), "medium", "low"),
    )
    lookup = {name: classes.relationship(name) for name in names}
    lookup[PROSPECT] = "potential"
    relationship = np.array([lookup[name] for name in names], dtype=object)[segment_idx]
    out = scores.drop_columns(["pr_m"])
    return (
        out.append_column("segment", pa.array(segment, pa.string()))
        .append_column("frequency_class", pa.array(frequency_class, pa.string()))
        .append_column("value_tier", pa.array(value_tier, pa.string()))
        .append_column("relationship", pa.array(relationship, pa.string()))
    )


def compute(ctx: StepContext) -> pa.Table:
    """Every active customer's scores and classes as of the run's cut-off."""
    policy = ctx.policy
    scores = ctx.workspace.query(
        SCORES_SQL,
        as_of=ctx.as_of,
        window_start=ctx.as_of - timedelta(days=policy.rfm.window_days),
        bins=policy.rfm.bins,
    )
    return classify(scores, policy)


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
