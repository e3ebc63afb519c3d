"""Import jobs: read a file in batches, clean and validate every row, upsert through the
customer and shipment domains, and keep a resumable checkpoint.

Each batch is one transaction holding its rows, its rejected-row reports and the job's new
checkpoint (``rows_done``) together, so a process killed at any moment leaves whole batches
or nothing, and re-running the same file resumes after the last committed batch. Because
rows are matched to stored records (customer number, strong identifiers, waybill number),
re-running a finished file changes nothing either.

The web page and the API start a job first (``imports.jobs.start_job``, so its id can be
answered at once) and run it in a thread of the server process (``imports.jobs``); the file
is an upload stored under the data directory (``imports.uploads``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction
from guanxi.customers import bulk as customer_bulk
from guanxi.customers.schemas import ContactIn, CustomerCreate
from guanxi.imports.enums import ImportKind, JobStatus
from guanxi.imports.fast import FastPath, ShipmentFastPath
from guanxi.imports.mapping import ColumnMap, build_map
from guanxi.imports.models import ImportJob, ImportRowError
from guanxi.imports.readers import UnreadableFile, file_sha256, open_table
from guanxi.imports.rows import ParsedRow, RowError, RowParser
from guanxi.security.models import User
from guanxi.shipments import bulk as shipment_bulk
from guanxi.shipments.schemas import ShipmentCreate

BATCH_ROWS = 2000
REPORT_ERRORS = 10_000  # errors listed in a report; all are kept with the job

# A dry run started from the web page or the API keeps its report in a job too, under its own
# statuses: only ``running`` jobs are resumed, and a dry run must never be taken for an
# unfinished import (its counts were never written).
DRY_RUNNING, DRY_FINISHED, DRY_FAILED = "validating", "validated", "dry_failed"
DRY_STATUSES = (DRY_RUNNING, DRY_FINISHED, DRY_FAILED)

# Fields a file must have a column for, per kind (any one of each inner tuple).
_REQUIRED: dict[ImportKind, list[tuple[str, ...]]] = {
    ImportKind.customers: [("name",)],
    ImportKind.contacts: [
        ("name",),
        ("customer_external_id", "customer_credit_code", "customer_name"),
    ],
    ImportKind.shipments: [
        ("waybill_no",),
        ("customer_external_id", "customer_credit_code", "customer_phone"),
    ],
}


@dataclass
class ImportReport:
    """The outcome of one run; ``as_json`` is the CLI's ``--json`` and the API's body."""

    kind: str
    file: str
    format: str
    encoding: str | None
    dry_run: bool
    job_id: int | None = None
    status: str = JobStatus.running.value
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    resumed_from_row: int | None = None
    unknown_columns: list[str] = field(default_factory=list)
    mapping: dict[str, str | None] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    seconds: float = 0.0
    # The duplicate check of the new customers afterwards: merged automatically, queued.
    duplicates: dict[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "kind": self.kind,
            "file": self.file,
            "format": self.format,
            "encoding": self.encoding,
            "dry_run": self.dry_run,
            "job_id": self.job_id,
            "status": self.status,
            "rows": self.rows,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "resumed_from_row": self.resumed_from_row,
            "unknown_columns": self.unknown_columns,
            "mapping": self.mapping,
            "errors": [e.as_dict() for e in self.errors],
            "errors_total": self.errors_total,
            "seconds": round(self.seconds, 3),
            "duplicates": self.duplicates,
        }


Progress = Callable[[int, int | None], None]


def _actor(actor: User | Actor) -> Actor:
    return actor if isinstance(actor, Actor) else Actor(actor.id, actor.username)


def check_new_customers(session: Session, actor: User | Actor) -> dict[str, int]:
    """Check the customers added or changed since the last de-duplication run against the
    base (an incremental run: sure pairs merged, the grey zone queued for review)."""
    from guanxi.dedupe.enums import RunMode
    from guanxi.dedupe.service import run

    result = run(session, actor=_actor(actor), mode=RunMode.incremental)
    return {
        "checked": result.customers,
        "auto_merged": result.auto_merged,
        "queued": result.queued,
    }


def check_pending(session: Session, actor: User | Actor) -> dict[str, int] | None:
    """Run the duplicate check the finished imports still wait for, if any, and clear
    their marks once it has finished; None when none waits.

    An import killed during its check (or stopped before it) leaves its mark, so the next
    run of an import runs the check, even when that run itself adds nothing; a check that
    finished is not run again. One incremental run serves every waiting import: it scores
    everyone added or changed since the last finished run, which is whatever those imports
    wrote.
    """
    # Read before the run: these jobs' rows were all committed before it began, so its
    # reads cover them (a job finishing meanwhile keeps its mark for the next check).
    waiting = list(session.scalars(select(ImportJob.id).where(ImportJob.dedupe_pending.is_(True))))
    if session.in_transaction():
        session.commit()
    if not waiting:
        return None
    figures = check_new_customers(session, actor)
    with write_transaction(session):
        session.execute(
            update(ImportJob).where(ImportJob.id.in_(waiting)).values(dedupe_pending=False)
        )
    return figures


def _owners(session: Session) -> dict[str, int]:
    """Account managers by user name and display name (what a file's 负责人 column holds)."""
    owners: dict[str, int] = {}
    for uid, username, display in session.execute(
        select(User.id, User.username, User.display_name).where(User.is_active.is_(True))
    ):
        owners.setdefault(display, uid)
        owners[username] = uid
        owners[username.lower()] = uid
    return owners


def required_fields(kind: ImportKind) -> set[str]:
    """Every field that can satisfy a required column of ``kind``."""
    return {name for options in _REQUIRED[kind] for name in options}


def missing_required(kind: ImportKind, cmap: ColumnMap) -> list[tuple[str, ...]]:
    """The required fields no column is mapped to (each entry: any one of these fields)."""
    mapped = {spec.name for spec in cmap.fields.values()}
    return [options for options in _REQUIRED[kind] if not mapped & set(options)]


def _check_required(kind: ImportKind, cmap: ColumnMap) -> None:
    for options in missing_required(kind, cmap):
        raise UnreadableFile(
            "mapping_incomplete",
            f"No column for {' / '.join(options)} (headers: {', '.join(cmap.headers)})",
        )


def _count_lines(path: Path) -> int | None:
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        return None
    count = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            count += chunk.count(b"\n")
    return max(count, 1)


def _batches(
    rows: Iterator[tuple[int, list[str]]], skip_to: int, size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for number, cells in rows:
        if number <= skip_to:
            continue
        batch.append((number, cells))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _find_resumable(
    session: Session, kind: ImportKind, sha: str, mapping: dict[str, str | None]
) -> ImportJob | None:
    jobs = session.scalars(
        select(ImportJob)
        .where(
            ImportJob.file_sha256 == sha,
            ImportJob.kind == kind.value,
            ImportJob.status == JobStatus.running.value,
        )
        .order_by(ImportJob.id.desc())
    ).all()
    return next((j for j in jobs if j.mapping == mapping), None)


def run_import(
    session: Session,
    *,
    kind: ImportKind,
    path: Path,
    actor: User | Actor,
    overrides: dict[str, str | None] | None = None,
    dry_run: bool = False,
    timezone: str = "Asia/Shanghai",
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    job_id: int | None = None,
    dedupe: bool = False,
) -> ImportReport:
    """Import ``path`` as ``kind``. Raises :class:`UnreadableFile` when nothing can be read.

    ``dry_run`` validates every row and writes nothing. A run of a file whose earlier run
    did not finish resumes it. ``dedupe``: a customer import that added or changed
    customers records, as it finishes, that their duplicate check is due; the caller runs
    it with :func:`check_pending`. ``job_id`` names a job made by :func:`start_job` to fill in
    instead of finding or making one; a dry run then also records its counts and rejected
    rows in that job (and nothing else), so its report can be followed like an import's.
    """
    started = time.perf_counter()
    table = open_table(path)
    # The application's own objects (models, metadata, every library loaded) number in the
    # millions; each full collection the import's allocations trigger would walk them all,
    # doubling its time. Set aside while it runs: only garbage made since is looked at.
    # (Left frozen if something else had frozen objects first: unfreezing is all or none.)
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        cmap = build_map(kind, table.headers, overrides)
        _check_required(kind, cmap)
        report = ImportReport(
            kind=kind.value,
            file=path.name,
            format=table.format,
            encoding=table.encoding,
            dry_run=dry_run,
            unknown_columns=cmap.unknown,
            mapping=cmap.as_json(),
        )
        total = _count_lines(path)
        job: ImportJob | None = None
        skip_to = 0
        if job_id is not None:
            job = _given_job(session, job_id, cmap, total)
            skip_to = 0 if dry_run else job.rows_done
        elif not dry_run:
            job, skip_to = _start_job(session, kind, path, cmap, total, _actor(actor))
        if job is not None:
            report.job_id = job.id
            report.resumed_from_row = skip_to or None
        if session.in_transaction():
            session.commit()
        parser = RowParser(
            cmap, ZoneInfo(timezone), _owners(session) if kind is ImportKind.customers else None
        )
        session.commit()
        writer = _WRITERS[kind]
        fast = FastPath.of(parser)
        for batch in _batches(table.rows(), skip_to, batch_rows):
            parsed = _parse_batch(parser, fast, batch)
            last_row = batch[-1][0]
            if dry_run:
                outcome = writer(session, parser, parsed, _actor(actor), 0, True)
                session.rollback()
                if job is not None:
                    with write_transaction(session):
                        _store_outcome(session, job.id, outcome, last_row)
                _add_outcome(report, outcome)
            else:
                if job is None:  # pragma: no cover - set above whenever not dry_run
                    raise RuntimeError("import job missing")
                with write_transaction(session):
                    outcome = writer(session, parser, parsed, _actor(actor), job.id, False)
                    _store_outcome(session, job.id, outcome, last_row)
                _add_outcome(report, outcome)
            report.rows = last_row - 1
            if progress is not None:
                progress(last_row - 1, total - 1 if total else None)
        if job is not None and dry_run:
            _finish_dry_run(session, job.id, report)
        elif job is not None:
            _finish_job(session, job.id, _actor(actor), report, dedupe=dedupe)
        else:
            report.status = DRY_FINISHED
        report.seconds = time.perf_counter() - started
        return report
    finally:
        if not frozen_before:
            gc.unfreeze()
        table.close()


def _parse_batch(
    parser: RowParser, fast: FastPath | None, batch: list[tuple[int, list[str]]]
) -> list[ParsedRow]:
    """Every row of a batch parsed: plainly valid rows through the fast path (the values
    the schema would make of them, without running it), the others cleaned for the schema
    and its error report."""
    if fast is None:
        return [parser.parse(n, cells) for n, cells in batch]
    fast.start_batch()
    convert, parse = fast.convert, parser.parse
    return [convert(n, cells) or parse(n, cells) for n, cells in batch]


@dataclass
class _Outcome:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({e.row for e in self.errors})


def _add_outcome(report: ImportReport, outcome: _Outcome) -> None:
    report.imported += outcome.imported
    report.updated += outcome.updated
    report.unchanged += outcome.unchanged
    report.rejected += outcome.rejected_rows
    report.errors_total += len(outcome.errors)
    room = REPORT_ERRORS - len(report.errors)
    if room > 0:
        report.errors.extend(outcome.errors[:room])


def _given_job(session: Session, job_id: int, cmap: ColumnMap, total: int | None) -> ImportJob:
    job = session.get(ImportJob, job_id, populate_existing=True)
    if job is None:
        raise RuntimeError(f"import job {job_id} does not exist")
    if job.mapping != cmap.as_json():
        # Rows must be mapped the way the job was started (and would be resumed).
        raise RuntimeError(f"import job {job_id} was started with another column mapping")
    if job.rows_total is None and total:
        # start_job leaves the count to the run: reading a large file takes seconds.
        with write_transaction(session):
            job.rows_total = total - 1
    return job


def _start_job(
    session: Session,
    kind: ImportKind,
    path: Path,
    cmap: ColumnMap,
    total: int | None,
    actor: Actor,
    file_name: str | None = None,
    sha: str | None = None,
) -> tuple[ImportJob, int]:
    sha = sha or file_sha256(path)
    mapping = cmap.as_json()
    with write_transaction(session):
        job = _find_resumable(session, kind, sha, mapping)
        if job is not None:
            return job, job.rows_done
        job = ImportJob(
            kind=kind.value,
            file_name=(file_name or path.name)[:255],
            file_sha256=sha,
            mapping=mapping,
            status=JobStatus.running.value,
            rows_total=(total - 1) if total else None,
            rows_done=0,
            created_by=actor.id,
            started_at=clock.now(),
        )
        session.add(job)
        session.flush()
        record(
            session,
            actor=actor,
            action="import.started",
            target_type="import_job",
            target_id=job.id,
            after={"kind": kind.value, "file": job.file_name},
        )
    return job, 0


def _store_outcome(session: Session, job_id: int, outcome: _Outcome, last_row: int) -> None:
    if outcome.errors:
        session.execute(
            insert(table_of(ImportRowError)),
            [
                {
                    "job_id": job_id,
                    "row": e.row,
                    "column": (e.column or "")[:100] or None,
                    "value": (e.value or "")[:200] or None,
                    "code": e.code[:50],
                    "message": e.message[:300],
                }
                for e in outcome.errors
            ],
        )
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(
            rows_done=last_row,
            imported=ImportJob.imported + outcome.imported,
            updated=ImportJob.updated + outcome.updated,
            unchanged=ImportJob.unchanged + outcome.unchanged,
            rejected=ImportJob.rejected + outcome.rejected_rows,
        )
    )


def _finish_job(
    session: Session, job_id: int, actor: Actor, report: ImportReport, *, dedupe: bool
) -> None:
    with write_transaction(session):
        job = session.get(ImportJob, job_id, populate_existing=True)
        if job is None:  # pragma: no cover - created by this run or the one it resumes
            raise RuntimeError(f"import job {job_id} vanished")
        job.status = JobStatus.finished.value
        job.finished_at = clock.now()
        # In the same transaction as the finish: no moment when the import is complete and
        # its check neither done nor due.
        job.dedupe_pending = (
            dedupe and job.kind == ImportKind.customers.value and job.imported + job.updated > 0
        )
        # A resumed run reports the whole file, earlier runs' batches included.
        report.imported, report.updated = job.imported, job.updated
        report.unchanged, report.rejected = job.unchanged, job.rejected
        record(
            session,
            actor=actor,
            action="import.finished",
            target_type="import_job",
            target_id=job.id,
            after={
                "imported": job.imported,
                "updated": job.updated,
                "unchanged": job.unchanged,
                "rejected": job.rejected,
            },
        )
    report.status = JobStatus.finished.value
    if report.resumed_from_row:
        stored = session.scalars(
            select(ImportRowError)
            .where(ImportRowError.job_id == job_id)
            .order_by(ImportRowError.id)
            .limit(REPORT_ERRORS)
        ).all()
        report.errors = [RowError(e.row, e.column, e.value, e.code, e.message) for e in stored]
        report.errors_total = (
            session.scalar(
                select(func.count())
                .select_from(ImportRowError)
                .where(ImportRowError.job_id == job_id)
            )
            or 0
        )


def _finish_dry_run(session: Session, job_id: int, report: ImportReport) -> None:
    with write_transaction(session):
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(status=DRY_FINISHED, finished_at=clock.now())
        )
    report.status = DRY_FINISHED


def job_errors(session: Session, job_id: int) -> Iterator[RowError]:
    """Every rejected-row report of a job, in file order (for the CSV download)."""
    stmt = (
        select(ImportRowError)
        .where(ImportRowError.job_id == job_id)
        .order_by(ImportRowError.row, ImportRowError.id)
    )
    for e in session.scalars(stmt.execution_options(yield_per=2000)):
        yield RowError(e.row, e.column, e.value, e.code, e.message)


# ------------------------------------------------------------------------ per kind


Writer = Callable[[Session, RowParser, list[ParsedRow], Actor, int, bool], _Outcome]


def _write_customers(
    session: Session,
    parser: RowParser,
    parsed: list[ParsedRow],
    actor: Actor,
    job_id: int,
    dry_run: bool,
) -> _Outcome:
    outcome = _Outcome()
    items: list[tuple[int, CustomerCreate]] = []
    known: dict[int, int] = {}
    for row in parsed:
        # Validated even when a cell failed cleaning, so the report lists every problem.
        model = row.model or parser.validate(row, CustomerCreate)
        if row.errors or model is None:
            outcome.errors += row.errors
            continue
        items.append((row.row, model))  # type: ignore[arg-type]
        if "guanxi_id" in row.refs:
            known[row.row] = int(row.refs["guanxi_id"])
    if dry_run:
        outcome.imported = len(items)
        return outcome
    if items:
        result = customer_bulk.upsert_customers(
            session, items, actor=actor, job_id=job_id, known_ids=known
        )
        _take(outcome, parser, result)
    return outcome


def _take(
    outcome: _Outcome,
    parser: RowParser,
    result: customer_bulk.BatchResult | shipment_bulk.ShipmentBatchResult,
) -> None:
    """Copy a domain's batch result into the import outcome, naming rejected columns."""
    outcome.imported, outcome.updated = result.created, result.updated
    outcome.unchanged = result.unchanged
    outcome.errors += [
        RowError(r.row, parser.cmap.header_of(r.field), None, r.code, r.message)
        for r in result.rejected
    ]


def _customer_refs(session: Session, parsed: list[ParsedRow]) -> dict[tuple[str, str], int]:
    refs = [p.refs for p in parsed if not p.errors]
    return customer_bulk.find_customer_ids(
        session,
        external_ids=[r["customer_external_id"] for r in refs if "customer_external_id" in r],
        credit_codes=[r["customer_credit_code"] for r in refs if "customer_credit_code" in r],
        phones=[r["customer_phone"] for r in refs if "customer_phone" in r],
        names=[r["customer_name"] for r in refs if "customer_name" in r],
    )


_REF_KEYS = (
    ("customer_external_id", "external_id"),
    ("customer_credit_code", "credit_code"),
    ("customer_phone", "phone"),
    ("customer_name", "name"),
)


def _resolve(parser: RowParser, row: ParsedRow, found: dict[tuple[str, str], int]) -> int | None:
    for ref, key in _REF_KEYS:
        value = row.refs.get(ref)
        if value is not None:
            cid = found.get((key, value))
            if cid is not None:
                return cid
    named = next((ref for ref, _ in _REF_KEYS if ref in row.refs), None)
    if named is None:
        row.errors.append(
            RowError(
                row.row, None, None, "customer_ref_missing", "The row does not name its customer"
            )
        )
    else:
        row.errors.append(
            RowError(
                row.row,
                parser.cmap.header_of(named),
                None,
                "customer_not_found",
                "No customer matches this row",
            )
        )
    return None


def _with_customer(
    session: Session,
    parser: RowParser,
    parsed: list[ParsedRow],
    outcome: _Outcome,
    validate: Callable[[ParsedRow, int | None], BaseModel | None],
) -> list[tuple[ParsedRow, int, Any]]:
    """The rows naming a stored customer that pass ``validate``, with the customer's id;
    the others' errors go to ``outcome`` (contacts and shipments alike)."""
    found = _customer_refs(session, parsed)
    good: list[tuple[ParsedRow, int, Any]] = []
    for row in parsed:
        cid = None if row.errors else _resolve(parser, row, found)
        model = validate(row, cid)
        if row.errors or model is None or cid is None:
            outcome.errors += row.errors
            continue
        good.append((row, cid, model))
    return good


def _write_contacts(
    session: Session,
    parser: RowParser,
    parsed: list[ParsedRow],
    actor: Actor,
    job_id: int,
    dry_run: bool,
) -> _Outcome:
    outcome = _Outcome()
    items = [
        (row.row, cid, model)
        for row, cid, model in _with_customer(
            session, parser, parsed, outcome, lambda row, cid: parser.validate(row, ContactIn)
        )
    ]
    if dry_run:
        outcome.imported = len(items)
        return outcome
    if items:
        result = customer_bulk.add_contacts(session, items, actor=actor)
        outcome.imported, outcome.unchanged = result.updated, result.unchanged
        outcome.errors += [
            RowError(r.row, parser.cmap.header_of("customer_external_id"), None, r.code, r.message)
            for r in result.rejected
        ]
    return outcome


def _write_shipments(
    session: Session,
    parser: RowParser,
    parsed: list[ParsedRow],
    actor: Actor,
    job_id: int,
    dry_run: bool,
) -> _Outcome:
    outcome = _Outcome()

    def validate(row: ParsedRow, cid: int | None) -> BaseModel | None:
        # Without its customer a shipment is not checked further: one error per row.
        if row.errors or cid is None:
            return None
        if row.checked:
            return ShipmentFastPath.model(row.payload, cid)
        return parser.validate(row, ShipmentCreate, {"customer_id": cid})

    items = [
        (row.row, model)
        for row, _cid, model in _with_customer(session, parser, parsed, outcome, validate)
    ]
    if dry_run:
        outcome.imported = len(items)
        return outcome
    if items:
        result = shipment_bulk.upsert_shipments(session, items, actor=actor, job_id=job_id)
        _take(outcome, parser, result)
    return outcome


_WRITERS: dict[ImportKind, Writer] = {
    ImportKind.customers: _write_customers,
    ImportKind.contacts: _write_contacts,
    ImportKind.shipments: _write_shipments,
}
