"""A run of the analytics: refresh the snapshot, then each step whose inputs changed.

A step declares the source tables it reads. Its input key is a digest of those tables'
snapshot fingerprints, the policy and the day of the cut-off; when the key equals the one
of its newest successful run the step is skipped (the results on screen are still right).
Each step writes its rows and marks itself succeeded in one transaction, so readers never
see half a step, and an interrupted run leaves the previous results in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from guanxi.analytics.engine import (
    DuckWorkspace,
    PostgresWorkspace,
    Snapshot,
    SparkWorkspace,
    Workspace,
)
from guanxi.analytics.models import AnalyticsRun, AnalyticsStep, TrainedModel
from guanxi.analytics.policy import AnalyticsPolicy, load_policy
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import Base, make_sessionmaker, table_of

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
# Rows per INSERT batch when a step writes its results.
WRITE_BATCH = 20_000


@dataclass
class StepContext:
    """What a step gets: its run, the cut-off (local wall-clock time, for SQL), the
    workspace to query, the policy, and ``write`` for its results."""

    run_id: int
    step: str
    as_of: datetime
    as_of_utc: datetime
    workspace: Workspace
    policy: AnalyticsPolicy
    settings: Settings
    session: Session
    progress: Callable[[int, int], None]
    written: dict[str, int] = field(default_factory=dict)

    def write(self, model: type[Base], rows: pa.Table | Sequence[dict[str, Any]]) -> int:
        """Insert result rows for this run (``run_id`` is added) inside the step's
        transaction; returns how many. Moments must be timezone-aware (UTC)."""
        table = table_of(model)
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
        data = data.append_column("run_id", pa.array([self.run_id] * len(data), pa.int64()))
        bulk_insert(self.session, table, data)
        self.written[table.name] = self.written.get(table.name, 0) + len(data)
        return len(data)

    def save_model(self, name: str, blob: bytes, metrics: dict[str, Any]) -> None:
        """Keep a fitted model with this run."""
        self.write(
            TrainedModel,
            [{"name": name, "blob": blob, "metrics": json.dumps(metrics, default=float)}],
        )


def bulk_insert(session: Session, table: Table, data: pa.Table) -> None:
    """Rows of an Arrow table into ``table`` on the session's connection (its transaction).

    A million result rows through the ORM's per-row parameter processing take half a
    minute on SQLite; here values go to the driver as tuples (SQLite ``executemany``,
    PostgreSQL ``COPY``). Moments are converted the way ``UTCDateTime`` stores them.
    """
    if len(data) == 0:
        return
    names = [c.name for c in table.columns if c.name in data.column_names]
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    sqlite = connection.dialect.name == "sqlite"
    columns = []
    for name in names:
        column = data[name]
        if pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                raise ValueError(f"{table.name}.{name}: store timezone-aware UTC moments")
            column = column.cast(pa.timestamp("us", tz="UTC"))
            if sqlite:
                column = pc.strftime(column, format="%Y-%m-%d %H:%M:%S")
        elif sqlite and pa.types.is_date(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    quoted = ", ".join(f'"{n}"' for n in names)
    for start in range(0, len(data), WRITE_BATCH):
        batch = list(zip(*(c.slice(start, WRITE_BATCH).to_pylist() for c in columns), strict=True))
        if sqlite:
            marks = ", ".join("?" for _ in names)
            raw.cursor().executemany(
                f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})',  # noqa: S608
                batch,
            )
        else:
            with (
                raw.cursor() as cur,
                cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy,
            ):
                for row in batch:
                    copy.write_row(row)


@dataclass(frozen=True)
class StepResult:
    """What a step reports: rows written and its quality figures / fitted parameters."""

    rows: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A named unit of the analytics run."""

    name: str
    reads: tuple[str, ...]
    run: Callable[[StepContext], StepResult]
    # Result tables the step writes (older runs' rows are purged from them).
    writes: tuple[type[Base], ...] = ()
    # Steps whose results this one reads; they run first.
    after: tuple[str, ...] = ()


STEPS: dict[str, Step] = {}


def register(step: Step) -> Step:
    """Add a step to the run (module import time)."""
    STEPS[step.name] = step
    return step


def load_steps() -> dict[str, Step]:
    """Import every step module so the registry is complete."""
    from guanxi.analytics import (  # noqa: F401
        churn,
        complaints,
        forecast,
        kpi,
        rfm,
        scorecard,
        value,
        warning,
    )

    return STEPS


@dataclass
class RunSummary:
    """How a run went, step by step."""

    run_id: int
    status: str
    steps: dict[str, str]
    seconds: float
    metrics: dict[str, dict[str, Any]]


def snapshot_for(settings: Settings) -> Snapshot:
    """The snapshot directory of this installation."""
    return Snapshot(
        Path(settings.data_dir) / "analytics" / "snapshot",
        settings.database_url,
        settings.timezone,
    )


def open_workspace(settings: Settings, snapshot: Snapshot | None = None) -> Workspace:
    """The workspace the configured engine runs in."""
    if settings.analytics_engine == "postgres":
        return PostgresWorkspace(settings.database_url, settings.timezone)
    snap = snapshot or snapshot_for(settings)
    if settings.analytics_engine == "spark":
        return SparkWorkspace(snap.directory, master=settings.spark_master)
    return DuckWorkspace(snap.directory, memory_limit=settings.analytics_memory)


def run(
    engine: Engine,
    settings: Settings,
    *,
    only: Iterable[str] | None = None,
    force: bool = False,
    trigger: str = "cli",
    as_of: datetime | None = None,
    progress: Progress | None = None,
    queued: int | None = None,
) -> RunSummary:
    """Recompute the analytics (``only`` some steps and what they need), skipping steps
    whose inputs are unchanged unless ``force``. ``queued`` is the id of a requested run
    the caller has claimed (:func:`run_queued`)."""
    started = time.perf_counter()
    steps = _ordered(load_steps(), only)
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    moment = (as_of or clock.now()).astimezone(UTC)
    local = moment.astimezone(ZoneInfo(settings.timezone)).replace(tzinfo=None)
    with factory() as session, session.begin():
        if queued is None:
            run_row = AnalyticsRun(
                as_of=moment, trigger=trigger, requested=",".join(s.name for s in steps)
            )
            session.add(run_row)
            session.flush()
            run_id = run_row.id
        else:
            run_id = queued
            session.execute(
                update(AnalyticsRun)
                .where(AnalyticsRun.id == queued)
                .values(status="running", as_of=moment, started_at=clock.now())
            )
        policy = load_policy(session)

    snapshot = snapshot_for(settings)
    tables = sorted({t for s in steps for t in s.reads})
    if settings.analytics_engine != "postgres":
        snapshot.refresh(tables, progress=progress)
    workspace = open_workspace(settings, snapshot)
    outcome: dict[str, str] = {}
    metrics: dict[str, dict[str, Any]] = {}
    try:
        for step in steps:
            key = _input_key(step, snapshot, settings, policy, local)
            with factory() as session:
                if not force and _last_key(session, step.name) == key:
                    outcome[step.name] = "skipped"
                    continue
            outcome[step.name], metrics[step.name] = _run_step(
                factory, step, key, run_id, local, moment, workspace, policy, settings, progress
            )
    finally:
        workspace.close()
    status = "failed" if "failed" in outcome.values() else "succeeded"
    with factory() as session, session.begin():
        session.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id)
            .values(status=status, finished_at=clock.now())
        )
    return RunSummary(run_id, status, outcome, time.perf_counter() - started, metrics)


def _run_step(
    factory: sessionmaker[Session],
    step: Step,
    key: str,
    run_id: int,
    local: datetime,
    moment: datetime,
    workspace: Workspace,
    policy: AnalyticsPolicy,
    settings: Settings,
    progress: Progress | None,
) -> tuple[str, dict[str, Any]]:
    began = time.perf_counter()
    if isinstance(workspace, PostgresWorkspace):
        # In place, each step reads in a transaction of its own: a step that reads an
        # earlier step's results (kpi joins rfm's) sees them committed.
        workspace.fresh()
    with factory() as session:
        try:
            with session.begin():
                row = AnalyticsStep(run_id=run_id, step=step.name, input_key=key)
                session.add(row)
                session.flush()
                ctx = StepContext(
                    run_id=run_id,
                    step=step.name,
                    as_of=local,
                    as_of_utc=moment,
                    workspace=workspace,
                    policy=policy,
                    settings=settings,
                    session=session,
                    progress=lambda done, total: (
                        progress(step.name, done, total) if progress else None
                    ),
                )
                result = step.run(ctx)
                row.status = "succeeded"
                row.rows = result.rows
                row.seconds = time.perf_counter() - began
                row.finished_at = clock.now()
                row.metrics = json.dumps(result.metrics, default=float, sort_keys=True)
                _purge(session, step, run_id)
            return "succeeded", result.metrics
        except Exception as exc:  # a failed step is recorded; the run goes on
            log.exception("analytics step %s failed", step.name)
            with session.begin():
                session.add(
                    AnalyticsStep(
                        run_id=run_id,
                        step=step.name,
                        input_key="",
                        status="failed",
                        finished_at=clock.now(),
                        seconds=time.perf_counter() - began,
                        error="".join(traceback.format_exception_only(exc)).strip()[:2000],
                    )
                )
            return "failed", {}


def _purge(session: Session, step: Step, run_id: int) -> None:
    """Keep this run's rows and the previous successful run's; drop older ones.

    A table several steps write (``analytics_kpi``: ``kpi`` and ``scorecard``) keeps the
    two newest successful runs of every one of its writers: one step's purge must not
    drop rows another step still serves from an older run.
    """
    for model in step.writes:
        writers = {s.name for s in STEPS.values() if model in s.writes} | {step.name}
        keep = {run_id}
        for name in writers:
            keep.update(
                session.scalars(
                    select(AnalyticsStep.run_id)
                    .where(
                        AnalyticsStep.step == name,
                        AnalyticsStep.status == "succeeded",
                        AnalyticsStep.run_id < run_id,
                    )
                    .order_by(AnalyticsStep.run_id.desc())
                    .limit(1 if name == step.name else 2)
                )
            )
        table = table_of(model)
        session.execute(delete(table).where(table.c.run_id.not_in(sorted(keep))))


def _ordered(steps: dict[str, Step], only: Iterable[str] | None) -> list[Step]:
    wanted = list(only) if only else list(steps)
    unknown = [name for name in wanted if name not in steps]
    if unknown:
        raise KeyError(unknown[0])
    order: list[Step] = []

    def visit(name: str) -> None:
        if any(s.name == name for s in order):
            return
        for dependency in steps[name].after:
            visit(dependency)
        order.append(steps[name])

    for name in wanted:
        visit(name)
    return order


def _input_key(
    step: Step, snapshot: Snapshot, settings: Settings, policy: AnalyticsPolicy, local: datetime
) -> str:
    if settings.analytics_engine == "postgres":
        # In place there is no snapshot to fingerprint: the key changes every run.
        tables = local.isoformat()
    else:
        tables = snapshot.fingerprint(step.reads)
    payload = json.dumps(
        {
            "tables": tables,
            "policy": policy.model_dump(mode="json"),
            "day": local.date().isoformat(),
            "after": step.after,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _last_key(session: Session, step: str) -> str | None:
    return session.scalar(
        select(AnalyticsStep.input_key)
        .where(AnalyticsStep.step == step, AnalyticsStep.status == "succeeded")
        .order_by(AnalyticsStep.run_id.desc())
        .limit(1)
    )


def latest_run(session: Session, step: str) -> int | None:
    """The run whose results of ``step`` are current (its newest success)."""
    return session.scalar(
        select(func.max(AnalyticsStep.run_id)).where(
            AnalyticsStep.step == step, AnalyticsStep.status == "succeeded"
        )
    )


def run_queued(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Run the oldest requested recomputation, if any (the worker, every half minute).

    The request is claimed with a conditional update, so two workers never run the same
    one; a run that dies leaves its row ``running`` and its steps' old results in place.
    """
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        run_id = session.scalar(
            select(AnalyticsRun.id)
            .where(AnalyticsRun.status == "queued")
            .order_by(AnalyticsRun.id)
            .limit(1)
        )
        if run_id is None:
            return {"ran": 0}
        claimed = session.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id, AnalyticsRun.status == "queued")
            .values(status="running")
        )
        requested = session.scalar(select(AnalyticsRun.requested).where(AnalyticsRun.id == run_id))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return {"ran": 0}
    only = [s for s in (requested or "").split(",") if s]
    summary = run(engine, settings, only=only or None, trigger="request", queued=run_id)
    return {"ran": 1, "run_id": summary.run_id, "status": summary.status}


def run_nightly(engine: Engine, settings: Settings, *, hour: int = 2) -> dict[str, Any]:
    """Recompute everything once a day after ``hour`` o'clock local time (the worker looks
    every ten minutes; steps whose inputs are unchanged are skipped)."""
    zone = ZoneInfo(settings.timezone)
    now = clock.now().astimezone(zone)
    due = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if now < due:
        return {"ran": 0}
    with make_sessionmaker(engine)() as session:
        last = session.scalar(
            select(func.max(AnalyticsRun.started_at)).where(AnalyticsRun.trigger == "nightly")
        )
    if last is not None and last >= due:
        return {"ran": 0}
    summary = run(engine, settings, trigger="nightly")
    return {"ran": 1, "run_id": summary.run_id, "status": summary.status}


def latest_run_at(session: Session, step: str) -> tuple[int, datetime] | None:
    """The run whose results of ``step`` are current and the moment it counted up to."""
    row = session.execute(
        select(AnalyticsRun.id, AnalyticsRun.as_of).where(
            AnalyticsRun.id == latest_run(session, step)
        )
    ).first()
    return (row.id, row.as_of) if row is not None else None
