"""The data-quality report (``guanxi quality report``) on a generated customer base.

Prints the report's wall time (best and median of ``--repeat`` runs) and, as this run's
baseline, the time of the cheapest query that touches every active customer once
(``SELECT kind, count(*) … GROUP BY kind``): the ratio says how many such passes the whole
report costs, which compares across machines.

    python benchmarks/quality_report.py                        # 200,000 customers, SQLite
    python benchmarks/quality_report.py --customers 1000000
    python benchmarks/quality_report.py --url postgresql+psycopg://…/loaded_db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import ensure_demo_db
from guanxi import domains
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.customers.models import Customer
from guanxi.quality.service import quality_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (generated once)")
    parser.add_argument("--url", default=None, help="an already loaded database instead")
    parser.add_argument("--stale-months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.url:
        domains.load()
        url = args.url
    else:
        db_path = args.db or Path(f"/tmp/guanxi-bench-{args.customers}.db")
        url = ensure_demo_db(db_path, args.customers).database_url
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)

    baseline_stmt = (
        select(Customer.kind, func.count(), func.count(Customer.email_bidx))
        .where(Customer.status == "active")
        .group_by(Customer.kind)
    )
    baselines, runs = [], []
    report = None
    for _ in range(args.repeat):
        with sessions() as session:
            started = time.perf_counter()
            session.execute(baseline_stmt).all()
            baselines.append(time.perf_counter() - started)
        with sessions() as session:
            started = time.perf_counter()
            report = quality_report(session, stale_months=args.stale_months)
            runs.append(time.perf_counter() - started)
    engine.dispose()
    assert report is not None

    print(
        f"{engine.dialect.name}: {report.totals.total:,} customers "
        f"({report.totals.active:,} active), {args.repeat} runs"
    )
    print(f"{'':<34}{'best s':>9}{'median s':>10}")
    print(f"{'quality report':<34}{min(runs):>9.2f}{statistics.median(runs):>10.2f}")
    print(
        f"{'baseline: one pass over customers':<34}{min(baselines):>9.2f}"
        f"{statistics.median(baselines):>10.2f}"
    )
    print(f"report / baseline: {min(runs) / min(baselines):.1f} passes")
    dup = {d.rule.value: d.groups for d in report.duplicates}
    print(f"stale {report.stale.count:,} ({report.stale.percent}%), duplicate groups {dup}")


if __name__ == "__main__":
    main()
