"""De-duplication scoring on Spark (local mode) beside DuckDB, the same features in one run.

The demo base with planted duplicates of ``benchmarks/dedupe.py`` (made once, cached in
``--dir``); its features are read once, then scored by ``linkage.score_all`` on the
in-memory DuckDB (the baseline) and on a local Spark session with ``--master`` (default
``local[2]``: the machine's two cores). Printed: seconds per engine (Spark's start-up
apart from its scoring), whether both found the same pairs, the largest probability
difference, and precision / recall at the automatic-merge threshold against the truth.

On one machine DuckDB is the faster engine; Spark is there for when the base no longer
fits one machine's memory (docs/scaling.md). The driver's memory is ``--driver-memory``.

    python benchmarks/scale_dedupe.py --customers 100000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from benchmarks.dedupe import _base
from guanxi import domains
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.security import crypto


def uptime() -> str:
    """The machine's load averages, printed beside every figure."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    # The driver JVM's heap is fixed when it starts, from the submit arguments.
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.driver_memory} pyspark-shell"

    base = args.dir / f"guanxi-dedupe-{args.customers}.db"
    settings = bench_settings(base)
    domains.load()
    crypto.configure(settings)
    truth = _base(base, args.customers, args.rate)

    from guanxi.dedupe import features, linkage, service

    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        started = time.perf_counter()
        table = features.load_features(session)
        print(
            f"features of {table.num_rows:,} customers read in {time.perf_counter() - started:.1f} s"
        )
    engine.dispose()

    def quality(pairs: list[linkage.ScoredPair]) -> str:
        sure = {(p.left, p.right) for p in pairs if p.probability >= service.AUTO_THRESHOLD}
        tp = len(sure & truth)
        return f"precision {tp / len(sure):.4f} recall {tp / len(truth):.4f}" if sure else "-"

    print(f"-- {uptime()}")
    started = time.perf_counter()
    on_duck = linkage.score_all(table, keep_from=service.REVIEW_THRESHOLD)
    duck_s = time.perf_counter() - started
    print(f"DuckDB (baseline)  scoring {duck_s:7.1f} s  {len(on_duck):,} pairs  {quality(on_duck)}")
    print(f"-- {uptime()}")

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        root = Path(scratch) / "spark-tmp"
        started = time.perf_counter()
        with linkage.spark_session(args.master, root):
            start_s = time.perf_counter() - started
            engine_spec = linkage.SparkEngine(args.master, root)
            timings = []
            for _ in range(2):  # the first run also compiles Spark's generated code
                started = time.perf_counter()
                on_spark = linkage.score_all(
                    table, keep_from=service.REVIEW_THRESHOLD, spark=engine_spec
                )
                timings.append(time.perf_counter() - started)
        print(
            f"Spark {args.master}  start {start_s:.1f} s, scoring {timings[0]:.1f} s (first),"
            f" {timings[1]:.1f} s (second)  {len(on_spark):,} pairs  {quality(on_spark)}"
        )
    print(f"-- {uptime()}")
    a = {(p.left, p.right): p.probability for p in on_duck}
    b = {(p.left, p.right): p.probability for p in on_spark}
    diff = max((abs(a[k] - b[k]) for k in a.keys() & b.keys()), default=0.0)
    print(f"same pairs: {set(a) == set(b)}; largest probability difference {diff:.2e}")


if __name__ == "__main__":
    main()
