"""RFM and classes at scale (issue #5), beside a bare DuckDB RFM group-by on the same data.

    python benchmarks/rfm.py --db /tmp/guanxi-desk-10000000-1000000.db
    python benchmarks/rfm.py --synthetic 100000000       # Parquet only: 100M shipments

What is timed, on the same Parquet snapshot, alternating, median of ``--repeat`` runs:

* **guanxi**: the ``rfm`` step's computation — ``rfm.FIGURES_SQL`` (recency, frequency and
  monetary per active customer, percent-rank scores, the customers who never shipped) and
  ``rfm.classify`` (named segments from the policy's rules, frequency class, value tier,
  relationship) into the Arrow table the step writes.
* **bare**: one DuckDB statement — last shipment, count and sum per customer with NTILE(5)
  scores — the least an RFM needs.

Printed separately (not part of the ratio): refreshing the snapshot from the database
(ADBC → Parquet, once per data change) and writing the result rows into a scratch SQLite
database as the step does. ``--synthetic N`` writes N random shipments over 8 % as many
customers straight to Parquet (the snapshot's format) with DuckDB and runs the same
computation under DuckDB's memory ceiling, printing the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from guanxi import domains
from guanxi.analytics import rfm
from guanxi.analytics.engine import DuckWorkspace, Snapshot
from guanxi.analytics.policy import AnalyticsPolicy

BARE_SQL = """
WITH s AS (
    SELECT customer_id, MAX(created_at) AS last_at, COUNT(*) AS n, SUM(fee_fen) AS spend
    FROM shipment
    WHERE created_at < $as_of AND created_at >= $window_start
    GROUP BY customer_id
)
SELECT customer_id,
       NTILE(5) OVER (ORDER BY last_at) AS r,
       NTILE(5) OVER (ORDER BY n) AS f,
       NTILE(5) OVER (ORDER BY spend) AS m
FROM s
"""


def peak_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def synthesize(folder: Path, shipments: int, seed: int = 7) -> None:
    """Random shipments and customers as the snapshot would hold them (Parquet)."""
    customers = max(1, shipments * 8 // 100)
    for table in ("customer", "shipment"):
        (folder / table).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    con.execute(f"SELECT setseed({seed / 100})")
    con.execute(
        f"""COPY (SELECT range + 1 AS id, 'individual' AS kind, 'active' AS status,
                  TIMESTAMP '2023-01-01' AS created_at
                  FROM range({customers}))
            TO '{folder}/customer/000000.parquet' (FORMAT parquet)"""
    )
    block = 20_000_000
    for part, lo in enumerate(range(0, shipments, block)):
        n = min(block, shipments - lo)
        con.execute(
            f"""COPY (SELECT {lo} + range + 1 AS id,
                      1 + CAST(floor(random() * {customers}) AS BIGINT) AS customer_id,
                      TIMESTAMP '2024-11-25' + to_microseconds(
                          CAST(random() * 730 * 86400e6 AS BIGINT)) AS created_at,
                      CAST(800 + random() * 4000 AS BIGINT) AS fee_fen
                      FROM range({n}))
                TO '{folder}/shipment/{part:06d}.parquet' (FORMAT parquet)"""
        )
    con.close()


def params(as_of: datetime, policy: AnalyticsPolicy) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "window_start": as_of - timedelta(days=policy.rfm.window_days),
        "bins": policy.rfm.bins,
    }


def ours(ws: DuckWorkspace, as_of: datetime, policy: AnalyticsPolicy) -> pa.Table:
    scores = ws.query(rfm.FIGURES_SQL, **params(as_of, policy))
    return rfm.classify(scores, policy)


def bare(ws: DuckWorkspace, as_of: datetime, policy: AnalyticsPolicy) -> pa.Table:
    return ws.query(BARE_SQL, **params(as_of, policy))


def write_rows(table: pa.Table) -> float:
    """Insert the result rows into a scratch SQLite database the way the step does."""
    from guanxi.analytics.models import AnalyticsRun, CustomerClass
    from guanxi.analytics.runner import bulk_insert
    from guanxi.core.db import make_engine, make_sessionmaker, table_of
    from guanxi.core.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/results.db")
        upgrade(engine)
        with make_sessionmaker(engine)() as session, session.begin():
            run = AnalyticsRun(as_of=datetime.now().astimezone(), status="running")
            session.add(run)
            session.flush()
            run_id = run.id
        started = time.perf_counter()
        rows = rfm._to_utc(table, "last_shipment_at", "Asia/Shanghai")
        rows = rows.append_column("run_id", pa.array([run_id] * len(rows), pa.int64()))
        with make_sessionmaker(engine)() as session, session.begin():
            bulk_insert(session, table_of(CustomerClass), rows)
        seconds = time.perf_counter() - started
        engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a Guanxi SQLite database to snapshot")
    parser.add_argument("--synthetic", type=int, help="shipments to synthesise instead")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", default="2GB", help="DuckDB memory ceiling")
    parser.add_argument("--no-write", action="store_true", help="skip the result write")
    args = parser.parse_args()
    domains.load()
    policy = AnalyticsPolicy()
    if args.synthetic:
        folder = Path(f"/tmp/guanxi-rfm-synthetic-{args.synthetic}")
        if not (folder / "shipment").exists():
            seconds, _ = timed(lambda: synthesize(folder, args.synthetic))
            print(f"synthesised {args.synthetic:,} shipments in {seconds:.0f} s")
        snapshot_dir = folder
        as_of = datetime(2026, 11, 25, 12, 0)  # noqa: DTZ001 - local wall-clock time
    else:
        if args.db is None:
            parser.error("--db or --synthetic")
        snapshot_dir = Path(f"/tmp/guanxi-rfm-snapshot-{args.db.stem}")
        snap = Snapshot(snapshot_dir, f"sqlite:///{args.db}", "Asia/Shanghai")
        seconds, report = timed(lambda: snap.refresh(["customer", "shipment"]))
        print(
            f"snapshot refresh: {seconds:.1f} s, rows read {report.rows}, "
            f"blocks kept {report.kept_blocks}"
        )
        ws0 = DuckWorkspace(snapshot_dir)
        latest = ws0.query("SELECT MAX(created_at) AS m FROM shipment")["m"][0].as_py()
        ws0.close()
        as_of = latest + timedelta(minutes=1)

    ws = DuckWorkspace(snapshot_dir, memory_limit=args.memory)
    counts = ws.query(
        "SELECT (SELECT COUNT(*) FROM shipment) AS s, (SELECT COUNT(*) FROM customer) AS c"
    ).to_pylist()[0]
    print(f"data: {counts['s']:,} shipments, {counts['c']:,} customers; as of {as_of}")
    mine: list[float] = []
    base: list[float] = []
    table: pa.Table | None = None
    for _ in range(args.repeat):
        seconds, table = timed(lambda: ours(ws, as_of, policy))
        mine.append(seconds)
        seconds, _ = timed(lambda: bare(ws, as_of, policy))
        base.append(seconds)
    ws.close()
    assert table is not None
    ours_s, bare_s = statistics.median(mine), statistics.median(base)
    print(f"guanxi rfm + classes   {ours_s:7.2f} s   (runs: {', '.join(f'{s:.2f}' for s in mine)})")
    print(f"bare DuckDB RFM        {bare_s:7.2f} s   (runs: {', '.join(f'{s:.2f}' for s in base)})")
    ratio = ours_s / bare_s
    verdict = "met" if ratio <= 1.5 else "NOT MET"
    print(f"ratio {ratio:.2f}x (target <= 1.5x: {verdict}); {len(table):,} customers classified")
    print(f"peak resident memory {peak_mb():,.0f} MB (DuckDB ceiling {args.memory})")
    if not args.no_write and not args.synthetic:
        print(f"writing {len(table):,} result rows into SQLite: {write_rows(table):.1f} s")


if __name__ == "__main__":
    main()
