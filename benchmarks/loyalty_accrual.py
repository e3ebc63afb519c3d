"""Points accrual at scale (issue #6): 10,000,000 shipments over 1,000,000 customers,
credited by ``guanxi.loyalty.accrual.accrue`` (the worker's job and ``guanxi loyalty
accrue``), beside a bare copy of the same rows measured in the same run, then the ledger ==
balances check.

What is timed, on the same database, one after the other, the shipments read once before
both so neither pays for a cold file:

* **bare**: ``INSERT INTO bench_bare SELECT id, customer_id, fee_fen / 100 FROM shipment``
  for the same id ranges, one transaction per chunk: the least a points ledger costs (no
  earn rule, no member, no balance, no idempotency key, no index but the primary key).
* **accrual**: per chunk (1,000,000 shipments; 5,000,000 on PostgreSQL), in one
  transaction, the ledger rows by the earn rules with their keys and expiry (INSERT ...
  SELECT ... ON CONFLICT DO NOTHING on SQLite; on PostgreSQL a plain INSERT ... SELECT
  after one probe finds none of the chunk's keys credited yet), the members created or
  credited (one aggregated upsert on SQLite; a temporary table of sums, one join update
  and an insert of the new members on PostgreSQL), the watermark; with this many
  shipments waiting, the ledger's customer index is dropped for the run and rebuilt at
  its end (included in the time).

Printed after: ``verify_balances`` (every member's balance against the ledger's sum, must
be ``ok``) and, not part of the ratio, the first tier evaluation of every member.

The shipments are synthetic (customers uniformly at random, fees 8-48 yuan, the demo's
service-type mix, ids in time order over two years), written once per size with SQL and
kept under /tmp (``--dir``) as a pristine file that each run copies: the run itself always
starts from an empty ledger. Target: >= 100,000 events/s.

    python benchmarks/loyalty_accrual.py                         # 10,000,000 shipments
    python benchmarks/loyalty_accrual.py --shipments 1000000     # a quick look
    python benchmarks/loyalty_accrual.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

# Run as a script from anywhere, on this checkout's code.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from guanxi import domains
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.loyalty.accrual import default_chunk

START = "2024-11-26 00:00:00"
SPAN_SECONDS = 730 * 86_400

# The demo generator's service-type mix (standard, express, same-day, cold chain, international).
SERVICE_SQL = """CASE
    WHEN r % 100 < 55 THEN 'standard'
    WHEN r % 100 < 85 THEN 'express'
    WHEN r % 100 < 92 THEN 'same_day'
    WHEN r % 100 < 98 THEN 'cold_chain'
    ELSE 'international' END"""


def _fill_sqlite(path: Path, shipments: int, customers: int) -> None:
    """Customers and shipments by recursive CTEs (no Python rows), a million shipments
    per transaction, the tables' secondary indexes dropped during the load and built after
    (as a bulk import would)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('customer', 'shipment')"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {customers})
        INSERT INTO customer (id, kind, name, source, lifecycle_stage, status, created_at,
                              updated_at, version)
        SELECT i, 'individual', '客户' || i, 'other', 'active', 'active',
               '{START}.000000', '{START}.000000', 1 FROM n
        """  # noqa: S608 - integers and fixed text only
    )
    block = 1_000_000
    for lo in range(0, shipments, block):
        hi = min(lo + block, shipments)
        conn.execute("BEGIN")
        # Ids in time order: the n-th shipment at START + n * span / count.
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT {lo + 1} UNION ALL SELECT i + 1 FROM n WHERE i < {hi}),
            s AS (SELECT i, abs(random()) AS r FROM n)
            INSERT INTO shipment (id, kind, waybill_no, customer_id, service_type, status,
                                  fee_fen, insured_value_fen, cod_amount_fen, door_delivery,
                                  signed_receipt_return, created_at, is_damaged, is_lost)
            SELECT i, 'waybill', printf('GX%011d', i), 1 + (r / 7) % {customers}, {SERVICE_SQL},
                   CASE WHEN r % 1000 < 8 THEN 'cancelled' ELSE 'delivered' END,
                   800 + (r / 13) % 4001, 0, 0, 0, 0,
                   strftime('%Y-%m-%d %H:%M:%S', '{START}',
                            '+' || (i * {SPAN_SECONDS} / {shipments}) || ' seconds')
                       || '.000000',
                   0, 0
            FROM s
            """  # noqa: S608 - integers and fixed text only
        )
        conn.execute("COMMIT")
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _fill_postgresql(engine: Engine, shipments: int, customers: int) -> None:
    """The same data with generate_series."""
    with engine.begin() as conn:
        # psycopg takes % as a placeholder: the modulo operators are doubled.
        conn.exec_driver_sql(
            f"""
            INSERT INTO customer (id, kind, name, source, lifecycle_stage, status, created_at,
                                  updated_at, version)
            SELECT i, 'individual', '客户' || i, 'other', 'active', 'active',
                   TIMESTAMPTZ '{START}+00', TIMESTAMPTZ '{START}+00', 1
            FROM generate_series(1, {customers}) AS i
            """
        )
        conn.exec_driver_sql(
            f"""
            INSERT INTO shipment (id, kind, waybill_no, customer_id, service_type, status,
                                  fee_fen, insured_value_fen, cod_amount_fen, door_delivery,
                                  signed_receipt_return, created_at, is_damaged, is_lost)
            SELECT i, 'waybill', 'GX' || lpad(i::text, 11, '0'), 1 + (r / 7) % {customers},
                   {SERVICE_SQL},
                   CASE WHEN r % 1000 < 8 THEN 'cancelled' ELSE 'delivered' END,
                   800 + (r / 13) % 4001, 0, 0, false, false,
                   TIMESTAMPTZ '{START}+00' + make_interval(secs => i::bigint * {SPAN_SECONDS} / {shipments}),
                   false, false
            FROM (SELECT i, (random() * 2147483647)::bigint AS r
                  FROM generate_series(1, {shipments}) AS i) AS g
            """.replace("%", "%%")  # noqa: S608 - integers and fixed text only
        )
        for table in ("customer", "shipment"):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def sqlite_database(folder: Path, shipments: int, customers: int) -> Path:
    """A working copy of the pristine file of this size (built once)."""
    pristine = folder / f"guanxi-loyalty-{shipments}-{customers}.db"
    sidecar = pristine.with_suffix(".json")
    if not sidecar.exists():
        for leftover in folder.glob(pristine.name + "*"):
            leftover.unlink()
        started = time.perf_counter()
        engine = make_engine(f"sqlite:///{pristine}", sqlite_mmap_bytes=0)
        upgrade(engine)
        engine.dispose()
        _fill_sqlite(pristine, shipments, customers)
        sidecar.write_text(json.dumps({"shipments": shipments, "customers": customers}))
        print(f"built {pristine} in {time.perf_counter() - started:.0f}s")
    work = folder / f"guanxi-loyalty-run-{shipments}.db"
    for leftover in folder.glob(work.name + "*"):
        leftover.unlink()
    shutil.copyfile(pristine, work)
    return work


def postgresql_database(base: str, shipments: int, customers: int) -> tuple[str, Any]:
    """A fresh database on the server of ``base`` (dropped at the end)."""
    name = f"guanxi_loyalty_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    engine = make_engine(url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        _fill_postgresql(engine, shipments, customers)
    except BaseException:
        engine.dispose()
        drop()
        raise
    engine.dispose()
    print(f"built {name} in {time.perf_counter() - started:.0f}s")
    return url, drop


def bare(engine: Engine, chunk: int) -> tuple[float, int]:
    """The baseline: the same rows copied into a plain table, chunk by chunk."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_bare")
        conn.exec_driver_sql(
            "CREATE TABLE bench_bare (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, "
            "points BIGINT NOT NULL)"
        )
        top = int(conn.exec_driver_sql("SELECT max(id) FROM shipment").scalar() or 0)
    rows = 0
    started = time.perf_counter()
    for lo in range(0, top, chunk):
        with engine.begin() as conn:
            rows += conn.execute(
                text(
                    "INSERT INTO bench_bare SELECT id, customer_id, fee_fen / 100 FROM shipment "
                    "WHERE id > :lo AND id <= :hi"
                ),
                {"lo": lo, "hi": lo + chunk},
            ).rowcount
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE bench_bare")
    return seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shipments", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: shipments / 10")
    parser.add_argument(
        "--chunk", type=int, default=None, help="default: the accrual's own for the database"
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--pg", help="PostgreSQL server URL (a scratch database is made on it)")
    args = parser.parse_args()
    customers = args.customers or max(1, args.shipments // 10)
    domains.load()
    from guanxi.loyalty.accrual import accrue
    from guanxi.loyalty.ledger import verify_balances
    from guanxi.loyalty.tiers import evaluate

    drop = None
    if args.pg:
        url, drop = postgresql_database(args.pg, args.shipments, customers)
        where = "PostgreSQL"
    else:
        path = sqlite_database(args.dir, args.shipments, customers)
        url = f"sqlite:///{path}"
        where = f"SQLite {path}"
    # The batch commands' engine (no memory-mapped reads), as ``guanxi loyalty accrue``.
    engine = make_engine(url, sqlite_mmap_bytes=0)
    try:
        with engine.connect() as conn:  # read the shipments once: neither side pays cold I/O
            conn.exec_driver_sql("SELECT count(*), sum(fee_fen) FROM shipment").one()
        with make_sessionmaker(engine)() as session:
            chunk = args.chunk or default_chunk(session)
        bare_s, bare_rows = bare(engine, chunk)
        with make_sessionmaker(engine)() as session:
            result = accrue(session, chunk=chunk)
            started = time.perf_counter()
            check = verify_balances(session)
            verify_s = time.perf_counter() - started
            started = time.perf_counter()
            tiers = evaluate(session)
            tiers_s = time.perf_counter() - started
        ours = result.shipments / result.seconds
        base = bare_rows / bare_s
        print(
            f"database: {where}; {args.shipments:,} shipments, {customers:,} customers, chunk {chunk:,}"
        )
        print(
            f"accrual:  {result.shipments:,} shipments -> {result.entries:,} ledger rows, "
            f"{result.members:,} members, {result.points:,} points in {result.seconds:.1f}s = "
            f"{ours:,.0f} events/s"
        )
        print(f"bare:     {bare_rows:,} rows copied in {bare_s:.1f}s = {base:,.0f} rows/s")
        print(
            f"ratio:    accrual / bare = {ours / base:.2f} (target >= 100,000 events/s: {'met' if ours >= 100_000 else 'MISSED'})"
        )
        print(
            f"verify:   ledger == balances: {check.ok} ({check.members:,} members, "
            f"{check.entries:,} rows, {check.ledger_total:,} points) in {verify_s:.1f}s"
        )
        print(f"tiers:    first evaluation of every member in {tiers_s:.1f}s: {tiers.figures()}")
        return 0 if check.ok else 1
    finally:
        engine.dispose()
        if drop is not None:
            drop()


if __name__ == "__main__":
    sys.exit(main())
