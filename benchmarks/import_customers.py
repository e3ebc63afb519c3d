"""CSV import of customers: ``guanxi import``'s service end to end (reading, cleaning,
validation with the API's rules, encryption, blind indexes, address parsing, search tokens,
batch transactions) beside a bare ``executemany`` of the same rows, already prepared, into
the same indexed ``customer`` table of a fresh database, in the same run.

Targets (issue #3): >= 50,000 rows/s and >= 30 % of the bare insert's speed; an XLSX file
of 200,000 rows >= 50,000 rows/s (``--format xlsx``); on PostgreSQL >= 50 % of the speed of
``COPY`` of the same prepared rows into the same table (``--pg URL``: a fresh database is
created on that server for each side).

    python benchmarks/import_customers.py --rows 200000
    python benchmarks/import_customers.py --rows 200000 --format xlsx
    python benchmarks/import_customers.py --rows 200000 --pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.audit.service import Actor
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.imports.enums import ImportKind
from guanxi.imports.service import run_import
from guanxi.security import crypto

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
# Number blocks in service (phonenumbers knows which are allocated).
MOBILE_PREFIXES = "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158 159 180 181 182 183 185 186 187 188 189 199".split()
PLACES = [
    "浙江省杭州市临平区南苑街道",
    "北京市朝阳区建国路",
    "广东省深圳市南山区科技园",
    "上海市浦东新区世纪大道",
]


def write_file(path: Path, rows: int, seed: int = 7) -> None:
    """A realistic customer file: number, name, mobile, address, source, birthday, tags."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["客户编号", "客户名称", "手机", "地址", "来源渠道", "生日", "标签"])
        for i in range(rows):
            name = rnd.choice(SURNAMES) + "".join(
                rnd.choice(GIVEN) for _ in range(rnd.randint(1, 2))
            )
            out.writerow(
                [
                    f"B{i:08d}",
                    name,
                    rnd.choice(MOBILE_PREFIXES) + f"{rnd.randint(0, 99999999):08d}",
                    rnd.choice(PLACES) + f"{rnd.randint(1, 999)}号",
                    rnd.choice(["微信", "网点", "电商", "推荐"]),
                    f"{rnd.randint(1950, 2005)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                    rnd.choice(["", "VIP", "月结"]),
                ]
            )


def bare_insert(db_path: Path, rows: int) -> float:
    """executemany of the same number of already-prepared rows into the indexed table."""
    rnd = random.Random(7)
    prepared = [
        (
            "individual",
            f"客户{i}",
            f"B{i:08d}",
            "wechat",
            "new",
            "active",
            "2026-11-25 00:00:00.000000",
            "2026-11-25 00:00:00.000000",
            1,
            f"{rnd.getrandbits(128):032x}",
        )
        for i in range(rows)
    ]
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    for start in range(0, rows, 2000):
        with conn:
            conn.executemany(
                "INSERT INTO customer (kind, name, external_id, source, lifecycle_stage, status,"
                " created_at, updated_at, version, email_bidx) VALUES (?,?,?,?,?,?,?,?,?,?)",
                prepared[start : start + 2000],
            )
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def to_xlsx(csv_path: Path, xlsx_path: Path) -> None:
    """The same rows as a spreadsheet (what an office exports from Excel / WPS)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(xlsx_path), {"constant_memory": True})
    sheet = book.add_worksheet("客户")
    with csv_path.open(encoding="utf-8", newline="") as fh:
        for r, row in enumerate(csv.reader(fh)):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
    book.close()


def _prepared(rows: int) -> list[tuple[object, ...]]:
    rnd = random.Random(7)
    return [
        (
            "individual",
            f"客户{i}",
            f"B{i:08d}",
            "wechat",
            "new",
            "active",
            "2026-11-25 00:00:00+00",
            "2026-11-25 00:00:00+00",
            1,
            f"{rnd.getrandbits(128):032x}",
        )
        for i in range(rows)
    ]


def pg_database(base_url: str, name: str) -> str:
    """A fresh migrated PostgreSQL database on the server of ``base_url``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def pg_copy(url: str, rows: int) -> float:
    """COPY of the same number of prepared rows into the indexed customer table."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    prepared = _prepared(rows)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database
    ) as conn:
        started = time.perf_counter()
        for start in range(0, rows, 2000):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY customer (kind, name, external_id, source, lifecycle_stage, status,"
                    " created_at, updated_at, version, email_bidx) FROM STDIN"
                ) as copy,
            ):
                for row in prepared[start : start + 2000]:
                    copy.write_row(row)
            conn.commit()
        return time.perf_counter() - started


def fresh_db(directory: Path, name: str) -> Path:
    path = directory / name
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--pg", help="a PostgreSQL server URL: import there, beside COPY")
    args = parser.parse_args()
    domains.load()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        work = Path(tmp)
        data = work / "customers.csv"
        write_file(data, args.rows)
        if args.format == "xlsx":
            xlsx = work / "customers.xlsx"
            to_xlsx(data, xlsx)
            data = xlsx
        settings = bench_settings(work / "keys.db")
        crypto.configure(settings)
        if args.pg:
            url = pg_database(args.pg, "guanxi_bench_import")
        else:
            url = f"sqlite:///{fresh_db(work, 'import.db')}"
        engine = make_engine(url, sqlite_mmap_bytes=0)  # as the CLI does
        session = make_sessionmaker(engine)()
        started = time.perf_counter()
        report = run_import(
            session, kind=ImportKind.customers, path=data, actor=Actor.system("bench")
        )
        ours = time.perf_counter() - started
        session.close()
        engine.dispose()
        if report.imported != args.rows or report.rejected:
            raise SystemExit(
                f"import incomplete: {report.imported} imported, {report.rejected} rejected, "
                f"first errors {[e.as_dict() for e in report.errors[:3]]}"
            )
        if args.pg:
            bare = pg_copy(pg_database(args.pg, "guanxi_bench_copy"), args.rows)
            baseline = "PostgreSQL COPY"
        else:
            bare = bare_insert(fresh_db(work, "bare.db"), args.rows)
            baseline = "bare executemany"
    rate = args.rows / ours
    ratio = bare / ours
    target_ratio = 0.5 if args.pg else 0.3
    print(f"rows: {args.rows:,} ({args.format.upper()}, {'PostgreSQL' if args.pg else 'SQLite'})")
    print(f"guanxi import      {ours:8.1f} s  {rate:>10,.0f} rows/s")
    print(f"{baseline:<19}{bare:8.1f} s  {args.rows / bare:>10,.0f} rows/s")
    print(
        f"rate {rate:,.0f} rows/s (target >= 50,000: {'MET' if rate >= 50_000 else 'NOT MET'}); "
        f"ratio {ratio:.1%} of {baseline} (target >= {target_ratio:.0%}: "
        f"{'MET' if ratio >= target_ratio else 'NOT MET'})"
    )


if __name__ == "__main__":
    main()
