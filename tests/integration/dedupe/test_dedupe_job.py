"""The worker's periodic incremental de-duplication (``dedupe_incremental``): customers
entered through the service are scored once, changed ones again, nothing is recorded when
nothing is new, and two workers never run it at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate, CustomerUpdate
from guanxi.customers.service import create_customer, update_customer
from guanxi.dedupe import service
from guanxi.dedupe.lock import exclusive
from guanxi.dedupe.models import CustomerMerge, DedupeRun, DuplicatePair
from guanxi.worker import JOBS, dedupe_incremental
from tests.conftest import settings_for

BOT = Actor.system("test")
T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def _add(engine: Engine, name: str, phone: str, at: datetime) -> int:
    with clock.frozen(at), Session(engine) as session:
        return create_customer(
            session, customer_in=CustomerCreate(name=name, phones=[phone]), actor=BOT
        ).id


def _state(engine: Engine) -> dict[str, Any]:
    """Runs, pairs, merges and audit entries, and the customers' statuses by name."""
    with Session(engine) as session:
        counts = {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (DedupeRun, DuplicatePair, CustomerMerge, AuditEntry)
        }
        statuses = sorted(
            (name, status)
            for name, status in session.execute(select(Customer.name, Customer.status))
        )
        return {**counts, "customers": statuses}


def _last_run(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as session:
        row = session.execute(
            select(DedupeRun.id, DedupeRun.mode, DedupeRun.created_by, DedupeRun.finished_at)
            .order_by(DedupeRun.id.desc())
            .limit(1)
        ).one()
        return tuple(row)


def test_the_job_is_registered_every_five_minutes() -> None:
    assert [(n, every) for n, _job, every in JOBS if n == "dedupe_incremental"] == [
        ("dedupe_incremental", 300)
    ]


def test_the_job_scores_newcomers_once(committed_engine: Engine, tmp_path: Path) -> None:
    settings = settings_for(committed_engine.url.render_as_string(False), tmp_path)
    assert settings.dedupe_interval_minutes == 60
    # Entered by agents, not imported: the same person twice, and a stranger.
    _add(committed_engine, "张三丰", "13912345678", T0)
    _add(committed_engine, "張三豐", "139 1234 5678", T0)
    _add(committed_engine, "李四", "13812345678", T0)

    with clock.frozen(T0 + timedelta(minutes=5)):
        first = dedupe_incremental(committed_engine, settings)
    run_id, mode, created_by, finished_at = _last_run(committed_engine)
    assert first == {"ran": 1, "run_id": run_id, "customers": 3, "auto_merged": 1, "queued": 0}
    assert (mode, created_by, finished_at) == ("incremental", None, T0 + timedelta(minutes=5))
    after = _state(committed_engine)
    assert after["customers"] == [("张三丰", "active"), ("張三豐", "merged"), ("李四", "active")]
    assert (after["DedupeRun"], after["DuplicatePair"], after["CustomerMerge"]) == (1, 1, 1)

    # Within the interval: not due. After it: nobody new, and the merge's survivor is not
    # taken for a changed customer. Neither records anything.
    with clock.frozen(T0 + timedelta(minutes=30)):
        assert dedupe_incremental(committed_engine, settings) == {"ran": 0, "not_due": 1}
    with clock.frozen(T0 + timedelta(hours=2)):
        assert dedupe_incremental(committed_engine, settings) == {"ran": 0, "nothing_new": 1}
    assert _state(committed_engine) == after

    # A newcomer while another run holds the lock: this worker neither waits nor runs.
    _add(committed_engine, "王五", "13712345678", T0 + timedelta(hours=3))
    with clock.frozen(T0 + timedelta(hours=4)):
        with Session(committed_engine) as holder, exclusive(holder, wait=False) as mine:
            assert mine is True
            assert dedupe_incremental(committed_engine, settings) == {"ran": 0, "busy": 1}
        assert _state(committed_engine)["DedupeRun"] == 1
        second = dedupe_incremental(committed_engine, settings)
    assert second == {
        "ran": 1,
        "run_id": _last_run(committed_engine)[0],
        "customers": 1,
        "auto_merged": 0,
        "queued": 0,
    }

    settings.dedupe_interval_minutes = None
    _add(committed_engine, "赵六", "13612345678", T0 + timedelta(hours=5))
    with clock.frozen(T0 + timedelta(hours=6)):
        assert dedupe_incremental(committed_engine, settings) == {"ran": 0}
    assert _state(committed_engine)["DedupeRun"] == 2


def test_two_workers_at_once_run_it_once(committed_engine: Engine, tmp_path: Path) -> None:
    settings = settings_for(committed_engine.url.render_as_string(False), tmp_path)
    _add(committed_engine, "张三丰", "13912345678", T0)
    _add(committed_engine, "張三豐", "139 1234 5678", T0)
    results: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        results.append(dedupe_incremental(committed_engine, settings))

    with clock.frozen(T0 + timedelta(minutes=5)):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    ran = [r for r in results if r["ran"]]
    idle = [r for r in results if not r["ran"]]
    # The other found the lock held, or (started after the first finished) nothing due.
    assert len(ran) == len(idle) == 1
    assert idle[0] in ({"ran": 0, "busy": 1}, {"ran": 0, "not_due": 1})
    assert ran[0]["customers"] == 2
    assert ran[0]["auto_merged"] == 1
    state = _state(committed_engine)
    assert (state["DedupeRun"], state["DuplicatePair"], state["CustomerMerge"]) == (1, 1, 1)


def test_a_changed_customer_is_scored_again(db: Session, make_user: Any) -> None:
    manager = make_user(role="admin")
    every = timedelta(minutes=60)

    def add(name: str, phone: str) -> int:
        return create_customer(
            db, customer_in=CustomerCreate(name=name, phones=[phone]), actor=BOT
        ).id

    with clock.frozen(T0):
        a = add("张三丰", "13912345678")
        b = add("李四", "13812345678")
    with clock.frozen(T0 + timedelta(hours=1)):
        first = service.run_incremental_if_needed(db, actor=BOT, every=every)
    assert first.outcome == "ran"
    assert first.run is not None
    assert (first.run.customers, first.run.candidates) == (2, 0)

    # 李四's record is corrected to be 张三丰 (another agent's typing): only it is scored.
    with clock.frozen(T0 + timedelta(hours=1, minutes=30)):
        update_customer(
            db,
            customer_id=b,
            customer_in=CustomerUpdate(name="張三豐", phones=["13912345678"]),
            actor=manager,
        )
    with clock.frozen(T0 + timedelta(hours=2, minutes=30)):
        second = service.run_incremental_if_needed(db, actor=BOT, every=every)
    assert second.outcome == "ran"
    assert second.run is not None
    assert (second.run.customers, second.run.auto_merged, second.run.queued) == (1, 1, 0)
    merges = db.execute(select(CustomerMerge.survivor_id, CustomerMerge.merged_id)).all()
    assert [tuple(m) for m in merges] == [(a, b)]

    # The survivor's last change is the merge: nothing is new for the next run.
    with clock.frozen(T0 + timedelta(hours=4)):
        third = service.run_incremental_if_needed(db, actor=BOT, every=every)
    assert (third.outcome, third.run) == ("nothing_new", None)
    assert db.scalar(select(func.count()).select_from(DedupeRun)) == 2
