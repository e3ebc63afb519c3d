"""``guanxi backup`` on a demo database, beside the bare copy it wraps, in the same run.

    python benchmarks/backup.py                                   # 20,000 customers, SQLite
    python benchmarks/backup.py --customers 100000 --repeat 3
    python benchmarks/backup.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/postgres

The demo generator fills the database once per size (SQLite under /tmp; on PostgreSQL a
database ``guanxi_bench_backup_<size>`` created on the server of ``--pg`` and kept for the
next run). Timed, median of ``--repeat`` runs:

* **create**: ``backup.service.create_backup`` — the consistent copy, the row count of every
  table in the copy's snapshot, the checksums, the manifest and the audit entry;
* **bare**: the copy alone — SQLite's online backup API into a file; ``pg_dump -Fc`` on
  PostgreSQL — what any backup costs at least;
* **verify**: checksums and the trial restore into a scratch database with counts and the
  whole audit chain walked;
* **restore**: into a fresh, empty database and data directory, with the checks.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))  # on this checkout's code
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from benchmarks._common import bench_settings, ensure_demo_db
from guanxi import domains
from guanxi.backup.service import (
    _pg_connection,
    _pg_tool,
    create_backup,
    restore_backup,
    verify_backup,
)
from guanxi.config import Settings
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto


def _pg_database(base: str, customers: int, settings: Settings) -> Settings:
    """A demo database of ``customers`` on the server of ``base`` (built once)."""
    name = f"guanxi_bench_backup_{customers}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    pg = settings.model_copy(update={"database_url": url})
    engine = make_engine(url)
    with engine.connect() as conn:
        ready = inspect(conn).has_table("customer") and bool(
            conn.scalar(text("SELECT count(*) FROM customer"))
        )
    if not ready:
        from guanxi.demo.accounts import ensure_demo_users
        from guanxi.demo.generator import generate

        upgrade(engine)
        with make_sessionmaker(engine)() as session:
            owners = ensure_demo_users(session)
        generate(engine, customers=customers, seed=42, owner_ids=owners)
    engine.dispose()
    return pg


def _bare(settings: Settings, out: Path) -> None:
    url = settings.database_url
    if url.startswith("sqlite"):
        src = sqlite3.connect(make_url(url).database or "")
        dst = sqlite3.connect(out / "bare.sqlite3")
        src.backup(dst, pages=-1)
        dst.close()
        src.close()
        return
    args, env = _pg_connection(url)
    subprocess.run(  # noqa: S603 - our own command line
        [_pg_tool("pg_dump"), "--format=custom", f"--file={out / 'bare.pgdump'}", *args],
        env=env,
        check=True,
    )


def _fresh_target(settings: Settings, work: Path) -> tuple[str, str | None]:
    """(URL of an empty database, name of a PostgreSQL database to drop afterwards)."""
    if settings.is_sqlite:
        return f"sqlite:///{work / 'restored.db'}", None
    name = f"guanxi_bench_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    url = make_url(settings.database_url).set(database=name)
    return url.render_as_string(hide_password=False), name


def _drop(settings: Settings, name: str | None) -> None:
    if name is None:
        return
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    """Build once, then time create, the bare copy, verify and restore."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL")
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"guanxi-backup-bench-{args.customers}.db"
    settings = ensure_demo_db(path, args.customers) if not args.pg else bench_settings(path)
    domains.load()
    crypto.configure(settings)
    if args.pg:
        settings = _pg_database(args.pg, args.customers, settings)

    figures: dict[str, list[float]] = {"create": [], "bare": [], "verify": [], "restore": []}
    rows = size = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="guanxi-bench-backup-") as tmp:
            work = Path(tmp)
            started = time.perf_counter()
            result = create_backup(settings, to=work / "backups")
            figures["create"].append(time.perf_counter() - started)
            rows = sum(result.manifest.tables.values())
            size = (result.path / result.manifest.database_file).stat().st_size
            started = time.perf_counter()
            _bare(settings, work)
            figures["bare"].append(time.perf_counter() - started)
            started = time.perf_counter()
            check = verify_backup(result.path, settings)
            figures["verify"].append(time.perf_counter() - started)
            assert check.ok, check.problems  # noqa: S101
            target, name = _fresh_target(settings, work)
            try:
                started = time.perf_counter()
                report = restore_backup(
                    result.path, settings, target_url=target, data_dir=work / "restored"
                )
                figures["restore"].append(time.perf_counter() - started)
                assert report.ok, report.problems  # noqa: S101
            finally:
                _drop(settings, name)
            shutil.rmtree(work / "backups", ignore_errors=True)
    median = {k: statistics.median(v) for k, v in figures.items()}
    dialect = "postgresql" if args.pg else "sqlite"
    print(  # noqa: T201
        f"{dialect}: {args.customers:,} customers, {rows:,} rows, copy {size / 1e6:.0f} MB: "
        f"create {median['create']:.2f}s (bare copy {median['bare']:.2f}s), "
        f"verify {median['verify']:.2f}s, restore {median['restore']:.2f}s "
        f"(median of {args.repeat})"
    )


if __name__ == "__main__":
    main()
