"""Several app processes on one PostgreSQL database, as behind a load balancer: two real
``guanxi serve`` servers (one with two uvicorn workers) started at the same moment on an
empty database, then concurrent writes through both.

Asserts: the migrations ran once (the servers did not race), every customer created is
stored exactly once, updates of one ticket from both servers follow its version rule with
no lost write (final version = first version + successful updates, one event and one audit
entry each), the audit chain is intact, and every worker process served requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, verify
from guanxi.core.db import make_engine
from guanxi.core.migrate import alembic_config
from guanxi.customers.models import Customer
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.tickets.models import Ticket, TicketEvent
from tests.conftest import PASSWORD, TEST_BLIND_KEY, TEST_FIELD_KEY

THREADS = 6
CUSTOMERS_PER_THREAD = 10
UPDATES_PER_THREAD = 5
SRC = Path(__file__).resolve().parents[3] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``guanxi serve`` process tree we started, and its log file."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> list[psutil.Process]:
        """The uvicorn worker processes (the server itself when it runs one)."""
        root = psutil.Process(self.process.pid)
        spawned = [
            child
            for child in root.children()
            if any("spawn_main" in part for part in child.cmdline())
        ]
        return spawned or [root]

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _start(url: str, data_dir: Path, workers: int, log: Path) -> Server:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "GUANXI_ENV": "test",
        "GUANXI_DATABASE_URL": url,
        "GUANXI_DATA_DIR": str(data_dir),
        "GUANXI_SECRET_KEY": "multi-process-test-secret",
        "GUANXI_FIELD_KEYS": json.dumps({"t1": TEST_FIELD_KEY}),
        "GUANXI_ACTIVE_FIELD_KEY": "t1",
        "GUANXI_BLIND_INDEX_KEY": TEST_BLIND_KEY,
        "GUANXI_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "guanxi.cli", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [*cmd, "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(f"http://127.0.0.1:{port}", process, log)


def _wait_ready(server: Server, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.tail()}")
        try:
            if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"server not ready in {timeout}s:\n{server.tail()}")


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        # SIGTERM to the uvicorn supervisor: it stops its workers and exits.
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            # Only the process group this test started (start_new_session above).
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


@pytest.fixture
def servers(empty_pg_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two servers started together on the empty database: A with 2 workers, B with 1."""
    data_dir = tmp_path / "data"  # shared, as attachments must be (docs/operations.md)
    a = _start(empty_pg_url, data_dir, 2, tmp_path / "a.log")
    b = _start(empty_pg_url, data_dir, 1, tmp_path / "b.log")
    try:
        _wait_ready(a)
        _wait_ready(b)
        yield a, b
    finally:
        _stop(a)
        _stop(b)


@dataclass
class Outcome:
    """What the clients saw."""

    created: list[int] = field(default_factory=list)
    updates: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_thread(
    n: int, bases: list[str], headers: dict[str, str], ticket_id: int, out: Outcome
) -> None:
    # Each thread talks to both servers, alternating request by request.
    clients = [httpx.Client(base_url=b, headers=headers, timeout=60) for b in bases]
    try:
        for i in range(CUSTOMERS_PER_THREAD):
            client = clients[(n + i) % 2]
            resp = client.post(
                "/api/v1/customers",
                json={"name": f"并发客户{n}-{i}", "phones": [f"139{n:02d}{i:06d}"]},
            )
            with out.lock:
                if resp.status_code == 201:
                    out.created.append(int(resp.json()["id"]))
                else:
                    out.errors.append(f"create {resp.status_code}: {resp.text[:200]}")
        done = 0
        attempt = 0
        while done < UPDATES_PER_THREAD and attempt < 200:
            client = clients[(n + attempt) % 2]
            attempt += 1
            ticket = client.get(f"/api/v1/tickets/{ticket_id}").json()
            action = "wait_customer" if ticket["status"] == "in_progress" else "resume"
            resp = client.post(
                f"/api/v1/tickets/{ticket_id}/actions",
                json={"action": action, "version": ticket["version"], "note": f"线程{n}"},
            )
            with out.lock:
                if resp.status_code == 200:
                    out.updates += 1
                    done += 1
                elif resp.status_code == 409:
                    out.conflicts += 1
                else:
                    out.errors.append(f"act {resp.status_code}: {resp.text[:200]}")
    finally:
        for client in clients:
            client.close()


def _pg_client_ports(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT client_port FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    return {int(r[0]) for r in rows if r[0] is not None}


def _db_ports_of(process: psutil.Process, pg_port: int) -> set[int]:
    return {
        c.laddr.port
        for c in process.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == pg_port
    }


def test_two_servers_on_one_database(servers: tuple[Server, Server], empty_pg_url: str) -> None:
    a, b = servers
    engine = make_engine(empty_pg_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        # Migrated once to one head, by whichever server took the lock first.
        assert len(versions) == 1
        assert versions[0][0] == ScriptDirectory.from_config(alembic_config()).get_current_head()

        with Session(engine) as session:
            create_user(
                session,
                user_in=UserCreate(
                    username="lead", display_name="主管", role="manager", password=PASSWORD
                ),  # type: ignore[arg-type]
                actor=Actor.system("test"),
            )
        token = httpx.post(
            f"{a.base}/api/v1/auth/token", json={"username": "lead", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        # The token issued by A is honoured by B: sessions and tokens live in the database.
        created = httpx.post(
            f"{b.base}/api/v1/tickets",
            headers=headers,
            json={"type": "complaint", "channel": "hotline", "subject": "多进程工单"},
        )
        assert created.status_code == 201, created.text
        ticket_id = int(created.json()["id"])
        started = httpx.post(
            f"{a.base}/api/v1/tickets/{ticket_id}/actions",
            headers=headers,
            json={"action": "start", "version": created.json()["version"]},
        )
        assert started.status_code == 200, started.text
        first_version = int(started.json()["version"])

        out = Outcome()
        threads = [
            threading.Thread(
                target=_client_thread, args=(n, [a.base, b.base], headers, ticket_id, out)
            )
            for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert out.errors == []
        assert out.updates == THREADS * UPDATES_PER_THREAD
        assert len(out.created) == len(set(out.created)) == THREADS * CUSTOMERS_PER_THREAD

        with Session(engine) as session:
            stored = session.scalars(select(Customer.id).order_by(Customer.id)).all()
            assert sorted(out.created) == list(stored)
            names = session.scalars(select(Customer.name)).all()
            assert sorted(names) == sorted(
                f"并发客户{n}-{i}" for n in range(THREADS) for i in range(CUSTOMERS_PER_THREAD)
            )
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            # No lost update: every accepted update moved the version by exactly one.
            assert ticket.version == first_version + out.updates
            notes = session.scalar(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.action.in_(
                    ["wait_customer", "resume"]
                ))
            )  # fmt: skip
            assert notes == out.updates
            audited = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.target_type == "ticket",
                    AuditEntry.target_id == str(ticket_id),
                    AuditEntry.action.in_(["ticket.wait_customer", "ticket.resume"]),
                )
            )
            assert audited == out.updates
            count, problems = verify(session)
            assert problems == []
            assert count == session.scalar(select(func.count()).select_from(AuditEntry))

        # Every worker process served requests: each holds its own pool connections to
        # the database (found in pg_stat_activity by their client ports). The kernel hands
        # A's connections to either worker; fresh connections are tried until both did.
        pg_port = make_url(empty_pg_url).port or 5432
        workers = a.workers() + b.workers()
        assert len(workers) == 3
        assert len({w.pid for w in workers}) == 3
        deadline = time.monotonic() + 60
        idle: list[int] = []
        while time.monotonic() < deadline:
            ports = _pg_client_ports(engine)
            idle = [w.pid for w in workers if not (_db_ports_of(w, pg_port) & ports)]
            if not idle:
                break
            for base in (a.base, b.base):
                with httpx.Client(base_url=base, headers=headers, timeout=30) as fresh:
                    assert fresh.get(f"/api/v1/tickets/{ticket_id}").status_code == 200
        assert idle == []
        # No request failed inside a server either.
        for server in (a, b):
            assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")
    finally:
        engine.dispose()
