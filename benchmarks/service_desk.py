"""The service desk at scale (issue #4): an agent's queue page and the SLA sweep, with
10,000,000 shipments and 1,000,000 tickets in SQLite, each beside the same work without
the SLA computation, measured in the same run.

Queue page: ``guanxi serve`` (uvicorn, one worker) on 127.0.0.1, signed in with the
measured agent's session cookie, requests one at a time (keep-alive) over the queues an
agent opens — mine, mine filtered by type and priority, my team's, unassigned, breaching
soon (the target) and the whole desk's "all open" and "closed" tabs (shown, measured less
often) — interleaved, after a warm-up; each page must list what the service lists. Beside it, in this process on the same file: the
service call the page makes (``list_tickets``: queries, ORM rows, SLA countdowns per row),
the same call with the SLA arithmetic stubbed out (same queries, same rows), and the same
SQL statements replayed on the raw driver.

SLA sweep: ``guanxi.tickets.jobs.sweep_sla`` over the open tickets (10 % of the tickets:
100,000 at full size) from a clean slate (no moment recorded yet, the SLA columns as the
product materialises them): the full sweep (every open ticket) twice — the second run must
find nothing new —, then the worker's every-minute sweep (only tickets whose next moment
has come) twice and a minute later; beside each run, the same selects without any SLA
arithmetic or writing: every SELECT the run made, run again alone (rows fetched and
decoded as the sweep gets them).

Targets: queue page p95 <= 100 ms; sweep over 100,000 open tickets <= 10 s. The database
is built once per size under /tmp (``benchmarks/_desk_data.py``) and reused; the sweep
resets the SLA state it leaves behind at its next start.

    python benchmarks/service_desk.py --shipments 10000000 --tickets 1000000
    python benchmarks/service_desk.py --shipments 200000 --tickets 100000  # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select, TextClause

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import percentile
from benchmarks._desk_data import (
    BENCH_AGENT,
    DeskData,
    db_path_for,
    ensure_desk_db,
    materialise_sla,
)
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.security.models import User
from guanxi.security.service import issue_token
from guanxi.tickets import service
from guanxi.tickets.enums import Priority, TicketStatus, TicketType
from guanxi.tickets.jobs import SweepResult, sweep_sla
from guanxi.tickets.sla import calendar_for, sla_context
from guanxi.tickets.teams import teams_of

PAGE_TARGET_MS = 100.0
SWEEP_TARGET_S = 10.0
PAGE_SIZE = 100  # what the queue page asks list_tickets for
SESSION_COOKIE = "guanxi_session"
# Minutes ahead the "breaching soon" queue looks (tickets/pages.py SOON_MINUTES).
SOON_MINUTES = 60


@dataclass(frozen=True)
class Queue:
    """One queue page as an agent opens it: its query string on /tickets. ``target``: one
    of the agent's working queues the target is about; ``share``: of the requests (the
    whole-desk tabs are slow at full size and measured less often)."""

    label: str
    query: dict[str, str]
    target: bool = True
    share: float = 1.0

    def rounds(self, rounds: int) -> int:
        """Measured requests of this queue when the others get ``rounds``."""
        return max(3, round(rounds * self.share)) if rounds >= 3 else rounds


QUEUES = [
    Queue("mine", {"view": "mine"}),
    Queue("mine: complaints, normal", {"view": "mine", "type": "complaint", "priority": "normal"}),
    Queue("my team", {"view": "team"}),
    Queue("unassigned", {"view": "unassigned"}),
    Queue("breaching soon", {"view": "soon"}),
    # The whole desk's tabs, open to agents too.
    Queue("all open (tab)", {"view": "open"}, target=False, share=0.25),
    Queue("closed (tab)", {"view": "done"}, target=False, share=0.25),
]


def filters_for(session: Session, queue: Queue, user_id: int, now: datetime) -> Any:
    """The ``TicketFilters`` the queue page builds for this query (as tickets/pages.py)."""
    q = queue.query
    view = q.get("view", "mine")
    return service.TicketFilters(
        owner_id=user_id if view == "mine" else None,
        team_ids=tuple(teams_of(session, user_id)) if view == "team" else None,
        unassigned=view == "unassigned",
        status=TicketStatus.closed if view == "done" else None,
        type=TicketType(q["type"]) if "type" in q else None,
        priority=Priority(q["priority"]) if "priority" in q else None,
        due_before=now + timedelta(minutes=SOON_MINUTES) if view == "soon" else None,
    )


# --------------------------------------------------------------------------- figures


@dataclass
class Samples:
    """Durations in seconds, summarised in milliseconds."""

    values: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.values) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.values, 95) * 1000


@dataclass
class QueueFigures:
    """One queue's figures: over HTTP, and the page's service call with / without SLA and
    its SQL on the raw driver."""

    queue: Queue
    rows: int = 0
    http: Samples = field(default_factory=Samples)
    service: Samples = field(default_factory=Samples)
    no_sla: Samples = field(default_factory=Samples)
    bare_sql: Samples = field(default_factory=Samples)
    statements: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SweepRun:
    """One sweep: its wall time, what it found, and its own reads run again alone."""

    label: str
    seconds: float
    result: SweepResult
    reads_seconds: float  # the run's SELECT statements run again, rows decoded
    reads: int  # how many


@dataclass
class SweepFigures:
    """One sweep mode, run after run from a clean slate."""

    mode: str
    runs: list[SweepRun] = field(default_factory=list)


# --------------------------------------------------------------------------- queue page


@contextlib.contextmanager
def capture_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) the engine runs inside the block."""
    seen: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


@contextlib.contextmanager
def sla_stubbed() -> Iterator[None]:
    """The ticket service with its per-row SLA arithmetic (``sla`` as ``to_read`` calls it)
    replaced by nothing: the same queries and rows, no countdowns."""
    with mock.patch.object(service, "sla", return_value=[]):
        yield


def _list(session_factory: Any, queue: Queue, user_id: int) -> list[Any]:
    """The queue page's service work: SLA context, filters, list_tickets."""
    now = clock.now()
    with session_factory() as session:
        ctx = sla_context(session)
        filters = filters_for(session, queue, user_id, now)
        return service.list_tickets(session, filters=filters, now=now, ctx=ctx, limit=PAGE_SIZE)


def measure_in_process(
    engine: Engine, figures: list[QueueFigures], user_id: int, rounds: int, warmup: int
) -> None:
    """Per queue, interleaved: the page's service call, the same without SLA, and its
    statements on the raw driver."""
    factory = make_sessionmaker(engine)
    for fig in figures:
        with capture_sql(engine) as seen:
            fig.rows = len(_list(factory, fig.queue, user_id))
        # Only what list_tickets reads: the transaction's BEGIN and the context's small
        # reads (policy, teams) are left out of the replay.
        fig.statements = [
            (sql, params)
            for sql, params in seen
            if "FROM ticket" in sql and not sql.lstrip().upper().startswith("BEGIN")
        ]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for i in range(warmup + rounds):
            for fig in figures:
                if i >= warmup + fig.queue.rounds(rounds):
                    continue
                t0 = time.perf_counter()
                _list(factory, fig.queue, user_id)
                t1 = time.perf_counter()
                with sla_stubbed():
                    _list(factory, fig.queue, user_id)
                t2 = time.perf_counter()
                for sql, params in fig.statements:
                    cur.execute(sql, params)
                    cur.fetchall()
                t3 = time.perf_counter()
                if i >= warmup:
                    fig.service.values.append(t1 - t0)
                    fig.no_sla.values.append(t2 - t1)
                    fig.bare_sql.values.append(t3 - t2)
        raw.rollback()
    finally:
        raw.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(settings: Settings, workers: int = 1) -> Iterator[tuple[str, int]]:
    """``guanxi serve`` on a free loopback port, stopped on exit."""
    port = _free_port()
    env = {
        **os.environ,
        "GUANXI_ENV": settings.env.value,
        "GUANXI_DATABASE_URL": settings.database_url,
        "GUANXI_DATA_DIR": str(settings.data_dir),
    }
    log = tempfile.TemporaryFile()  # closed when the server has stopped
    server = subprocess.Popen(
        [sys.executable, "-m", "guanxi.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe read only on failure: the server's log (an access line per
        # request) would fill a pipe and block the server.
        stderr=log,
    )  # fmt: skip
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                if server.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise SystemExit(f"server exited: {err[-2000:]}") from None
                time.sleep(0.5)
        else:
            raise SystemExit("server did not start")
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def session_cookie(engine: Engine, username: str) -> tuple[int, str]:
    """(user id, cookie header) of a fresh web session for ``username``."""
    with make_sessionmaker(engine)() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        secret, _row = issue_token(session, user=user, kind="web", hours=4)
        return user.id, f"{SESSION_COOKIE}={secret}"


_TICKET_LINK = re.compile(r'href="/tickets/(\d+)"')


def check_listing(path: str, html: str, expected: list[int]) -> None:
    """The page lists the tickets the service lists for its filters (a filter the page
    ignored would show here). Between the two reads the clock moved on, so a ticket or two
    may have entered "breaching soon": up to 2 % may differ."""
    shown = list(dict.fromkeys(int(x) for x in _TICKET_LINK.findall(html)))
    differ = len(set(shown) ^ set(expected))
    if len(shown) != len(expected) or differ > len(expected) // 50:
        raise SystemExit(
            f"{path} lists {len(shown)} tickets ({shown[:5]}...), the service "
            f"{len(expected)} ({expected[:5]}...)"
        )


def measure_http(
    host: str,
    port: int,
    cookie: str,
    figures: list[QueueFigures],
    expected: dict[str, list[int]],
    rounds: int,
    warmup: int,
) -> None:
    """GET each queue page in turn over one keep-alive connection; every page must list
    exactly the tickets the service lists for it (so a filter the page ignores shows)."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Cookie": cookie, "Accept-Language": "zh-CN"}
    try:
        for i in range(warmup + rounds):
            for fig in figures:
                if i >= warmup + fig.queue.rounds(rounds):
                    continue
                path = "/tickets?" + urlencode(fig.queue.query)
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - t0
                if response.status != 200:
                    raise SystemExit(f"{path}: HTTP {response.status}")
                if i == 0:
                    check_listing(path, body.decode(), expected[fig.queue.label])
                if i >= warmup:
                    fig.http.values.append(elapsed)
    finally:
        conn.close()


def measure_queues(
    settings: Settings,
    *,
    queues: list[Queue] = QUEUES,
    rounds: int = 200,
    warmup: int = 20,
    http: bool = True,
) -> list[QueueFigures]:
    """The queue pages over HTTP and in process, each with its baselines."""
    engine = make_engine(settings.database_url)
    try:
        user_id, cookie = session_cookie(engine, BENCH_AGENT)
        figures = [QueueFigures(q) for q in queues]
        factory = make_sessionmaker(engine)
        expected = {
            q.label: [t.id for t in _list(factory, q, user_id)] for q in queues
        }  # fmt: skip
        if http:
            with running_server(settings) as (host, port):
                measure_http(host, port, cookie, figures, expected, rounds, warmup)
        measure_in_process(engine, figures, user_id, rounds, warmup)
    finally:
        engine.dispose()
    return figures


# --------------------------------------------------------------------------- SLA sweep


def reset_sla_state(engine: Engine) -> float:
    """No moment recorded, no SLA notification, the SLA columns as the product
    materialises them now: the state before any sweep ran. Returns seconds."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM sla_event")
        conn.exec_driver_sql("DELETE FROM notification WHERE kind LIKE 'sla_%'")
    materialise_sla(engine, progress=lambda _m: None)
    return time.perf_counter() - started


@contextlib.contextmanager
def capture_selects(engine: Engine) -> Iterator[list[tuple[Any, Any]]]:
    """Every SELECT statement object (with its parameters) executed through SQLAlchemy
    inside the block, ORM queries included (as the Core selects they compile from)."""
    seen: list[tuple[Any, Any]] = []

    def grab(_c: Any, clause: Any, multiparams: Any, params: Any, _o: Any) -> None:
        if isinstance(clause, Select) or (
            isinstance(clause, TextClause) and clause.text.lstrip()[:6].upper() == "SELECT"
        ):
            seen.append((clause, (multiparams[0] if multiparams else params) or None))

    event.listen(engine, "before_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_execute", grab)


def replay(engine: Engine, statements: list[tuple[Any, Any]]) -> float:
    """Seconds to run ``statements`` again, fetching and decoding every row (dates and
    all, as the sweep receives them) but computing and writing nothing."""
    with engine.connect() as conn:
        started = time.perf_counter()
        for clause, params in statements:
            conn.execute(clause, params).all()
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def run_sweep(engine: Engine, label: str, now: datetime, full: bool) -> SweepRun:
    """One ``sweep_sla`` at ``now``, then its reads alone: every SELECT it ran (open
    tickets, their timeline steps, recorded moments, who to tell) run again — the same
    selects without any SLA arithmetic or writing."""
    with clock.frozen(now), capture_selects(engine) as reads:
        with make_sessionmaker(engine)() as session:
            started = time.perf_counter()
            result = sweep_sla(session, now=now, calendar=calendar_for("Asia/Shanghai"), full=full)
            seconds = time.perf_counter() - started
    return SweepRun(label, seconds, result, replay(engine, reads), len(reads))


def measure_sweeps(settings: Settings, *, progress: Any = print) -> list[SweepFigures]:
    """The full sweep (first run, second run) and the worker's due-only sweep (first run,
    second run, a minute later), each from a clean slate, each run beside its reads."""
    # As ``guanxi worker`` opens the database: no memory-mapped reads for batch work.
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    out = []
    try:
        for mode, full in (("full", True), ("due only", False)):
            seconds = reset_sla_state(engine)
            progress(f"  [{mode}] clean slate (moments cleared, SLA columns): {seconds:.1f} s")
            now = clock.now()
            fig = SweepFigures(mode)
            plan = [("first run", now), ("second run", now)]
            if not full:
                plan.append(("a minute later", now + timedelta(minutes=1)))
            for label, at in plan:
                run = run_sweep(engine, label, at, full)
                fig.runs.append(run)
                # Told as it goes: a run is minutes long at full size.
                progress(
                    f"  [{mode}] {label}: {run.seconds:.2f} s (reads alone "
                    f"{run.reads_seconds:.2f} s), {run.result}"
                )
            out.append(fig)
    finally:
        engine.dispose()
    return out


def found(result: SweepResult) -> int:
    """Moments a sweep recorded."""
    return result.warnings + result.breaches + result.escalations


def sla_notifications(settings: Settings) -> int:
    """SLA notifications in the database (after the sweeps)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM notification WHERE kind LIKE 'sla_%'"
                ).scalar_one()
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- report


def explain(settings: Settings, figures: list[QueueFigures]) -> None:
    """EXPLAIN QUERY PLAN of each queue's statements."""
    engine = make_engine(settings.database_url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for fig in figures:
            for sql, params in fig.statements:
                print(f"-- {fig.queue.label}\n{sql}")
                for row in cur.execute(f"EXPLAIN QUERY PLAN {sql}", params):
                    print("   ", row[-1])
    finally:
        raw.close()
        engine.dispose()


def print_data(data: DeskData) -> None:
    """What the database holds and how long it took to build."""
    print(
        f"data: {data.shipments:,} shipments, {data.customers:,} customers, "
        f"{data.tickets:,} tickets ({data.open_tickets:,} open), {data.events:,} ticket events, "
        f"{data.agents} agents"
    )
    print(f"measured agent: {data.bench_agent_open:,} open of {data.bench_agent_tickets:,} tickets")
    print(
        f"load: customers+shipments {data.shipments_seconds:.1f} s, tickets+events "
        f"{data.tickets_seconds:.1f} s, SLA columns {data.sla_columns_seconds:.1f} s, ANALYZE {data.analyze_seconds:.1f} s"
    )


def print_queues(figures: list[QueueFigures]) -> bool:
    """The queue table; returns whether every page met the target."""
    print(
        f"\nqueue page ({len(figures[0].service.values)} requests each, fewer for the tabs; "
        "p50 / p95 ms; in-process columns on the same file)"
    )
    print(
        f"{'queue':<26}{'rows':>5}{'HTTP page':>16}{'list_tickets':>16}{'same, no SLA':>16}"
        f"{'bare SQL':>14}{'SLA share':>11}"
    )
    met = True
    for f in figures:
        share = 1 - f.no_sla.p50 / f.service.p50 if f.service.values and f.service.p50 > 0 else 0.0
        page = f"{f.http.p50:6.1f} /{f.http.p95:6.1f}" if f.http.values else "     -"
        print(
            f"{f.queue.label:<26}{f.rows:>5}{page:>16}"
            f"{f.service.p50:7.1f} /{f.service.p95:6.1f}{f.no_sla.p50:7.1f} /{f.no_sla.p95:6.1f}"
            f"{f.bare_sql.p50:6.1f} /{f.bare_sql.p95:5.1f}{share:>10.0%}"
        )
        if f.queue.target and f.http.values and f.http.p95 > PAGE_TARGET_MS:
            met = False
    worst = max((f.http.p95 for f in figures if f.http.values and f.queue.target), default=0.0)
    print(
        f"worst p95 of the agent's queues {worst:.1f} ms (target <= {PAGE_TARGET_MS:.0f} ms: "
        f"{'MET' if met else 'NOT MET'}); the tabs are shown for what they cost"
    )
    return met


def print_sweeps(figures: list[SweepFigures], notifications: int) -> bool:
    """The sweep table; returns whether the full sweep met the target."""
    print(
        "\nSLA sweep (wall time; beside each run its own SELECTs run again alone: rows fetched "
        "and decoded, nothing computed or written)"
    )
    met = True
    for f in figures:
        print(f"  {f.mode}:")
        for r in f.runs:
            ratio = r.seconds / max(r.reads_seconds, 1e-9)
            print(
                f"    {r.label:<16}{r.seconds:8.2f} s  reads alone {r.reads_seconds:6.2f} s "
                f"{ratio:6.1f}x  checked {r.result.checked:,}  warnings {r.result.warnings:,}  "
                f"breaches {r.result.breaches:,}  escalations {r.result.escalations:,}"
            )
        print(
            f"    second run found nothing new: {'yes' if found(f.runs[1].result) == 0 else 'NO'}"
        )
        if f.mode == "full":
            first, second = f.runs[0], f.runs[1]
            met = first.seconds <= SWEEP_TARGET_S
            print(
                f"    first full sweep {first.seconds:.1f} s over {first.result.checked:,} open "
                f"tickets (target <= {SWEEP_TARGET_S:.0f} s: {'MET' if met else 'NOT MET'}); "
                f"second {second.seconds:.1f} s"
            )
    print(f"  SLA notifications written: {notifications:,}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shipments", type=int, default=10_000_000)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="default: /tmp, named by size")
    parser.add_argument("--requests", type=int, default=200, help="per queue, after warm-up")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-page", action="store_true", help="skip the queue pages")
    parser.add_argument("--no-sweep", action="store_true", help="skip the SLA sweep")
    parser.add_argument("--explain", action="store_true", help="print the queue query plans")
    parser.add_argument(
        "--refresh-sla", action="store_true", help="re-materialise the SLA columns of a reused file"
    )
    args = parser.parse_args()

    db = args.db or db_path_for(args.shipments, args.tickets)
    data, settings = ensure_desk_db(db, shipments=args.shipments, tickets=args.tickets)
    if args.refresh_sla:
        engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
        materialise_sla(engine)
        engine.dispose()
    print_data(data)
    if not args.no_page:
        figures = measure_queues(settings, rounds=args.requests, warmup=args.warmup)
        print_queues(figures)
        if args.explain:
            explain(settings, figures)
    if not args.no_sweep:
        print("\nSLA sweep: preparing")
        sweeps = measure_sweeps(settings)
        print_sweeps(sweeps, sla_notifications(settings))


if __name__ == "__main__":
    main()
