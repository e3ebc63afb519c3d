"""Churn prediction on demo data with planted churn: out-of-time ROC AUC of the churn step
(target >= 0.80) beside the AUC of the planted truth on the same customers.

    python benchmarks/churn.py --customers 50000

The demo generator plants churn with known drivers (``guanxi.demo.history``): individuals
leave more readily than enterprises; a complaint, a missed service level on it and a claim
rejected or left undecided raise the hazard from that moment; customers drifting away
ship less and less before they go. The database (customers, shipments, and the service
history behind the churn: tickets, timelines, SLA breaches, claims) is built once per size
and kept under /tmp with the latent churn state beside it (``.npz``) and a JSON sidecar
(written last).

Printed side by side, on the validation cut-off (``as_of - 90 days``, labels up to
``as_of``) and the same customers:

* the churn step's model (trained at ``as_of - 180 days``): ROC AUC, PR AUC, Brier;
* the planted truth: the generating process's own probability, knowing each customer's
  latent state (active and its hazard, drifting away, gone) — the ceiling;
* recency alone (days since the last shipment): the baseline any model must beat.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.analytics import churn, runner
from guanxi.analytics.engine import DuckWorkspace
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.demo.history import ChurnTruth, planted_churn_probability
from guanxi.security import crypto

TARGET_AUC = 0.80


def build(db: Path, customers: int, seed: int) -> dict[str, object]:
    """Generate the demo database with its service history and keep the churn truth."""
    from guanxi.demo.accounts import ensure_demo_users
    from guanxi.demo.generator import generate
    from guanxi.demo.history import History, load_staff

    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), db.with_suffix(".json"),
                  db.with_suffix(".npz")):  # fmt: skip
        stale.unlink(missing_ok=True)
    settings = bench_settings(db)
    crypto.configure(settings)
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
        history = History(load_staff(session), truth=True)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    summary = generate(
        engine, customers=customers, seed=seed, owner_ids=owners, now=now, history=history
    )
    generated = time.perf_counter() - started
    written = history.write(engine)
    engine.dispose()
    assert history.truth is not None
    history.truth.save(db.with_suffix(".npz"))
    facts: dict[str, object] = {
        "customers": summary.customers,
        "shipments": summary.shipments,
        "tickets": written.tickets,
        "breaches": written.breaches,
        "claims": written.claims,
        "generated_at": now.isoformat(),
        "generate_seconds": round(generated, 1),
        "history_seconds": round(written.seconds, 1),
        "seed": seed,
    }
    db.with_suffix(".json").write_text(json.dumps(facts, indent=1))
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true", help="generate the data again")
    args = parser.parse_args()
    db: Path = args.db or Path(f"/tmp/guanxi-churn-{args.customers}-{args.seed}.db")
    domains.load()
    sidecar = db.with_suffix(".json")
    if args.rebuild or not (db.exists() and sidecar.exists()):
        facts = build(db, args.customers, args.seed)
        print(
            f"generated {facts['customers']:,} customers, {facts['shipments']:,} shipments in "
            f"{facts['generate_seconds']} s; service history {facts['tickets']:,} tickets, "
            f"{facts['breaches']:,} SLA breaches, {facts['claims']:,} claims in "
            f"{facts['history_seconds']} s"
        )
    else:
        facts = json.loads(sidecar.read_text())
        print(f"reusing {db} (built {facts['generated_at']})")
    settings = bench_settings(db)
    crypto.configure(settings)
    as_of = datetime.fromisoformat(str(facts["generated_at"]))
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)

    started = time.perf_counter()
    snapshot = runner.snapshot_for(settings)
    snapshot.refresh()
    refresh_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = runner.run(engine, settings, only=["churn"], force=True, as_of=as_of)
    step_seconds = time.perf_counter() - started
    if summary.status != "succeeded":
        raise SystemExit(f"churn step failed: {summary.steps}")
    m = summary.metrics["churn"]

    # The same validation customers, labels and cut-off, through the step's own functions.
    local = as_of.astimezone(ZoneInfo(settings.timezone)).replace(tzinfo=None)
    t1 = local - timedelta(days=churn.HORIZON_DAYS)
    ws = DuckWorkspace(snapshot.directory)
    population = churn.features(ws, t1)
    y = churn.churned(population, churn.labels(ws, t1))
    ws.close()
    truth = planted_churn_probability(
        ChurnTruth.load(db.with_suffix(".npz")),
        as_of - timedelta(days=churn.HORIZON_DAYS),
        churn.HORIZON_DAYS,
    )
    p_truth = np.array([truth[c] for c in population.ids.tolist()])
    recency = population.column("recency_days")

    print(f"validation customers: {len(y):,}  churn rate {y.mean():.3f}  (horizon 90 days)")
    print(f"{'':28} {'ROC AUC':>8} {'PR AUC':>8} {'Brier':>8}")
    print(f"{'churn step (LightGBM)':28} {m['roc_auc']:8.4f} {m['pr_auc']:8.4f} {m['brier']:8.4f}")
    print(
        f"{'planted truth':28} {roc_auc_score(y, p_truth):8.4f} "
        f"{average_precision_score(y, p_truth):8.4f} {np.mean((p_truth - y) ** 2):8.4f}"
    )
    print(
        f"{'recency alone':28} {roc_auc_score(y, recency):8.4f} "
        f"{average_precision_score(y, recency):8.4f} {'-':>8}"
    )
    print("calibration (predicted -> observed):")
    for b in m["calibration"]:
        print(
            f"  {b['low']:.1f}-{b['high']:.1f}: {b['customers']:7,}  "
            f"{b['predicted']:.3f} -> {b['observed']:.3f}"
        )
    print(
        f"training: {m['train_customers']:,} customers in {m['train_seconds']:.1f} s (one fit); "
        f"step {step_seconds:.1f} s (3 feature sets, 2 fits, {m['scored']:,} scored, reasons); "
        f"snapshot refresh {refresh_seconds:.1f} s"
    )
    print(f"target ROC AUC >= {TARGET_AUC}: {'MET' if m['roc_auc'] >= TARGET_AUC else 'NOT MET'}")
    engine.dispose()


if __name__ == "__main__":
    main()
