"""The service-desk benchmark (``benchmarks/service_desk.py``) at a tiny size, so it keeps
working as the desk changes: the generated tickets follow the workflow, the queue pages
served by a real ``guanxi serve`` list what the service lists, and the sweep finds nothing
new on its second run.

SQLite only: the benchmark's subject is the embedded database (its generator writes with
``sqlite3``); the measured code itself is tested on both databases elsewhere.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks import service_desk
from benchmarks._desk_data import CHUNK, DeskData, ensure_desk_db
from guanxi.config import Settings
from guanxi.security import crypto

SHIPMENTS, TICKETS = 2_000, 500


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DeskData, Settings]:
    # The benchmark installs its own field keys; the other tests' cipher comes back after.
    monkeypatch.setattr(crypto, "_cipher", crypto.cipher())
    return ensure_desk_db(
        tmp_path / "desk.db", shipments=SHIPMENTS, tickets=TICKETS, progress=lambda _m: None
    )


def _one(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_generated_desk_follows_the_workflow(
    desk: tuple[DeskData, Settings], tmp_path: Path
) -> None:
    data, _settings = desk
    db = tmp_path / "desk.db"
    assert TICKETS < CHUNK  # one chunk: the tiny run covers the same code path
    assert (data.tickets, data.open_tickets) == (TICKETS, TICKETS // 10)
    assert _one(db, "SELECT COUNT(*) FROM ticket") == TICKETS
    assert _one(db, "SELECT COUNT(*) FROM ticket_event") == data.events
    # Each ticket's last event leads to its status; its version counts its events.
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket t JOIN ticket_event e ON e.id ="
            " (SELECT MAX(id) FROM ticket_event WHERE ticket_id = t.id)"
            " WHERE e.to_status != t.status OR e.occurred_at != t.updated_at"
            " OR t.version != (SELECT COUNT(*) FROM ticket_event WHERE ticket_id = t.id)",
        )
        == 0
    )
    # Not taken: no owner; taken: an owner; events in time order; nothing in the future.
    assert _one(db, "SELECT COUNT(*) FROM ticket WHERE (status = 'new') != (owner_id IS NULL)") == 0
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket_event a JOIN ticket_event b ON b.ticket_id = a.ticket_id"
            " AND b.id > a.id WHERE b.occurred_at < a.occurred_at",
        )
        == 0
    )
    assert _one(db, "SELECT COUNT(*) FROM ticket WHERE updated_at > datetime('now')") == 0
    # Done tickets carry nothing to be swept.
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket WHERE status IN ('resolved', 'closed')"
            " AND (sla_due_at IS NOT NULL OR sla_check_at IS NOT NULL)",
        )
        == 0
    )
    # A running clock has a nearest due time and a moment to check; a paused one no due time.
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket WHERE status IN ('new', 'assigned', 'in_progress')"
            " AND (sla_due_at IS NULL OR sla_check_at IS NULL)",
        )
        == 0
    )
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket WHERE status LIKE 'waiting%' AND sla_due_at IS NOT NULL",
        )
        == 0
    )
    # Every waybill named is a real shipment of the ticket's customer.
    assert (
        _one(
            db,
            "SELECT COUNT(*) FROM ticket t LEFT JOIN shipment s ON s.waybill_no = t.waybill_no"
            " WHERE t.waybill_no IS NOT NULL AND (s.id IS NULL OR s.customer_id != t.customer_id)",
        )
        == 0
    )
    again, _ = ensure_desk_db(db, shipments=SHIPMENTS, tickets=TICKETS, progress=lambda _m: None)
    assert again == data  # reused, not rebuilt


def test_queue_pages_and_sweep_run(desk: tuple[DeskData, Settings], tmp_path: Path) -> None:
    data, settings = desk
    db = tmp_path / "desk.db"
    figures = service_desk.measure_queues(settings, rounds=3, warmup=1)
    assert [f.queue.label for f in figures] == [q.label for q in service_desk.QUEUES]
    agent = data.bench_agent_id
    mine = _one(
        db,
        f"SELECT COUNT(*) FROM ticket WHERE owner_id = {agent}"  # noqa: S608
        " AND status NOT IN ('resolved', 'closed')",
    )
    unassigned = _one(db, "SELECT COUNT(*) FROM ticket WHERE owner_id IS NULL AND status = 'new'")
    rows = {f.queue.label: f.rows for f in figures}
    assert (rows["mine"], rows["unassigned"]) == (min(mine, 100), min(unassigned, 100))
    for f in figures:
        assert (len(f.http.values), len(f.service.values), len(f.no_sla.values)) == (3, 3, 3)
        assert len(f.bare_sql.values) == 3

    sweeps = service_desk.measure_sweeps(settings, progress=lambda _m: None)
    full, due = sweeps
    assert [r.label for r in full.runs] == ["first run", "second run"]
    assert [r.label for r in due.runs] == ["first run", "second run", "a minute later"]
    assert full.runs[0].result.checked == full.runs[1].result.checked == TICKETS // 10
    assert service_desk.found(full.runs[1].result) == 0
    assert service_desk.found(due.runs[1].result) == 0
    assert all(r.reads > 0 for r in full.runs + due.runs)
    # The clean slate before the due-only runs: what they recorded is all there is.
    assert _one(db, "SELECT COUNT(*) FROM sla_event") == sum(
        service_desk.found(r.result) for r in due.runs
    )
