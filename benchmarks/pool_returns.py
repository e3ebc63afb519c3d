"""The customer pool's daily return job over a large book, beside a bare UPDATE of the same
customers measured in the same run.

    python benchmarks/pool_returns.py                        # 200,000 owned customers, SQLite
    python benchmarks/pool_returns.py --customers 50000 --due 0.05
    python benchmarks/pool_returns.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/bench

Customers are bulk-generated once per size (SQLite under /tmp, or a fresh PostgreSQL
database), every one owned by one of 20 account managers, created two years ago; all but
``--due`` of them have a recent follow-up by their owner. The policy returns after 30 days
without follow-up, no warning days (so every due customer is returned in the run).

Timed, median of ``--repeat`` runs, each on a fresh copy of the owners:

* **returns**: ``guanxi.pool.returns.run_returns`` — the set-based candidate query, the
  exact basis per candidate, the conditional owner change with one audit entry per
  customer (``customers.service.assign_owner``), the history rows and one notification
  per customer;
* **idle**: the same job run again the same day (what each hourly run costs once the
  day's work is done: the candidate scan finds nothing);
* **bare**: one ``UPDATE customer SET owner_id = NULL`` of the same customers — the least
  it costs to clear the owners.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))  # on this checkout's code
from sqlalchemy import Engine, inspect, text

from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

NOW = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
OWNERS = 20


def build(engine: Engine, customers: int, due: float, seed: int) -> None:
    """Owners, customers and their follow-ups in a freshly migrated database."""
    from guanxi.audit.service import Actor
    from guanxi.pool.policy import PoolPolicy, save_policy
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    upgrade(engine)
    started = time.perf_counter()
    with make_sessionmaker(engine)() as session:
        users = [
            create_user(
                session,
                user_in=UserCreate(
                    username=f"bench{n}",
                    display_name=f"客户经理{n}",
                    role="manager" if n == 0 else "sales",
                    password="bench password 1",  # noqa: S106 - a throw-away benchmark database
                ),  # type: ignore[arg-type]
                actor=Actor.system("bench"),
            )
            for n in range(OWNERS + 1)
        ]
        save_policy(
            session,
            policy=PoolPolicy(no_follow_up_days=30, contract_ended_days=None, warn_days=0),
            actor=users[0],
        )
    rng = random.Random(seed)
    created = (NOW - timedelta(days=730)).replace(tzinfo=None).isoformat(sep=" ")
    recent = (NOW - timedelta(days=3)).replace(tzinfo=None).isoformat(sep=" ")
    people, contacts = [], []
    for cid in range(1, customers + 1):
        owner = users[1 + cid % OWNERS].id
        people.append((cid, "individual", f"客户{cid}", "other", "active", "active", owner,
                       created, created, 1))  # fmt: skip
        if rng.random() >= due:
            contacts.append((cid, "call", recent, owner, "回访", recent))
    columns = {
        "customer": "id, kind, name, source, lifecycle_stage, status, owner_id, created_at, "
        "updated_at, version",
        "interaction": "customer_id, kind, occurred_at, user_id, summary, created_at",
    }
    with engine.begin() as conn:
        for table, rows in (("customer", people), ("interaction", contacts)):
            cols = columns[table]
            if engine.dialect.name == "postgresql":
                raw = conn.connection.dbapi_connection
                assert raw is not None
                with raw.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * (cols.count(",") + 1))
                conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)  # type: ignore[arg-type]
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('customer', 'id'), {customers})"
            )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"generated {customers:,} owned customers in {time.perf_counter() - started:.0f}s")  # noqa: T201


def reset(engine: Engine, customers: int) -> list[int]:
    """Give every customer back to its owner and forget the pool's history; the due ids."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM pool_event")
        conn.exec_driver_sql("DELETE FROM notification")
        conn.exec_driver_sql("DELETE FROM outbox_message")
        users = [r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM app_user WHERE username <> 'bench0' ORDER BY id")]  # fmt: skip
        # text(): the driver's paramstyle may need the modulo sign escaped.
        conn.execute(
            text(
                "UPDATE customer SET owner_id = CASE "
                + " ".join(f"WHEN id % {OWNERS} = {n} THEN {uid}" for n, uid in enumerate(users))
                + " END"
            )
        )
        due = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT id FROM customer c WHERE NOT EXISTS (SELECT 1 FROM interaction i "
                "WHERE i.customer_id = c.id) ORDER BY id"
            )
        ]
    return due


def main() -> None:
    """Build once, then time the job, its idle re-run and the bare update."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--due", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL (a fresh database)")
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"guanxi-pool-{args.customers}-{args.due}.db"
    settings = bench_settings(path)
    domains.load()
    crypto.configure(settings)
    url = args.pg or settings.database_url
    engine = make_engine(url, sqlite_mmap_bytes=0)
    with engine.connect() as conn:
        ready = inspect(conn).has_table("pool_event") and bool(
            conn.execute(text("SELECT count(*) FROM customer")).scalar() == args.customers
        )
    if not ready:
        build(engine, args.customers, args.due, seed=42)

    from guanxi.core import clock
    from guanxi.pool.returns import run_returns

    figures: dict[str, list[float]] = {"returns": [], "idle": [], "bare": []}
    returned = 0
    for _ in range(args.repeat):
        due = reset(engine, args.customers)
        with clock.frozen(NOW), make_sessionmaker(engine)() as session:
            started = time.perf_counter()
            run = run_returns(session, now=NOW, timezone="Asia/Shanghai")
            figures["returns"].append(time.perf_counter() - started)
            started = time.perf_counter()
            again = run_returns(session, now=NOW, timezone="Asia/Shanghai")
            figures["idle"].append(time.perf_counter() - started)
        returned = run.figures()["returned_no_follow_up"]
        assert returned == len(due), (returned, len(due))
        assert again.figures()["returned_no_follow_up"] == 0
        reset(engine, args.customers)
        with engine.begin() as conn:
            started = time.perf_counter()
            for i in range(0, len(due), 900):
                chunk = ", ".join(map(str, due[i : i + 900]))
                conn.exec_driver_sql(f"UPDATE customer SET owner_id = NULL WHERE id IN ({chunk})")
            figures["bare"].append(time.perf_counter() - started)
    engine.dispose()
    median: dict[str, Any] = {k: statistics.median(v) for k, v in figures.items()}
    print(  # noqa: T201
        f"{engine.dialect.name}: {args.customers:,} owned customers, {returned:,} returned: "
        f"returns {median['returns']:.2f}s ({returned / median['returns']:,.0f}/s), "
        f"idle re-run {median['idle']:.2f}s, bare update {median['bare']:.3f}s"
    )


if __name__ == "__main__":
    main()
