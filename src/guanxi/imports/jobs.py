"""Import jobs started from the web page or the API: recorded first (so the request answers
with the job at once), run in a thread of the server process with their own session, read
back with progress, rate and ETA.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.imports.enums import ImportKind, JobStatus
from guanxi.imports.models import ImportJob, ImportRowError
from guanxi.imports.readers import UnreadableFile, open_table
from guanxi.imports.rows import RowError
from guanxi.imports.schemas import ImportJobRead, RowErrorRead
from guanxi.imports.service import (
    DRY_FAILED,
    DRY_FINISHED,
    DRY_RUNNING,
    DRY_STATUSES,
    _actor,
    _start_job,
    check_pending,
    job_errors,
    missing_required,
    run_import,
)
from guanxi.imports.uploads import (
    MESSAGES,
    StoredUpload,
    _column_map,
    _field_error,
    discard_upload,
    load_upload,
    message_in,
)
from guanxi.security.models import User

log = logging.getLogger("guanxi.imports")


def kind_of(value: str | None) -> ImportKind | None:
    """The import kind named by ``value``; None when it names none."""
    return ImportKind(value) if value and value in ImportKind._value2member_map_ else None


def start_job(
    session: Session,
    *,
    kind: ImportKind,
    upload: StoredUpload,
    actor: User | Actor,
    overrides: dict[str, str | None] | None = None,
    dry_run: bool = False,
) -> ImportJob:
    """Check that ``upload`` can be imported as ``kind`` with this mapping and record its job
    (committed), for :func:`run_import` with ``job_id`` to fill in.

    An import of a file whose earlier import did not finish returns that job, to resume.
    Raises :class:`UnreadableFile` (the file) or :class:`ValidationFailed` (the mapping).
    """
    table = open_table(upload.path)
    try:
        cmap = _column_map(kind, table.headers, overrides)
    finally:
        table.close()
    missing = missing_required(kind, cmap)
    if missing:
        raise ValidationFailed(
            [_field_error(("mapping",), "mapping_required", fields=" / ".join(o)) for o in missing]
        )
    who = _actor(actor)
    if not dry_run:
        # No line count here: the request answers at once, the run counts (see _given_job).
        job, _ = _start_job(
            session, kind, upload.path, cmap, None, who, upload.file_name, upload.sha256
        )
        return job
    with write_transaction(session):
        job = ImportJob(
            kind=kind.value,
            file_name=upload.file_name[:255],
            file_sha256=upload.sha256,
            mapping=cmap.as_json(),
            status=DRY_RUNNING,
            rows_total=None,
            rows_done=0,
            created_by=who.id,
            started_at=clock.now(),
        )
        session.add(job)
    return job


def fail_job(session: Session, *, job_id: int, error: str) -> None:
    """Mark a job that stopped on an unexpected error as failed, naming the error's type
    (never its text, which may quote personal data)."""
    with write_transaction(session):
        job = session.get(ImportJob, job_id, populate_existing=True)
        if job is None:
            return
        dry = job.status in DRY_STATUSES
        job.status = DRY_FAILED if dry else JobStatus.failed.value
        job.finished_at = clock.now()
        job.message = MESSAGES["job_failed"].format(error=error)


def get_job(session: Session, *, job_id: int) -> ImportJob:
    """One job; :class:`NotFound` when there is none."""
    job = session.get(ImportJob, job_id, populate_existing=True)
    if job is None:
        raise NotFound("no such import job")
    return job


def list_jobs(
    session: Session, *, created_by: int | None = None, limit: int = 50
) -> list[ImportJob]:
    """Recent jobs, newest first; ``created_by`` keeps one user's."""
    stmt = select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)
    if created_by is not None:
        stmt = stmt.where(ImportJob.created_by == created_by)
    return list(session.scalars(stmt))


def first_errors(session: Session, *, job_id: int, limit: int) -> tuple[list[RowError], int]:
    """The first ``limit`` rejected-row reports of a job in file order, and how many there are."""
    total = (
        session.scalar(
            select(func.count()).select_from(ImportRowError).where(ImportRowError.job_id == job_id)
        )
        or 0
    )
    return list(islice(job_errors(session, job_id), limit)), total


def to_read(
    job: ImportJob,
    *,
    lang: str = "en",
    errors: list[RowError] | None = None,
    errors_total: int | None = None,
) -> ImportJobRead:
    """A job with its progress figures: share done, rows per second and time left."""
    dry = job.status in DRY_STATUSES
    state: Literal["running", "finished", "failed"]
    if job.status in (JobStatus.running.value, DRY_RUNNING):
        state = "running"
    elif job.status in (JobStatus.finished.value, DRY_FINISHED):
        state = "finished"
    else:
        state = "failed"
    # rows_done is the file row of the last committed batch; row 1 is the header.
    done = max(job.rows_done - 1, 0)
    seconds = max(((job.finished_at or clock.now()) - job.started_at).total_seconds(), 0.0)
    rate = done / seconds if done and seconds > 0 else None
    total = job.rows_total
    progress = 1.0 if state == "finished" else (min(done / total, 1.0) if total else None)
    eta = None
    if state == "running" and rate and total:
        eta = round(max(total - done, 0) / rate)
    kind = kind_of(job.kind)
    return ImportJobRead(
        id=job.id,
        kind=job.kind,
        file_name=job.file_name,
        status=job.status,
        state=state,
        dry_run=dry,
        rows_total=total,
        rows_done=done,
        imported=job.imported,
        updated=job.updated,
        unchanged=job.unchanged,
        rejected=job.rejected,
        errors_total=errors_total,
        message=message_in(lang, "job_failed", job.message) if job.message else None,
        created_by=job.created_by,
        started_at=job.started_at,
        finished_at=job.finished_at,
        seconds=round(seconds, 1),
        progress=progress,
        rate=round(rate, 1) if rate else None,
        eta_seconds=eta,
        errors=[
            RowErrorRead(
                row=e.row,
                column=e.column,
                value=e.value,
                code=e.code,
                message=message_in(lang, e.code, e.message, kind=kind),
            )
            for e in errors or []
        ],
    )


class ImportRunner:
    """Runs imports started from the web page or the API in threads of the server process,
    one per job, each with its own database session.

    A job already running here is not started twice (a double-clicked button). If the
    process stops, the job stays ``running`` and starting the same file again resumes it.
    """

    def __init__(self, sessionmaker: Callable[[], Session]) -> None:
        self._sessionmaker = sessionmaker
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(
        self,
        *,
        job_id: int,
        kind: ImportKind,
        upload: StoredUpload,
        actor: Actor,
        overrides: dict[str, str | None] | None,
        dry_run: bool,
        timezone: str,
    ) -> bool:
        """Run the job in a new thread; False when it is running here already."""
        with self._lock:
            running = self._threads.get(job_id)
            if running is not None and running.is_alive():
                return False
            # The request's context (its id) goes along, so the job's audit entries carry it.
            context = contextvars.copy_context()
            thread = threading.Thread(
                target=context.run,
                args=(self._run, job_id, kind, upload, actor, overrides, dry_run, timezone),
                name=f"import-job-{job_id}",
                daemon=True,  # a stopped server leaves the job resumable, not half-joined
            )
            self._threads[job_id] = thread
            thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running jobs (tests, an orderly shutdown)."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def _run(
        self,
        job_id: int,
        kind: ImportKind,
        upload: StoredUpload,
        actor: Actor,
        overrides: dict[str, str | None] | None,
        dry_run: bool,
        timezone: str,
    ) -> None:
        session = self._sessionmaker()
        try:
            run_import(
                session,
                kind=kind,
                path=upload.path,
                actor=actor,
                overrides=overrides,
                dry_run=dry_run,
                timezone=timezone,
                job_id=job_id,
                dedupe=kind is ImportKind.customers,
            )
        except Exception as exc:  # the thread's top: record the failure on the job
            # The type only: an exception's text may quote a row's personal data.
            log.error("import job %s stopped: %s", job_id, type(exc).__name__)
            session.rollback()
            error = exc.code if isinstance(exc, UnreadableFile) else type(exc).__name__
            try:
                fail_job(session, job_id=job_id, error=error)
            except Exception as again:  # the database itself is failing: the log must say so
                log.error("import job %s not marked failed: %s", job_id, type(again).__name__)
        else:
            if not dry_run:
                discard_upload(upload)
                if kind is ImportKind.customers:
                    self._check_duplicates(session, job_id, actor)
        finally:
            session.close()
            with self._lock:
                if self._threads.get(job_id) is threading.current_thread():
                    del self._threads[job_id]

    @staticmethod
    def _check_duplicates(session: Session, job_id: int, actor: Actor) -> None:
        """The incremental duplicate check of the customers just imported (and any check an
        earlier import left unfinished); its result is a run under Duplicates. The import
        itself is complete whatever happens here: a check that fails stays due."""
        try:
            check_pending(session, actor)
        except Exception as exc:
            session.rollback()
            log.error("duplicate check after import job %s: %s", job_id, type(exc).__name__)


_RUNNER_LOCK = threading.Lock()


def runner(app_state: Any) -> ImportRunner:
    """The app's import runner, made on first use from its sessionmaker."""
    with _RUNNER_LOCK:
        found = getattr(app_state, "import_runner", None)
        if not isinstance(found, ImportRunner):
            found = ImportRunner(app_state.sessionmaker)
            app_state.import_runner = found
        return found


def launch(
    session: Session,
    *,
    runner: ImportRunner,
    directory: Path,
    upload_id: str,
    kind: ImportKind,
    actor: User,
    overrides: dict[str, str | None] | None,
    dry_run: bool,
    timezone: str,
) -> ImportJob:
    """Start importing (or checking) an upload in the background; the job is returned at
    once, its progress is read from the database while ``runner`` works through the file.

    Raises :class:`ValidationFailed` (unknown upload, unusable mapping) or
    :class:`UnreadableFile`.
    """
    upload = load_upload(directory, upload_id)
    job = start_job(
        session, kind=kind, upload=upload, actor=actor, overrides=overrides, dry_run=dry_run
    )
    runner.start(
        job_id=job.id,
        kind=kind,
        upload=upload,
        actor=_actor(actor),
        overrides=overrides,
        dry_run=dry_run,
        timezone=timezone,
    )
    return job


def read_job(session: Session, *, job_id: int, lang: str, errors: int) -> ImportJobRead:
    """A job's progress and report with its first ``errors`` rejected rows, in ``lang``."""
    job = get_job(session, job_id=job_id)
    first, total = first_errors(session, job_id=job.id, limit=errors)
    return to_read(job, lang=lang, errors=first, errors_total=total)
