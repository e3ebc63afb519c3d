"""Volume forecast on demo data: rolling-origin backtest MAPE / sMAPE / WAPE of the
forecast step's model beside seasonal-naive (same weekday last week; and 52 weeks
earlier), on every series (origin province x service type, with the totals) and on the
company total. Target: MAPE at least 20 % better than seasonal-naive.

    python benchmarks/forecast.py --customers 100000

The database (customers, two years of shipments with the demo's weekly rhythm, Double 11
peaks and Spring Festival dips, and the service history: tickets about the waybills) is
built once per size and seed under /tmp with a JSON sidecar written last. The demo's
day calendar ends the day before it was generated, so the forecast's first day is the
generation day (local midnight as the cut-off); the later hours hold only the generator's
stragglers and would read as a collapse of volume.

The figures come from the step's own function (``forecast.compute``, what ``guanxi
analytics run --only forecast`` runs) on a DuckDB workspace over the snapshot; the step is
then run once through the runner for its wall time including the writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.analytics import forecast, runner
from guanxi.analytics.engine import DuckWorkspace
from guanxi.analytics.policy import ForecastPolicy
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

TARGET_IMPROVEMENT = 20.0


def build(db: Path, customers: int, seed: int) -> dict[str, Any]:
    """Generate the demo database with its service history."""
    from guanxi.demo.accounts import ensure_demo_users
    from guanxi.demo.generator import generate
    from guanxi.demo.history import History, load_staff

    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), db.with_suffix(".json")):
        stale.unlink(missing_ok=True)
    settings = bench_settings(db)
    crypto.configure(settings)
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
        history = History(load_staff(session))
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    summary = generate(
        engine, customers=customers, seed=seed, owner_ids=owners, now=now, history=history
    )
    written = history.write(engine)
    engine.dispose()
    facts: dict[str, Any] = {
        "customers": summary.customers,
        "shipments": summary.shipments,
        "tickets": written.tickets,
        "generated_at": now.isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "seed": seed,
    }
    db.with_suffix(".json").write_text(json.dumps(facts, indent=1))
    return facts


def _row(label: str, block: dict[str, Any] | None) -> str:
    if block is None:
        return f"  {label:34} {'(needs a year of history)':>26}"
    return f"  {label:34} {block['mape']:8.2f} {block['smape']:8.2f} {block['wape']:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true", help="generate the data again")
    parser.add_argument("--horizon", type=int, default=ForecastPolicy().horizon_days)
    parser.add_argument("--origins", type=int, default=ForecastPolicy().backtest_origins)
    parser.add_argument("--step", type=int, default=ForecastPolicy().backtest_step_days)
    parser.add_argument("--model-seed", type=int, default=0)
    args = parser.parse_args()
    db: Path = args.db or Path(f"/tmp/guanxi-forecast-{args.customers}-{args.seed}.db")
    domains.load()
    sidecar = db.with_suffix(".json")
    if args.rebuild or not (db.exists() and sidecar.exists()):
        facts = build(db, args.customers, args.seed)
        print(f"generated in {facts['seconds']} s")
    else:
        facts = json.loads(sidecar.read_text())
        print(f"reusing {db} (built {facts['generated_at']})")
    print(
        f"customers: {facts['customers']:,}  shipments: {facts['shipments']:,}  "
        f"tickets: {facts['tickets']:,}"
    )
    settings = bench_settings(db)
    crypto.configure(settings)
    generated = datetime.fromisoformat(str(facts["generated_at"]))
    tz = ZoneInfo(settings.timezone)
    first_day: date = generated.astimezone(UTC).date()
    as_of = datetime.combine(first_day, datetime.min.time(), tz)

    started = time.perf_counter()
    snapshot = runner.snapshot_for(settings)
    snapshot.refresh(["shipment", "ticket"])
    refresh_seconds = time.perf_counter() - started

    policy = ForecastPolicy(
        horizon_days=args.horizon,
        backtest_origins=args.origins,
        backtest_step_days=args.step,
        seed=args.model_seed,
    )
    workspace = DuckWorkspace(snapshot.directory, memory_limit=settings.analytics_memory)
    started = time.perf_counter()
    result = forecast.compute(workspace, first_day, policy)
    compute_seconds = time.perf_counter() - started
    workspace.close()
    m = result.metrics()
    bt = m["backtest"]

    print(
        f"series: {m['series']} (origin province x service type, with the totals); "
        f"history {m['history_days']} days; first forecast day {first_day}"
    )
    print(
        f"backtest: horizon {bt['horizon_days']} days from {len(bt['origins'])} origins "
        f"{args.step} days apart ({', '.join(bt['origins'])}); MAPE over series-days with "
        "actual > 0"
    )
    print(f"  {'':34} {'MAPE %':>8} {'sMAPE %':>8} {'WAPE %':>8}")
    met = True
    for part, title in (("all_series", "every series"), ("total", "company total")):
        block = bt[part]
        print(f" {title}")
        print(_row("model (LightGBM, global, direct)", block["model"]))
        print(_row("seasonal naive: last week", block["seasonal_naive"]))
        print(_row("seasonal naive: 52 weeks ago", block["seasonal_naive_year"]))
        print(
            f"  {'improvement over last week':34} {block['improvement_mape_pct']:7.1f}% "
            f"{block['improvement_smape_pct']:7.1f}% {block['improvement_wape_pct']:7.1f}%"
        )
        if part == "all_series":
            met = block["improvement_mape_pct"] >= TARGET_IMPROVEMENT
    coverage = bt["band_coverage"]
    print(
        f"{round(bt['band'] * 100)} % band: "
        + (
            f"{coverage * 100:.1f} % of the latest origin's actuals inside it "
            "(band from the earlier origins)"
            if coverage is not None
            else "(one origin: no coverage check)"
        )
    )
    whole = result.panel.keys.index(("", ""))
    print(
        f"tickets per shipment (last {policy.ticket_rate_weeks} weeks): "
        f"{m['ticket_rate']:.5f}; series with a rate of their own: "
        f"{m['series_with_own_ticket_rate']}"
    )
    print(" first week, company total:")
    for k in range(min(7, result.expected.shape[1])):
        day = first_day + timedelta(days=k)
        print(
            f"  {day} {day.strftime('%a')}  shipments {result.expected[whole, k]:8.0f} "
            f"[{result.low[whole, k]:6.0f}, {result.high[whole, k]:6.0f}]  "
            f"tickets {result.tickets[whole, k]:6.1f}"
        )
    s = m["seconds"]
    print(
        f"compute {compute_seconds:.1f} s (read {s['read']:.1f}, backtest {s['backtest']:.1f}, "
        f"final fit {s['fit']:.1f}); snapshot refresh {refresh_seconds:.1f} s"
    )
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    started = time.perf_counter()
    summary = runner.run(engine, settings, only=["forecast"], force=True, as_of=as_of)
    engine.dispose()
    print(
        f"step via the runner (default policy, {summary.steps['forecast']}): "
        f"{time.perf_counter() - started:.1f} s"
    )
    print(
        f"target MAPE >= {TARGET_IMPROVEMENT:.0f} % better than seasonal-naive: "
        f"{'MET' if met else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
