"""Bounded load test (issue #8): a real ``guanxi serve`` on PostgreSQL, loopback only,
driven by locust headless (as a library) with the service-desk mix of
benchmarks/locustfile.py — searches by name and by mobile, 360 views, ticket updates with
the version the API requires (a 409 is re-read and retried, as a real client does).

Two phases in the same run, on the same server and data: the **baseline** (the same mix
with 1 user) and the **load** (50 users by default). Printed per phase and action: request
count, failures, p50 and p95 (ms); then the errors (any failure, any unexpected answer, any
update given up, any traceback in the server's log) and the lost writes: per ticket, the
updates the clients saw accepted against the versions and workflow events the database
holds (must be 0 and 0).

    python benchmarks/load.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    python benchmarks/load.py --users 10 --seconds 20 --baseline-seconds 5   # a quick look

``--database URL`` uses an existing empty database and keeps it afterwards (the test suite
checks it); otherwise a new database is created on the ``--pg`` server and dropped.
"""

# locust runs on gevent: the standard library is patched before anything else opens a
# socket (locust would do it on import, too late for what is imported before it).
from gevent import monkey  # type: ignore[import-untyped]

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Run as a script from anywhere, on this checkout's code.
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from locust.env import Environment  # noqa: E402

from benchmarks import locustfile  # noqa: E402
from guanxi import domains  # noqa: E402
from guanxi.audit.models import AuditEntry  # noqa: E402
from guanxi.audit.service import Actor, verify  # noqa: E402
from guanxi.config import Environment as GuanxiEnv  # noqa: E402
from guanxi.config import Settings  # noqa: E402
from guanxi.core.db import make_engine, make_sessionmaker  # noqa: E402
from guanxi.core.migrate import upgrade  # noqa: E402
from guanxi.imports.enums import ImportKind  # noqa: E402
from guanxi.imports.service import run_import  # noqa: E402
from guanxi.security import crypto  # noqa: E402
from guanxi.security.schemas import UserCreate  # noqa: E402
from guanxi.security.service import create_user, issue_token  # noqa: E402
from guanxi.tickets.enums import TicketAction  # noqa: E402
from guanxi.tickets.models import Ticket, TicketEvent  # noqa: E402
from guanxi.tickets.schemas import TicketCreate  # noqa: E402
from guanxi.tickets.service import act, create_ticket  # noqa: E402

ACTIONS = ["search: name", "search: phone", "360 view", "ticket: read", "ticket: update"]
UPDATE_ACTIONS = [TicketAction.wait_customer.value, TicketAction.resume.value]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华建国志红玉海燕"


@dataclass
class Seeded:
    """What was put in the database before the server starts."""

    workload: locustfile.Workload
    first_versions: dict[int, int] = field(default_factory=dict)


def _keys() -> dict[str, str]:
    """Fresh secrets for this run (server and seeding): session key, field-encryption
    and blind-index keys."""
    return {
        "GUANXI_SECRET_KEY": secrets.token_urlsafe(32),
        "GUANXI_FIELD_KEYS": json.dumps({"l1": base64.b64encode(os.urandom(32)).decode()}),
        "GUANXI_ACTIVE_FIELD_KEY": "l1",
        "GUANXI_BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def _settings(url: str, data_dir: Path, keys: dict[str, str]) -> Settings:
    return Settings(
        env=GuanxiEnv.test,
        database_url=url,
        data_dir=data_dir,
        secret_key=keys["GUANXI_SECRET_KEY"],
        field_keys=json.loads(keys["GUANXI_FIELD_KEYS"]),
        active_field_key=keys["GUANXI_ACTIVE_FIELD_KEY"],
        blind_index_key=keys["GUANXI_BLIND_INDEX_KEY"],
    )


def seed(url: str, data_dir: Path, keys: dict[str, str], customers: int, tickets: int,
         accounts: int) -> Seeded:  # fmt: skip
    """Migrate; import ``customers`` customers (distinct names and mobiles); create
    ``accounts`` supervisors with an API token each and ``tickets`` tickets in progress."""
    domains.load()
    crypto.configure(_settings(url, data_dir, keys))
    rng = random.Random(2026)
    phones = [f"13{i % 10}{n:08d}" for i, n in enumerate(rng.sample(range(10**8), customers))]
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < customers:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN) + rng.choice(GIVEN)
        if name not in seen:
            seen.add(name)
            names.append(name)
    path = data_dir / "customers.csv"
    data_dir.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["客户编号", "客户名称", "手机", "地址"])
        for i in range(customers):
            out.writerow([f"L{i:07d}", names[i], phones[i], f"浙江省杭州市西湖区文三路{i + 1}号"])
    engine = make_engine(url)
    upgrade(engine)
    bot = Actor.system("load")
    workload = locustfile.Workload(names=names, phones=phones)
    seeded = Seeded(workload)
    with make_sessionmaker(engine)() as session:
        report = run_import(session, kind=ImportKind.customers, path=path, actor=bot)
        assert report.imported == customers, report.as_json()
        from guanxi.customers.models import Customer

        workload.customer_ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        users = []
        for n in range(accounts):
            user = create_user(
                session,
                user_in=UserCreate(
                    username=f"lead{n:02d}",
                    display_name=f"值班主管{n:02d}",
                    role="manager",
                    password=f"load-{uuid.uuid4().hex}",
                ),
                actor=bot,
            )
            secret, _ = issue_token(session, user=user, kind="api", hours=4)
            workload.tokens.append(secret)
            users.append(user)
        for n in range(tickets):
            owner = users[n % len(users)]
            ticket = create_ticket(
                session,
                ticket_in=TicketCreate(
                    type="complaint",
                    channel="hotline",
                    customer_id=workload.customer_ids[n],
                    subject=f"负载测试工单{n}",
                ),
                actor=owner,
            )
            started = act(
                session,
                ticket_id=ticket.id,
                action=TicketAction.start,
                actor=owner,
                version=ticket.version,
            )
            workload.ticket_ids.append(started.id)
            seeded.first_versions[started.id] = started.version
    engine.dispose()
    return seeded


@dataclass
class Server:
    """The ``guanxi serve`` process and its log."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        """The server's log so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, data_dir: Path, keys: dict[str, str], workers: int) -> Server:
    """``guanxi serve`` on 127.0.0.1 (its own session, stopped by :func:`stop_server`)."""
    port = _free_port()
    env = {
        **os.environ,
        **keys,
        "PYTHONPATH": str(ROOT / "src"),
        "GUANXI_ENV": "test",
        "GUANXI_DATABASE_URL": url,
        "GUANXI_DATA_DIR": str(data_dir),
        "GUANXI_LOG_LEVEL": "WARNING",
    }
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "guanxi.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{server.text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise SystemExit("server not ready in 180 s")


def stop_server(server: Server) -> None:
    """SIGTERM to the uvicorn supervisor; SIGKILL to its process group if it hangs."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


def swarm(base: str, users: int, seconds: float) -> dict[str, Any]:
    """Run the mix with ``users`` users for ``seconds``; per action: requests, failures,
    p50 and p95 in ms (locust's figures, timed from the start of the request)."""
    # Users finish the task in hand when the time is up: a request cut off mid-way would
    # be stored by the server but missing from the clients' ledger.
    env = Environment(user_classes=[locustfile.DeskUser], host=base, stop_timeout=120)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=max(users, 1))
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    actions: dict[str, dict[str, float]] = {}
    for name in ACTIONS:
        entry = env.stats.entries.get((name, "GET")) or env.stats.entries.get((name, "POST"))
        if entry is None:
            actions[name] = {"requests": 0, "failures": 0, "p50": 0.0, "p95": 0.0}
            continue
        actions[name] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50": float(entry.get_response_time_percentile(0.5) or 0),
            "p95": float(entry.get_response_time_percentile(0.95) or 0),
        }
    total = env.stats.total
    return {
        "users": users,
        "seconds": seconds,
        "actions": actions,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.num_requests / seconds, 1) if seconds else 0.0,
        "errors": [
            f"{e.method} {e.name}: {e.error} x{e.occurrences}" for e in env.stats.errors.values()
        ],
    }


def lost_writes(url: str, seeded: Seeded, accepted: dict[int, int]) -> dict[str, Any]:
    """Per ticket: updates the clients saw accepted vs. the version moved and the workflow
    events stored; ``lost`` counts accepted updates missing, ``phantom`` stored updates no
    client saw accepted. Also the audit chain."""
    engine = make_engine(url)
    lost = phantom = 0
    per_ticket = {}
    with make_sessionmaker(engine)() as session:
        for tid, first in seeded.first_versions.items():
            ticket = session.get(Ticket, tid)
            assert ticket is not None
            events = (
                session.scalar(
                    select(func.count())
                    .select_from(TicketEvent)
                    .where(TicketEvent.ticket_id == tid, TicketEvent.action.in_(UPDATE_ACTIONS))
                )
                or 0
            )
            moved = ticket.version - first
            seen = accepted.get(tid, 0)
            for stored in (moved, events):
                lost += max(0, seen - stored)
                phantom += max(0, stored - seen)
            per_ticket[tid] = {"accepted": seen, "versions": moved, "events": events}
        entries, problems = verify(session)
        audited = session.scalar(select(func.count()).select_from(AuditEntry))
    engine.dispose()
    return {
        "lost": lost,
        "phantom": phantom,
        "tickets": per_ticket,
        "audit_entries": entries,
        "audit_rows": audited,
        "audit_problems": len(problems),
    }


def _print_phase(label: str, phase: dict[str, Any]) -> None:
    print(
        f"\n{label}: {phase['users']} user(s) x {phase['seconds']:.0f} s, "
        f"{phase['requests']:,} requests ({phase['rps']}/s), {phase['failures']} failures"
    )
    print(f"  {'action':16} {'requests':>9} {'failures':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for name, a in phase["actions"].items():
        print(
            f"  {name:16} {a['requests']:>9,} {a['failures']:>9} {a['p50']:>8.0f} {a['p95']:>8.0f}"
        )


def _new_database(pg: str) -> str:
    name = f"guanxi_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    return make_url(pg).set(database=name).render_as_string(hide_password=False)


def _drop_database(pg: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    """Seed, serve, run the baseline then the load, check; exit 1 on any error or lost write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("GUANXI_TEST_PG_URL"),
        help="PostgreSQL server URL (a database is created and dropped)",
    )
    parser.add_argument("--database", help="an existing empty database to use and keep")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--baseline-users", type=int, default=1)
    parser.add_argument("--baseline-seconds", type=float, default=60)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--tickets", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()  # fmt: skip
    if not args.database and not args.pg:
        parser.error("give --pg (or set GUANXI_TEST_PG_URL) or --database")
    url = args.database or _new_database(args.pg)
    keys = _keys()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="guanxi-load-") as tmp:
        data_dir = Path(tmp)
        try:
            seeded = seed(url, data_dir, keys, args.customers, args.tickets, args.accounts)
            server = start_server(url, data_dir, keys, args.workers)
            accepted: dict[int, int] = {}
            unexpected: list[str] = []
            conflicts = gave_up = 0
            try:
                for label, users, seconds in (
                    ("baseline", args.baseline_users, args.baseline_seconds),
                    ("load", args.users, args.seconds),
                ):
                    if seconds <= 0:
                        continue
                    locustfile.configure(seeded.workload)
                    result[label] = swarm(server.base, users, seconds)
                    ledger = locustfile.LEDGER
                    for tid, n in ledger.updates.items():
                        accepted[tid] = accepted.get(tid, 0) + n
                    result[label]["conflicts_retried"] = ledger.conflicts
                    conflicts += ledger.conflicts
                    gave_up += ledger.gave_up
                    unexpected += ledger.unexpected
            finally:
                stop_server(server)
            log = server.text()
            result["server_tracebacks"] = log.count("Traceback")
            result["accepted_updates"] = {str(k): v for k, v in sorted(accepted.items())}
            result["first_versions"] = {str(k): v for k, v in seeded.first_versions.items()}
            result["conflicts_retried"] = conflicts
            result["gave_up"] = gave_up
            result["unexpected"] = unexpected[:50]
            result["writes"] = lost_writes(url, seeded, accepted)
        finally:
            if not args.database:
                _drop_database(args.pg, url)
    failures = sum(result[p]["failures"] for p in ("baseline", "load") if p in result)
    errors = failures + len(result["unexpected"]) + result["gave_up"] + result["server_tracebacks"]
    result["errors"] = errors
    writes = result["writes"]
    if args.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        print(f"load test on PostgreSQL, {args.workers} uvicorn workers, loopback; "
              f"{args.customers:,} customers, {args.tickets} tickets; load avg "
              f"{os.getloadavg()[0]:.1f} at the end")  # fmt: skip
        for label in ("baseline", "load"):
            if label in result:
                _print_phase(label, result[label])
        accepted_total = sum(int(v) for v in result["accepted_updates"].values())
        print(
            f"\nticket updates accepted: {accepted_total:,} (conflicts re-read and retried: "
            f"{conflicts:,}, given up: {gave_up})"
        )
        print(f"errors: {errors} (failed requests {failures}, unexpected answers "
              f"{len(result['unexpected'])}, server tracebacks {result['server_tracebacks']})")  # fmt: skip
        print(f"lost writes: {writes['lost']} (phantom: {writes['phantom']}); audit chain: "
              f"{writes['audit_entries']:,} entries, {writes['audit_problems']} problems")  # fmt: skip
        for line in result["unexpected"][:10]:
            print(f"  {line}")
    ok = errors == 0 and writes["lost"] == 0 and writes["phantom"] == 0
    return 0 if ok and writes["audit_problems"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
