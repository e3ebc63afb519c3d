"""Time partitioning of shipments at 1/100 scale and below, on the PostgreSQL dev server.

For each ``--rows`` size the script creates its own database ``scale_part_<rows>``, one
customer table (``--customers`` rows) and two shipment tables with the columns and indexes
of ``guanxi.shipments.models.Shipment`` that matter for size and speed (the encrypted
receiver phone is left out: it is opaque text that only widens the heap):

* ``shipment_plain`` — the baseline, today's single table;
* ``shipment_part`` — ``PARTITION BY RANGE (created_at)``, one partition per month.

The rows span one year in time order (a carrier's daily imports arrive in time order),
customers uniformly at random. The data is written once to a CSV file by the server and
loaded with the same ``COPY ... FROM`` into each table with its indexes and foreign key in
place, as the daily import loads it. Then, on warm caches, in the same run for both:

* index and table sizes;
* the 360 page's "last 20 shipments of a customer" (random customers), p50/p95;
* a waybill lookup by number (random waybills), p50/p95 — the partitioned table has no
  global unique index on ``waybill_no`` (a unique key must contain the partition key);
* a monthly KPI (count, revenue, on-time share of one month), median of 5;
* removing the oldest month: ``DELETE`` + ``VACUUM`` against ``DETACH`` + ``DROP``;
* connecting: a new connection per request against a pooled one (why PgBouncer).

The database and the CSV file are dropped at the end. The dev server runs with
``fsync=off`` and ``synchronous_commit=off``: load rates are upper bounds for a production
server with durable commits (the comparison between the two tables is the figure).

    python benchmarks/scale_partitioning.py --rows 1000000 3000000 10000000 30000000
    python benchmarks/scale_partitioning.py --rows 1000000 3000000 --part-first
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import summary_ms

SERVER = "host=127.0.0.1 port=55432 user=postgres"
YEAR_START = "2026-01-01"
MONTHS = 12

COLUMNS = """
    id bigint NOT NULL,
    waybill_no varchar(40) NOT NULL,
    customer_id bigint NOT NULL,
    service_type varchar(16),
    status varchar(20) NOT NULL,
    receiver_phone_bidx varchar(32),
    origin_city varchar(30),
    dest_city varchar(30),
    weight_g integer,
    fee_fen bigint NOT NULL,
    created_at timestamptz NOT NULL,
    promised_at timestamptz,
    delivered_at timestamptz
"""


def uptime() -> str:
    """The machine's load averages, printed beside every figure."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def connect(dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(f"{SERVER} dbname={dbname}", autocommit=True)


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """Customers, the plain shipment table and the monthly partitioned one."""
    conn.execute("CREATE TABLE customer (id bigint PRIMARY KEY, name text, created_at timestamptz)")
    conn.execute(f"CREATE TABLE shipment_plain ({COLUMNS}, PRIMARY KEY (id))")
    conn.execute("ALTER TABLE shipment_plain ADD CONSTRAINT uq_plain_waybill UNIQUE (waybill_no)")
    conn.execute(
        f"CREATE TABLE shipment_part ({COLUMNS}, PRIMARY KEY (id, created_at))"
        " PARTITION BY RANGE (created_at)"
    )
    # A unique key on a partitioned table must contain the partition key: waybill numbers
    # are unique per (waybill_no, created_at) only; see docs/scaling.md for the consequence.
    conn.execute(
        "ALTER TABLE shipment_part ADD CONSTRAINT uq_part_waybill UNIQUE (waybill_no, created_at)"
    )
    for m in range(MONTHS + 1):  # one month ahead, as the monthly job keeps it
        conn.execute(
            f"CREATE TABLE shipment_part_m{m:02d} PARTITION OF shipment_part FOR VALUES FROM"
            f" (timestamptz '{YEAR_START}' + interval '{m} month')"
            f" TO (timestamptz '{YEAR_START}' + interval '{m + 1} month')"
        )
    for table in ("shipment_plain", "shipment_part"):
        conn.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_customer FOREIGN KEY (customer_id)"
            " REFERENCES customer (id)"
        )
        conn.execute(
            f"CREATE INDEX ix_{table}_customer_created ON {table} (customer_id, created_at)"
        )
        conn.execute(f"CREATE INDEX ix_{table}_created ON {table} (created_at)")
        conn.execute(f"CREATE INDEX ix_{table}_bidx ON {table} (receiver_phone_bidx)")


def write_csv(conn: psycopg.Connection[Any], path: str, rows: int, customers: int) -> float:
    """The year's shipments in time order, written by the server; returns seconds."""
    started = time.perf_counter()
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        f"""COPY (
          SELECT i, 'SF' || lpad(i::text, 12, '0'), 1 + floor(random() * {customers})::bigint,
                 (ARRAY['标准快递','特快','经济'])[1 + floor(random() * 3)::int],
                 (ARRAY['delivered','delivered','delivered','in_transit','created'])
                   [1 + floor(random() * 5)::int],
                 md5(i::text),
                 (ARRAY['杭州市','深圳市','上海市','北京市','成都市'])[1 + floor(random() * 5)::int],
                 (ARRAY['杭州市','深圳市','上海市','北京市','武汉市'])[1 + floor(random() * 5)::int],
                 100 + floor(random() * 30000)::int, 800 + floor(random() * 4200)::bigint,
                 ts, ts + interval '3 days', ts + (random() * 4) * interval '1 day'
          FROM (SELECT i, timestamptz '{YEAR_START}'
                          + (i - 1)::float8 / {rows} * interval '365 days' AS ts
                FROM generate_series(1, {rows}) AS i) g
        ) TO '{path}' WITH (FORMAT csv)"""
    )
    return time.perf_counter() - started


def load_customers(conn: psycopg.Connection[Any], customers: int) -> None:
    conn.execute(
        "INSERT INTO customer SELECT i, '客户' || i, timestamptz '2025-01-01'"
        f" FROM generate_series(1, {customers}) AS i"
    )
    conn.execute("VACUUM ANALYZE customer")


def sizes(conn: psycopg.Connection[Any], table: str) -> tuple[int, int]:
    """Heap and index bytes of a table, summed over its partitions."""
    # pg_partition_tree lists nothing for a table that is not partitioned
    row = conn.execute(
        "SELECT coalesce(sum(pg_table_size(relid)), pg_table_size(%s::regclass)),"
        " coalesce(sum(pg_indexes_size(relid)), pg_indexes_size(%s::regclass))"
        " FROM pg_partition_tree(%s::regclass)",
        (table, table, table),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def timed(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> float:
    started = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return time.perf_counter() - started


def run_size(rows: int, customers: int, csv_dir: Path, keep: bool, part_first: bool) -> None:
    dbname = f"scale_part_{rows}"
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {dbname}")
        admin.execute(f"CREATE DATABASE {dbname}")
    path = str(csv_dir / f"scale_shipments_{rows}.csv")
    conn = connect(dbname)
    try:
        print(f"\n== {rows:,} shipments, {customers:,} customers — {uptime()}")
        create_schema(conn)
        load_customers(conn, customers)
        gen = write_csv(conn, path, rows, customers)
        print(f"csv written by the server in {gen:.1f}s ({os.path.getsize(path) / 1e9:.2f} GB)")
        rnd = random.Random(7)
        picks = [rnd.randint(1, customers) for _ in range(300)]
        waybills = [f"SF{rnd.randint(1, rows):012d}" for _ in range(300)]
        # One table at a time: load, measure, remove the oldest month, drop — the disk holds
        # the CSV file and one table, and each table gets the same warm OS cache.
        order = (
            ("shipment_part", "shipment_plain")
            if part_first
            else ("shipment_plain", "shipment_part")
        )
        for table in order:
            measure_table(conn, table, path, rows, picks, waybills)
            conn.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
        if os.path.exists(path):
            os.remove(path)
        if not keep:
            with connect("postgres") as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {dbname}")


def measure_table(
    conn: psycopg.Connection[Any],
    table: str,
    path: str,
    rows: int,
    picks: list[int],
    waybills: list[str],
) -> None:
    """Load one table from the CSV file and print its figures."""
    conn.execute("CHECKPOINT")
    started = time.perf_counter()
    conn.execute(f"COPY {table} FROM '{path}' WITH (FORMAT csv)")
    seconds = time.perf_counter() - started
    conn.execute(f"VACUUM ANALYZE {table}")
    heap, index = sizes(conn, table)
    print(
        f"COPY {table:15s} {seconds:7.1f}s {rows / seconds:10,.0f} rows/s"
        f"  heap {heap / 1e9:6.2f} GB  indexes {index / 1e9:6.2f} GB — {uptime()}"
    )
    # warm-up: the first pass reads the index pages from the OS cache
    for cid in picks[:50]:
        timed(conn, _last_shipments(table), (cid,))
    c360 = summary_ms([timed(conn, _last_shipments(table), (cid,)) for cid in picks[50:]])
    wb = summary_ms(
        [timed(conn, f"SELECT id FROM {table} WHERE waybill_no = %s", (w,)) for w in waybills]
    )
    march = (f"{YEAR_START[:4]}-03-01", f"{YEAR_START[:4]}-04-01")
    kpi_sql = (
        "SELECT count(*), sum(fee_fen), avg((delivered_at <= promised_at)::int)"
        f" FROM {table} WHERE created_at >= %s AND created_at < %s"
    )
    timed(conn, kpi_sql, march)
    kpi = statistics.median([timed(conn, kpi_sql, march) for _ in range(5)])
    year_sql = (
        f"SELECT date_trunc('month', created_at AT TIME ZONE 'UTC') m, count(*),"
        f" sum(fee_fen) FROM {table} GROUP BY 1"
    )
    year = statistics.median([timed(conn, year_sql) for _ in range(3)])
    plan = conn.execute(f"EXPLAIN {kpi_sql}", march).fetchall()
    scans = [r[0].strip().lstrip("-> ") for r in plan if "Scan" in r[0]]
    print(
        f"{table:15s} 360 p50 {c360['p50']:.2f} ms p95 {c360['p95']:.2f} ms | waybill p50"
        f" {wb['p50']:.2f} ms p95 {wb['p95']:.2f} ms | March KPI median {kpi * 1000:.0f} ms"
        f" ({scans[0].split('  ')[0] if scans else '?'}) | year by month {year * 1000:.0f} ms"
    )
    # Removing the oldest month (retention): DELETE on the plain table (with the VACUUM that
    # makes the space reusable) against DETACH + DROP of the month's partition.
    started = time.perf_counter()
    if table == "shipment_part":
        conn.execute("ALTER TABLE shipment_part DETACH PARTITION shipment_part_m00")
        conn.execute("DROP TABLE shipment_part_m00")
        print(
            f"{table:15s} oldest month: DETACH + DROP {(time.perf_counter() - started) * 1000:.0f} ms"
        )
    else:
        deleted = conn.execute(
            f"DELETE FROM {table} WHERE created_at < %s::timestamptz + interval '1 month'",
            (YEAR_START,),
        ).rowcount
        delete_s = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(f"VACUUM {table}")
        print(
            f"{table:15s} oldest month ({deleted:,} rows): DELETE {delete_s:.1f}s"
            f" + VACUUM {time.perf_counter() - started:.1f}s"
        )
    print(f"   ({uptime()})")


def _last_shipments(table: str) -> str:
    return (
        f"SELECT id, waybill_no, status, created_at FROM {table}"
        " WHERE customer_id = %s ORDER BY created_at DESC LIMIT 20"
    )


def connection_cost(samples: int = 200) -> None:
    """A new connection per request against a pooled one: the case for PgBouncer."""
    fresh = []
    for _ in range(samples):
        started = time.perf_counter()
        with connect("postgres") as c:
            c.execute("SELECT 1").fetchall()
        fresh.append(time.perf_counter() - started)
    with connect("postgres") as c:
        pooled = [timed(c, "SELECT 1") for _ in range(samples)]
    f, p = summary_ms(fresh), summary_ms(pooled)
    print(
        f"\nSELECT 1 on a new connection p50 {f['p50']:.2f} ms p95 {f['p95']:.2f} ms vs on an"
        f" open one (baseline) p50 {p['p50']:.3f} ms p95 {p['p95']:.3f} ms — {uptime()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--csv-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    parser.add_argument(
        "--part-first", action="store_true", help="load the partitioned table first (order bias)"
    )
    args = parser.parse_args()
    connection_cost()
    for rows in args.rows:
        run_size(rows, args.customers, args.csv_dir, args.keep, args.part_first)


if __name__ == "__main__":
    main()
