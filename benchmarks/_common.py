"""Helpers shared by the benchmark scripts: demo databases and percentiles."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from guanxi import domains
from guanxi.config import Environment, Settings
from guanxi.core.db import make_engine
from guanxi.core.migrate import upgrade
from guanxi.security import crypto


def bench_settings(db_path: Path) -> Settings:
    """Development settings on ``db_path`` with the key file kept beside it."""
    return Settings(
        env=Environment.development,
        database_url=f"sqlite:///{db_path}",
        data_dir=db_path.parent / (db_path.stem + "-keys"),
    )


def ensure_demo_db(db_path: Path, customers: int, seed: int = 42) -> Settings:
    """Create (once) a demo database of ``customers`` customers at ``db_path``."""
    settings = bench_settings(db_path)
    domains.load()
    crypto.configure(settings)
    if db_path.exists():
        return settings
    from guanxi.core.db import make_sessionmaker
    from guanxi.demo.accounts import ensure_demo_users
    from guanxi.demo.generator import generate

    engine = make_engine(settings.database_url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
    started = time.perf_counter()
    summary = generate(engine, customers=customers, seed=seed, owner_ids=owners)
    print(
        f"generated {summary.customers} customers, {summary.shipments} shipments "
        f"in {time.perf_counter() - started:.0f}s"
    )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        # Fold the write-ahead log into the file: reading through a log of hundreds of MB
        # slows every page lookup of the benchmark that follows.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return settings


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest-rank) of ``values``."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(values: list[float]) -> dict[str, Any]:
    """p50 / p95 / max in milliseconds."""
    return {
        "n": len(values),
        "p50": statistics.median(values) * 1000,
        "p95": percentile(values, 95) * 1000,
        "max": max(values) * 1000,
    }


def env_flag(name: str) -> bool:
    """Whether an environment flag is set to a true value."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
