"""Probabilistic record linkage of customers with splink, on an in-memory DuckDB or on Spark.

The model is Fellegi-Sunter: each compared field contributes a match weight from how often
its level occurs among true matches (m) and among random pairs (u). The m values are set
from what a second record of the same customer looks like (they are stable across
companies); the u values are estimated from each base by random sampling, so a common name
or a busy district counts for less where it is common. Candidate pairs come from blocking on
equal blind-indexed phones, e-mail, the folded name within a city and the folded address
line within a city, so a million customers make a few million comparisons, not 10^12.

DuckDB runs in memory with spilling off: nothing, not even blind indexes, goes to disk.

A full run can score on Spark instead (``GUANXI_DEDUPE_ENGINE=spark``, see :class:`SparkEngine`)
with the same settings object — comparisons, blocking rules, m and u values, prior — that
splink renders in Spark SQL, so the pairs and probabilities are the DuckDB run's. Spark
shuffles and caches through local files: they go to a private folder under
``data_dir/spark-tmp``, encrypted (``spark.io.encryption.enabled``, a key that lives in the
JVM's memory only), and the folder is removed when the run's session stops. Small scorings
(an incremental check of a few newcomers, the create form's check) always run on DuckDB:
starting Spark takes longer than they do.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from guanxi.config import Settings

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
                    # Written in DuckDB's SQL; splink translates it for Spark (RLIKE).
                    cll.CustomLevel(
                        "NOT regexp_matches(name_core_l, '[0-9]')", base_dialect_str="duckdb"
                    ),
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


def score_all(
    features: pa.Table, *, keep_from: float = KEEP_FROM, spark: SparkEngine | None = None
) -> list[ScoredPair]:
    """Score every candidate pair within ``features`` (a full run), on DuckDB or, given
    ``spark``, on Spark."""
    if features.num_rows < 2:
        return []
    if spark is not None:
        return _score_all_on_spark(features, keep_from, spark)
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


# --------------------------------------------------------------------------- Spark


@dataclass(frozen=True)
class SparkEngine:
    """Where a full run scores on Spark: the master (``local[2]``: two local threads; a
    cluster's URL runs the same statements distributed) and the folder under which each
    session keeps its scratch files (``data_dir/spark-tmp``)."""

    master: str
    scratch_root: Path


def engine_for(settings: Settings) -> SparkEngine | None:
    """The Spark engine the settings choose for full runs, or None for DuckDB."""
    if settings.dedupe_engine != "spark":
        return None
    return SparkEngine(master=settings.spark_master, scratch_root=settings.data_dir / "spark-tmp")


def _ours(conf: Any, scratch_root: Path) -> bool:
    """Whether a session's settings are the ones :func:`spark_session` gives."""
    local = conf.get("spark.local.dir", "")
    return bool(
        conf.get("spark.io.encryption.enabled", "false") == "true"
        and local
        and Path(local).parent == scratch_root
    )


@contextmanager
def spark_session(master: str, scratch_root: Path) -> Iterator[Any]:
    """A Spark session whose local files are encrypted and kept in a private folder under
    ``scratch_root``; the session is stopped and the folder removed on exit.

    A session this function opened and has not closed yet (a caller scoring several times,
    the tests) is used as it is and left to its opener. Any other running session was
    started with other local folders and perhaps without encryption, which Spark fixes at
    start: it is stopped first (the analytics start a new one on their next run).
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    running = getattr(SparkContext, "_active_spark_context", None)
    if running is not None:
        if _ours(running.getConf(), scratch_root):
            yield SparkSession.builder.getOrCreate()
            return
        running.stop()
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dedupe-", dir=scratch_root))  # mode 0700
    try:
        spark = (
            SparkSession.builder.master(master)
            .appName("guanxi-dedupe")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.local.dir", str(scratch))
            # Not a spark-warehouse folder in the working directory.
            .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
            # Shuffle and cache files hold blind indexes: encrypted with a per-session key.
            # Data handed from Python to the JVM also goes through a socket, not a file.
            .config("spark.io.encryption.enabled", "true")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
        try:
            spark.sparkContext.setLogLevel("ERROR")
            if not _ours(spark.sparkContext.getConf(), scratch_root):
                # another thread started a session in between: never run unencrypted
                raise RuntimeError("a Spark session without encrypted local files is running")
            yield spark
        finally:
            spark.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _score_all_on_spark(
    features: pa.Table, keep_from: float, engine: SparkEngine
) -> list[ScoredPair]:
    with spark_session(engine.master, engine.scratch_root) as spark:
        return _predict_on_spark(spark, features, keep_from)


def _predict_on_spark(spark: Any, features: pa.Table, keep_from: float) -> list[ScoredPair]:
    from splink import SparkAPI

    # Intermediate tables are cached in memory (spilling to the encrypted local folder), not
    # checkpointed as Parquet files in clear, splink's default.
    api = SparkAPI(  # type: ignore[no-untyped-call]
        spark_session=spark, break_lineage_method="persist", register_udfs_automatically=False
    )
    frame = spark.createDataFrame(features)
    df = api.register(frame, table_name="customers")
    linker = Linker(df, settings(), log_level=logging.WARNING)
    predictions = linker.inference.predict(
        threshold_match_probability=keep_from, warning_mode="never"
    )
    try:
        result: pa.Table = predictions.as_spark_dataframe().toArrow()
    finally:
        spark.catalog.clearCache()
        for table in spark.catalog.listTables():
            if table.isTemporary:
                spark.catalog.dropTempView(table.name)
    return list(_pairs(result))
