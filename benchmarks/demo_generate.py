"""``guanxi demo --customers N`` end to end: wall time and peak memory of the command
(target at 1,000,000 customers: <= 10 minutes, <= 2 GB).

    python benchmarks/demo_generate.py --customers 1000000 --db /tmp/guanxi-bench-1000000.db

Baseline in the same run: inserting as many minimal shipment rows (id, waybill number,
customer id) with a bare ``executemany`` into a fresh SQLite file — the floor any loader of
that many rows pays on this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    db_path = args.db or Path(tempfile.gettempdir()) / f"guanxi-bench-{args.customers}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    env = {
        **os.environ,
        "GUANXI_DATABASE_URL": f"sqlite:///{db_path}",
        "GUANXI_DATA_DIR": str(db_path.parent / (db_path.stem + "-keys")),
    }
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "guanxi.cli",
            "demo",
            "--customers",
            str(args.customers),
            "--seed",
            str(args.seed),
        ],
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    con = sqlite3.connect(db_path)
    shipments = con.execute("SELECT COUNT(*) FROM shipment").fetchone()[0]
    customers = con.execute("SELECT COUNT(*) FROM customer").fetchone()[0]
    con.execute("ANALYZE")
    con.close()

    with tempfile.TemporaryDirectory() as tmp:
        base = sqlite3.connect(Path(tmp) / "baseline.db")
        base.execute("PRAGMA journal_mode=WAL")
        base.execute("PRAGMA synchronous=OFF")
        base.execute(
            "CREATE TABLE s (id INTEGER PRIMARY KEY, waybill_no TEXT UNIQUE, customer_id INTEGER)"
        )
        t0 = time.perf_counter()
        chunk = 200_000
        for lo in range(0, shipments, chunk):
            rows = [(i, f"GX{i:012d}", i // 10) for i in range(lo, min(shipments, lo + chunk))]
            base.executemany("INSERT INTO s VALUES (?, ?, ?)", rows)
            base.commit()
        baseline = time.perf_counter() - t0
        base.close()

    print(f"customers: {customers:,}  shipments: {shipments:,}")
    print(
        f"guanxi demo: {seconds:,.1f} s  ({shipments / seconds:,.0f} shipments/s)  peak RSS {peak_mb:,.0f} MB"
    )
    print(
        f"baseline (bare executemany of {shipments:,} minimal rows): {baseline:,.1f} s "
        f"({shipments / baseline:,.0f} rows/s); ratio {seconds / baseline:.1f}x"
    )
    print(
        f"target <= 600 s: {'MET' if seconds <= 600 else 'NOT MET'}; "
        f"target <= 2048 MB: {'MET' if peak_mb <= 2048 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
