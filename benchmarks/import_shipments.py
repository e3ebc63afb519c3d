"""CSV import of shipments: ``guanxi import shipments`` end to end (reading, cleaning,
validation with the API's rules, receiver phone encryption, customer lookup by customer
number, first status event, batch transactions) beside a bare ``executemany`` of the same
number of prepared rows into the same indexed ``shipment`` table, in the same run. Each
import runs in a child process so its peak memory is its own; ``--double`` repeats the run
with a file twice as large to show the peak does not grow with the file.

Targets (issue #3): 10,000,000 shipments >= 150,000 rows/s; peak memory <= 1 GB, and the
same peak for a file twice as large.

    python benchmarks/import_shipments.py --rows 1000000 --double
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.core.db import make_engine
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

CUSTOMERS = 5_000
CITIES = [("浙江省", "杭州市"), ("广东省", "深圳市"), ("上海市", "上海市"), ("北京市", "北京市")]


def write_file(path: Path, rows: int, seed: int = 11) -> None:
    """A carrier's daily export: waybill, customer number, service, receiver, route, money."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["运单号", "客户编号", "服务类型", "收件人", "收件电话", "始发省", "始发城市",
             "目的省", "目的城市", "重量", "运费", "揽收时间"]
        )  # fmt: skip
        for i in range(rows):
            o, d = rnd.choice(CITIES), rnd.choice(CITIES)
            out.writerow(
                [
                    f"SF{i:012d}",
                    f"C{rnd.randrange(CUSTOMERS):06d}",
                    rnd.choice(["标准快递", "特快", "经济"]),
                    "收件人",
                    f"13{rnd.randint(0, 9)}{rnd.randint(0, 99999999):08d}",
                    o[0],
                    o[1],
                    d[0],
                    d[1],
                    f"{rnd.randint(1, 300) / 10:.1f}",
                    f"{rnd.randint(800, 5000) / 100:.2f}",
                    f"2026-11-{rnd.randint(1, 20):02d} {rnd.randint(8, 20):02d}:{rnd.randint(0, 59):02d}",
                ]
            )


def seed_customers(db: Path) -> None:
    """The customers the file refers to, by customer number."""
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO customer (kind, name, external_id, source, lifecycle_stage, status,"
            " created_at, updated_at, version) VALUES ('enterprise', ?, ?, 'ecommerce', 'active',"
            " 'active', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 1)",
            [(f"客户{i}", f"C{i:06d}") for i in range(CUSTOMERS)],
        )
    conn.close()


def child(db: Path, data: Path) -> None:
    """Run the import in this (child) process and print its figures as JSON."""
    from guanxi.audit.service import Actor
    from guanxi.core.db import make_sessionmaker
    from guanxi.imports.enums import ImportKind
    from guanxi.imports.service import run_import

    domains.load()
    settings = bench_settings(db)
    crypto.configure(settings)
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)  # as the CLI does
    session = make_sessionmaker(engine)()
    started = time.perf_counter()
    report = run_import(session, kind=ImportKind.shipments, path=data, actor=Actor.system("bench"))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "imported": report.imported,
                "rejected": report.rejected,
                "seconds": seconds,
                "peak_mb": peak,
            }
        )
    )


def bare_insert(db: Path, rows: int) -> float:
    """executemany of as many prepared shipment rows into the indexed table."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    batch = 2000
    for lo in range(0, rows, batch):
        with conn:
            conn.executemany(
                "INSERT INTO shipment (waybill_no, kind, customer_id, service_type, status,"
                " receiver_name, origin_province, origin_city, dest_province, dest_city,"
                " weight_g, fee_fen, insured_value_fen, cod_amount_fen, door_delivery,"
                " signed_receipt_return, is_damaged, is_lost, created_at) VALUES"
                " (?, 'waybill', ?, 'standard', 'created', '收件人', '浙江省', '杭州市', '广东省',"
                " '深圳市', 1200, 1500, 0, 0, 0, 0, 0, 0, '2026-11-01 10:00:00.000000')",
                [(f"SF{i:012d}", 1 + i % CUSTOMERS) for i in range(lo, min(rows, lo + batch))],
            )
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def fresh_db(directory: Path, name: str) -> Path:
    path = directory / name
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def measure(work: Path, rows: int) -> dict[str, float]:
    data = work / f"shipments-{rows}.csv"
    write_file(data, rows)
    db = fresh_db(work, f"import-{rows}.db")
    seed_customers(db)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(db), str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["imported"] != rows or figures["rejected"]:
        raise SystemExit(f"import incomplete: {figures}")
    figures["bare"] = bare_insert(fresh_db(work, f"bare-{rows}.db"), rows)
    data.unlink()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--double", action="store_true", help="repeat with twice the rows")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    domains.load()
    sizes = [args.rows, 2 * args.rows] if args.double else [args.rows]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        for rows in sizes:
            f = measure(Path(tmp), rows)
            rate = rows / f["seconds"]
            print(f"rows: {rows:,} (CSV, UTF-8)")
            print(
                f"  guanxi import    {f['seconds']:8.1f} s {rate:>10,.0f} rows/s  peak {f['peak_mb']:,.0f} MB"
            )
            print(f"  bare executemany {f['bare']:8.1f} s {rows / f['bare']:>10,.0f} rows/s")
            print(
                f"  rate target >= 150,000 rows/s: {'MET' if rate >= 150_000 else 'NOT MET'}; "
                f"peak target <= 1,024 MB: {'MET' if f['peak_mb'] <= 1024 else 'NOT MET'}"
            )


if __name__ == "__main__":
    main()
