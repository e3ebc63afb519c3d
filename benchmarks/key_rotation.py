"""Online key rotation (issue #8): every encrypted value of a demo database re-encrypted
with a new field key by ``guanxi.security.keys.rotate`` (what ``guanxi keys rotate`` runs)
while a client keeps calling the customer 360 API of a running server, whose p95 during
the rotation is printed beside its p95 just before (the same run's baseline).

The server already runs on the new key set (the operator's rolling restart: new writes
use the new key, old values still decrypt). The client is a separate process calling
``GET /api/v1/customers/{random id}`` one request after another on a kept-alive
connection; the rotation runs in this process with the CLI's engine. Afterwards every
column is counted by key id: nothing may remain under the old key.

SQLite: the demo database ``/tmp/guanxi-bench-<N>.db`` (made once by benchmarks/_common.py
if missing; ``--db`` to name another) is copied with SQLite's backup API, never modified,
and the copy is upgraded to the current schema before the clock starts. PostgreSQL
(``--pg`` URL of a server): a source database of N demo customers is generated once and
kept (``guanxi_bench_rot_<N>``, its keys in /tmp), each run works on a copy made from it as
a template. Target: 1,000,000 customers rotated in <= 5 minutes with the API answering.

    python benchmarks/key_rotation.py --customers 2000                 # smoke run
    python benchmarks/key_rotation.py --customers 100000               # SQLite, 100k
    python benchmarks/key_rotation.py --customers 1000000 --db /tmp/guanxi-bench-1000000.db
    python benchmarks/key_rotation.py --customers 1000000 \\
        --pg postgresql+psycopg://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))
from benchmarks._common import ensure_demo_db, summary_ms  # noqa: E402
from guanxi import domains  # noqa: E402
from guanxi.audit.service import Actor  # noqa: E402
from guanxi.core.db import make_engine, make_sessionmaker  # noqa: E402
from guanxi.core.migrate import upgrade  # noqa: E402
from guanxi.security.crypto import FieldCipher  # noqa: E402

NEW_KID = "rot2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_copy(source: Path, customers: int, work_dir: Path) -> tuple[str, dict[str, Any]]:
    """A copy of the demo database (made once if missing) and its key file's keys."""
    settings = ensure_demo_db(source, customers)
    keys = json.loads((settings.data_dir / "dev-keys.json").read_text())
    work = work_dir / f"guanxi-bench-rotation-{uuid.uuid4().hex[:8]}.db"
    started = time.perf_counter()
    # Read-only on the source; the backup API copies a consistent snapshot.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(work)
    src.backup(dst)
    src.close()
    dst.close()
    print(f"copied {source} in {time.perf_counter() - started:.0f}s")
    return f"sqlite:///{work}", keys


def pg_copy(base: str, customers: int) -> tuple[str, dict[str, Any], Any]:
    """A working copy of the kept PostgreSQL source of ``customers`` demo customers (made
    once), its keys, and the function that drops the copy."""
    source = f"guanxi_bench_rot_{customers}"
    key_file = Path(f"/tmp/{source}-keys.json")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": source})
    if not exists or not key_file.exists():
        keys = {
            "field_keys": {"dev1": base64.b64encode(secrets.token_bytes(32)).decode()},
            "active_field_key": "dev1",
            "blind_index_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)'))
            conn.execute(text(f"CREATE DATABASE \"{source}\" ENCODING 'UTF8' TEMPLATE template0"))
        url = make_url(base).set(database=source).render_as_string(hide_password=False)
        _generate(url, customers, keys)
        key_file.write_text(json.dumps(keys))
    keys = json.loads(key_file.read_text())
    work = f"guanxi_bench_rot_work_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{work}" TEMPLATE "{source}"'))
    print(f"copied {source} in {time.perf_counter() - started:.0f}s")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{work}" WITH (FORCE)'))
        admin.dispose()

    return make_url(base).set(database=work).render_as_string(hide_password=False), keys, drop


def _generate(url: str, customers: int, keys: dict[str, Any]) -> None:
    from guanxi.config import Environment, Settings
    from guanxi.core.db import align_sequences
    from guanxi.demo.accounts import ensure_demo_users
    from guanxi.demo.generator import generate
    from guanxi.security import crypto

    crypto.configure(Settings(env=Environment.development, database_url=url, **keys))
    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
    started = time.perf_counter()
    summary = generate(engine, customers=customers, owner_ids=owners)
    with make_sessionmaker(engine)() as session:
        align_sequences(session)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(
        f"generated {summary.customers:,} customers, {summary.shipments:,} shipments "
        f"in {time.perf_counter() - started:.0f}s"
    )


def client(port: int, token: str, max_id: int, stop: Any, out: str) -> None:
    """Call the 360 API one request after another until ``stop``; write (wall time,
    seconds, status) per request to ``out``."""
    import random

    rng = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    while not stop.is_set():
        path = f"/api/v1/customers/{rng.randint(1, max_id)}"
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        samples.append((time.time(), time.perf_counter() - started, status))
    Path(out).write_text(json.dumps(samples))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite source (copied)")
    parser.add_argument("--pg", help="PostgreSQL server URL (source kept, copy dropped)")
    parser.add_argument("--batch", type=int, default=2000, help="values per transaction")
    parser.add_argument(
        "--workers", type=int, default=None, help="rotation workers (default: 2 on PG, 1 SQLite)"
    )
    parser.add_argument("--baseline", type=int, default=15, help="seconds of API before")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    domains.load()
    from guanxi.customers.models import Customer
    from guanxi.security import keys as rotation
    from guanxi.security.models import User
    from guanxi.security.service import issue_token

    drop = None
    if args.pg:
        url, stored_keys, drop = pg_copy(args.pg, args.customers)
        where = f"PostgreSQL copy of guanxi_bench_rot_{args.customers}"
    else:
        source = args.db or Path(f"/tmp/guanxi-bench-{args.customers}.db")
        url, stored_keys = sqlite_copy(source, args.customers, args.work_dir)
        where = f"SQLite copy of {source}"
    old_kid = stored_keys["active_field_key"]
    field_keys = {
        **stored_keys["field_keys"],
        NEW_KID: base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    blind = stored_keys["blind_index_key"]
    new_cipher = FieldCipher(
        {k: base64.b64decode(v) for k, v in field_keys.items()}, NEW_KID, base64.b64decode(blind)
    )
    engine = make_engine(url, sqlite_mmap_bytes=0)
    # As ``guanxi keys rotate`` chooses.
    workers = args.workers or (2 if engine.dialect.name == "postgresql" else 1)
    server = None
    try:
        started = time.perf_counter()
        upgrade(engine)
        print(f"schema upgraded in {time.perf_counter() - started:.0f}s")
        with make_sessionmaker(engine)() as session:
            agent = session.scalar(select(User).where(User.username == "agent"))
            assert agent is not None
            token, _ = issue_token(session, user=agent, kind="api", hours=4)
            max_id = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
        port = free_port()
        env = {
            **os.environ,
            "GUANXI_ENV": "development",
            "GUANXI_DATABASE_URL": url,
            "GUANXI_DATA_DIR": str(args.work_dir / "guanxi-bench-rotation-data"),
            "GUANXI_FIELD_KEYS": json.dumps(field_keys),
            "GUANXI_ACTIVE_FIELD_KEY": NEW_KID,
            "GUANXI_BLIND_INDEX_KEY": blind,
        }
        # The server's log to a file: a pipe nobody reads would fill and stall it.
        server_log = (args.work_dir / f"guanxi-bench-rotation-{port}.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "guanxi.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"server did not start: see {server_log.name}")
        stop = mp.Event()
        out = str(args.work_dir / f"guanxi-bench-rotation-{port}.json")
        proc = mp.Process(target=client, args=(port, token, max_id or 1, stop, out))
        proc.start()
        time.sleep(args.baseline)
        rot_start = time.time()
        with make_sessionmaker(engine)() as session:
            result = rotation.rotate(
                session,
                actor=Actor.system("bench"),
                field_cipher=new_cipher,
                batch=args.batch,
                workers=workers,
            )
        rot_end = time.time()
        stop.set()
        proc.join(timeout=60)
        Path(server_log.name).unlink()  # kept only when the server failed to start
        samples = json.loads(Path(out).read_text())
        os.unlink(out)
        with make_sessionmaker(engine)() as session:
            statuses = rotation.key_status(session)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()
        engine.dispose()
        shutil.rmtree(args.work_dir / "guanxi-bench-rotation-data", ignore_errors=True)
        if drop is not None:
            drop()
        elif url.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    before = [s for s in samples if s[0] < rot_start]
    during = [s for s in samples if rot_start <= s[0] <= rot_end]
    retired = rotation.retired_values(statuses, NEW_KID)
    load = os.getloadavg()
    print(
        f"database: {where}; {max_id or 0:,} customers; batch {args.batch:,}; "
        f"{workers} worker{'s' if workers > 1 else ''}"
    )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    print(f"  {'column':<34}{'values':>12}{'seconds':>9}{'values/s':>10}")
    for name, n in sorted(result.rotated.items(), key=lambda kv: -kv[1]):
        secs = result.column_seconds.get(name, 0.0)
        print(f"  {name:<34}{n:>12,}{secs:>9.1f}{(n / secs if secs else 0):>10,.0f}")
    personal = sum(v for k, v in result.column_seconds.items() if not k.startswith("shipment."))
    print(f"  customers' own columns (all but the shipments' receiver phones): {personal:.1f}s")
    rate = result.total / result.seconds if result.seconds else 0.0
    print(
        f"rotation: {result.total:,} values from key {old_kid} to {NEW_KID} in "
        f"{result.seconds:.1f}s = {rate:,.0f} values/s ({result.batches:,} transactions); "
        f"left under other keys: {retired:,}"
    )
    print(f"{'360 API':<22}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for label, rows in (("before rotation", before), ("during rotation", during)):
        errors = sum(1 for s in rows if s[2] != 200)
        lat = summary_ms([s[1] for s in rows]) if rows else {"p50": 0, "p95": 0, "max": 0}
        print(
            f"{label:<22}{len(rows):>9}{errors:>8}{lat['p50']:>9.1f}{lat['p95']:>9.1f}"
            f"{lat['max']:>9.1f}"
        )
    if before and during:
        ratio = (
            summary_ms([s[1] for s in during])["p95"] / summary_ms([s[1] for s in before])["p95"]
        )
        print(f"p95 during / before: {ratio:.2f}x")
    verdict = "met" if result.seconds <= 300 else "MISSED"
    print(f"target (1,000,000 customers <= 300 s): {result.seconds:.0f}s here, {verdict}")
    errors = sum(1 for s in during + before if s[2] != 200)
    return 0 if retired == 0 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
