"""The bounded load test, short: benchmarks/load.py (locust headless, as a library) with 10
users for 20 seconds against a real ``guanxi serve`` (2 workers) on a new PostgreSQL
database, loopback only, then the database read back here.

Asserts: every action of the mix ran (searches by name and mobile, 360 views, ticket reads
and updates) with no failed request, no unexpected answer, no update given up and no
traceback in the server's log; no lost write: for every ticket, the version moved by
exactly the updates the clients saw accepted, with one workflow event and one audit entry
each; the audit chain verifies.

locust patches the standard library for gevent on import, so it runs in its own process
(the script), not inside the test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import verify
from guanxi.core.db import make_engine
from guanxi.tickets.models import Ticket, TicketEvent

ROOT = Path(__file__).resolve().parents[3]
USERS = 10
SECONDS = 20
TICKETS = 8
ACTIONS = ["search: name", "search: phone", "360 view", "ticket: read", "ticket: update"]


def test_bounded_load_no_errors_no_lost_writes(empty_pg_url: str) -> None:
    proc = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--database", empty_pg_url,
         "--users", str(USERS), "--seconds", str(SECONDS), "--baseline-seconds", "0",
         "--customers", "1000", "--tickets", str(TICKETS), "--accounts", "5", "--json"],
        capture_output=True,
        timeout=900,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.stdout, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    load = result["load"]
    assert result["unexpected"] == []
    assert (result["gave_up"], result["server_tracebacks"], result["errors"]) == (0, 0, 0)
    assert load["failures"] == 0
    assert load["errors"] == []
    for action in ACTIONS:
        assert load["actions"][action]["requests"] > 0, action
        assert load["actions"][action]["failures"] == 0, action
    assert (result["writes"]["lost"], result["writes"]["phantom"]) == (0, 0)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]

    # The database read back here, independently of the script's own check.
    accepted = {int(k): v for k, v in result["accepted_updates"].items()}
    first = {int(k): v for k, v in result["first_versions"].items()}
    assert len(first) == TICKETS
    assert (
        sum(accepted.values())
        == load["actions"]["ticket: update"]["requests"] - (load["conflicts_retried"])
    )
    assert sum(accepted.values()) > 0
    engine = make_engine(empty_pg_url)
    try:
        with Session(engine) as session:
            for tid, version in first.items():
                ticket = session.get(Ticket, tid)
                assert ticket is not None
                updates = accepted.get(tid, 0)
                assert ticket.version == version + updates, tid
                events = session.scalar(
                    select(func.count())
                    .select_from(TicketEvent)
                    .where(
                        TicketEvent.ticket_id == tid,
                        TicketEvent.action.in_(["wait_customer", "resume"]),
                    )
                )
                assert events == updates, tid
                audited = session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(
                        AuditEntry.target_type == "ticket",
                        AuditEntry.target_id == str(tid),
                        AuditEntry.action.in_(["ticket.wait_customer", "ticket.resume"]),
                    )
                )
                assert audited == updates, tid
            count, problems = verify(session)
            assert problems == []
            assert count == session.scalar(select(func.count()).select_from(AuditEntry))
    finally:
        engine.dispose()
