"""De-duplication of a demo base with planted duplicates: time, precision and recall.

The demo generator plants ``--rate`` (default 3 %) second records of existing customers with
realistic variants and returns which records are the same customer. This script times a
full ``guanxi dedupe`` run's stages on that base — reading the features, scoring with splink
on DuckDB, storing the pairs — and prints pairwise precision and recall of the pairs at or
above the automatic-merge threshold against the planted truth. The automatic merges of the
same run are timed separately (``--merge``; a merge is a transaction per 100 pairs with
audit entries, so its cost is per pair, not per customer).

Targets (issue #3): 1,000,000 customers in <= 90 s on 2 cores, precision >= 0.99, recall
>= 0.97.

    python benchmarks/dedupe.py --customers 1000000 [--merge]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.audit.service import Actor
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto


def _base(path: Path, customers: int, rate: float) -> set[tuple[int, int]]:
    """A demo base with planted duplicates (made once, kept with its truth file)."""
    truth_file = path.with_suffix(".truth.json")
    if path.exists() and truth_file.exists():
        return {tuple(p) for p in json.loads(truth_file.read_text())}  # type: ignore[misc]
    from guanxi.demo.generator import generate

    engine = make_engine(bench_settings(path).database_url)
    upgrade(engine)
    started = time.perf_counter()
    summary = generate(engine, customers=customers, seed=42, duplicate_rate=rate)
    print(f"generated {customers:,} customers in {time.perf_counter() - started:.0f}s")
    engine.dispose()
    truth_file.write_text(json.dumps(summary.duplicates))
    return set(summary.duplicates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--merge", action="store_true", help="also time the automatic merges")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()

    base = args.dir / f"guanxi-dedupe-{args.customers}.db"
    settings = bench_settings(base)
    domains.load()
    crypto.configure(settings)
    truth = _base(base, args.customers, args.rate)
    work = args.dir / f"guanxi-dedupe-{args.customers}-run.db"
    shutil.copyfile(base, work)  # merging changes the base: run on a copy
    engine = make_engine(bench_settings(work).database_url)
    upgrade(engine)

    from guanxi.dedupe import service
    from guanxi.dedupe.models import DuplicatePair

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    progress = service.RunProgress(stage=lambda s: marks.append((s, time.perf_counter())))
    with make_sessionmaker(engine)() as session:
        run = service.run(
            session, actor=Actor.system("bench"), auto_merge=args.merge, progress=progress
        )
        total = time.perf_counter() - started
        found = {
            (left, right)
            for left, right, p in session.query(
                DuplicatePair.left_id, DuplicatePair.right_id, DuplicatePair.probability
            )
            if p >= service.AUTO_THRESHOLD
        }
    stamps = dict(marks)
    finding = stamps.get("merging", started + total) - started
    tp = len(found & truth)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(truth) if truth else 0.0
    print(f"customers            {run.customers:,} (planted duplicate pairs: {len(truth):,})")
    print(f"features read        {stamps['scoring'] - stamps['features']:.1f} s")
    print(f"scoring (splink)     {stamps['storing'] - stamps['scoring']:.1f} s")
    print(f"finding, total       {finding:.1f} s   (target <= 90 s)")
    print(
        f"pairs >= {service.AUTO_THRESHOLD}        {len(found):,}; queued for review {run.queued:,}"
    )
    print(f"precision            {precision:.4f}   (target >= 0.99)")
    print(f"recall               {recall:.4f}   (target >= 0.97)")
    if args.merge:
        merging = total - finding
        print(
            f"automatic merges     {run.auto_merged:,} in {merging:.1f} s "
            f"({run.auto_merged / merging if merging else 0:.0f} merges/s)"
        )
    print(
        f"peak memory          {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    engine.dispose()
    work.unlink()


if __name__ == "__main__":
    main()
