"""Import jobs: read a file in batches, clean and validate every row, upsert through the
customer and shipment domains, and keep a resumable checkpoint.

Each batch is one transaction holding its rows, its rejected-row reports and the job's new
checkpoint (``rows_done``) together, so a process killed at any moment leaves whole batches
or nothing, and re-running the same file resumes after the last committed batch. Because
rows are matched to stored records (customer number, strong identifiers, waybill number),
re-running a finished file changes nothing either.

The web page and the API start a job first (:func:`start_job`, so its id can be answered at
once) and run it in a thread of the server process (:class:`ImportRunner`); the file is an
upload stored under the data directory (:func:`save_upload`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from pathlib import Path, PureWindowsPath
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock, i18n
from guanxi.core.db import table_of, write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.customers import bulk as customer_bulk
from guanxi.customers.schemas import ContactIn, CustomerCreate
from guanxi.imports.enums import ImportKind, JobStatus
from guanxi.imports.mapping import FIELDS, ColumnMap, build_map, header_key
from guanxi.imports.models import ImportJob, ImportRowError
from guanxi.imports.readers import UnreadableFile, file_sha256, open_table
from guanxi.imports.rows import CSV_ERROR, ParsedRow, RowError, RowParser
from guanxi.imports.schemas import UPLOAD_ID_PATTERN, ImportJobRead, RowErrorRead
from guanxi.security.models import User
from guanxi.shipments import bulk as shipment_bulk
from guanxi.shipments.schemas import ShipmentCreate

BATCH_ROWS = 2000
REPORT_ERRORS = 10_000  # errors listed in a report; all are kept with the job

# A dry run started from the web page or the API keeps its report in a job too, under its own
# statuses: only ``running`` jobs are resumed, and a dry run must never be taken for an
# unfinished import (its counts were never written).
DRY_RUNNING, DRY_FINISHED, DRY_FAILED = "validating", "validated", "dry_failed"

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
        }


Progress = Callable[[int, int | None], None]


def _actor(actor: User | Actor) -> Actor:
    return actor if isinstance(actor, Actor) else Actor(actor.id, actor.username)


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
) -> ImportReport:
    """Import ``path`` as ``kind``. Raises :class:`UnreadableFile` when nothing can be read.

    ``dry_run`` validates every row and writes nothing. A run of a file whose earlier run
    did not finish resumes it. ``job_id`` names a job made by :func:`start_job` to fill in
    instead of finding or making one; a dry run then also records its counts and rejected
    rows in that job (and nothing else), so its report can be followed like an import's.
    """
    started = time.perf_counter()
    table = open_table(path)
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
        for batch in _batches(table.rows(), skip_to, batch_rows):
            parsed = [parser.parse(n, cells) for n, cells in batch]
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
            _finish_job(session, job.id, _actor(actor), report)
        else:
            report.status = DRY_FINISHED
        report.seconds = time.perf_counter() - started
        return report
    finally:
        table.close()


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


def _finish_job(session: Session, job_id: int, actor: Actor, report: ImportReport) -> None:
    with write_transaction(session):
        job = session.get(ImportJob, job_id, populate_existing=True)
        if job is None:  # pragma: no cover - created by this run or the one it resumes
            raise RuntimeError(f"import job {job_id} vanished")
        job.status = JobStatus.finished.value
        job.finished_at = clock.now()
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
        model = parser.validate(row, CustomerCreate)
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


def _write_contacts(
    session: Session,
    parser: RowParser,
    parsed: list[ParsedRow],
    actor: Actor,
    job_id: int,
    dry_run: bool,
) -> _Outcome:
    outcome = _Outcome()
    found = _customer_refs(session, parsed)
    items: list[tuple[int, int, ContactIn]] = []
    for row in parsed:
        cid = None if row.errors else _resolve(parser, row, found)
        model = parser.validate(row, ContactIn)
        if row.errors or model is None or cid is None:
            outcome.errors += row.errors
            continue
        items.append((row.row, cid, model))  # type: ignore[arg-type]
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
    found = _customer_refs(session, parsed)
    items: list[tuple[int, ShipmentCreate]] = []
    for row in parsed:
        cid = None if row.errors else _resolve(parser, row, found)
        model = (
            None
            if row.errors or cid is None
            else parser.validate(row, ShipmentCreate, {"customer_id": cid})
        )
        if row.errors or model is None:
            outcome.errors += row.errors
            continue
        items.append((row.row, model))  # type: ignore[arg-type]
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


# ------------------------------------------------------- uploads and jobs from the web / API

PREVIEW_ROWS = 20
PREVIEW_CELL = 200  # characters of a cell shown in a preview
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods")
# Uploads hold personal data in clear: an import that finishes removes its file, and any
# left over (dry runs, abandoned previews) is removed this long after its upload.
UPLOAD_KEEP_SECONDS = 7 * 86400
_CHUNK = 1 << 20

log = logging.getLogger("guanxi.imports")

# English source texts of the codes this section raises (translated at the edges).
MESSAGES: dict[str, str] = {
    "upload_missing": N_("Choose a file to upload"),
    "upload_unknown": N_("This upload is no longer available; upload the file again"),
    "mapping_column_unknown": N_("The file has no column named {column}"),
    "mapping_field_unknown": N_("No such field: {field}"),
    "mapping_duplicate": N_("{field} is chosen for more than one column"),
    "mapping_required": N_("No column is mapped to {fields}"),
    "job_failed": N_("The import stopped with an error ({error}); start it again to resume"),
}

FIELD_LABELS: dict[str, str] = {
    "guanxi_id": N_("Guanxi ID"),
    "external_id": N_("Customer number"),
    "name": N_("Name"),
    "kind": N_("Kind"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "id_number": N_("Resident ID number"),
    "credit_code": N_("Unified social credit code"),
    "address": N_("Address"),
    "province": N_("Province"),
    "city": N_("City"),
    "district": N_("District"),
    "address_detail": N_("Street address"),
    "source": N_("Source"),
    "industry": N_("Industry"),
    "region": N_("Region"),
    "owner": N_("Account manager"),
    "tags": N_("Tags"),
    "birthday": N_("Birthday"),
    "lifecycle_stage": N_("Lifecycle stage"),
    "credit_rating": N_("Credit rating"),
    "notes": N_("Notes"),
    "customer_external_id": N_("Customer: customer number"),
    "customer_credit_code": N_("Customer: credit code"),
    "customer_name": N_("Customer: name"),
    "customer_phone": N_("Customer: phone"),
    "title": N_("Title"),
    "is_primary": N_("Primary contact"),
    "waybill_no": N_("Waybill number"),
    "service_type": N_("Service"),
    "status": N_("Status"),
    "receiver_name": N_("Receiver name"),
    "receiver_phone": N_("Receiver phone"),
    "origin_province": N_("Origin province"),
    "origin_city": N_("Origin city"),
    "dest_province": N_("Destination province"),
    "dest_city": N_("Destination city"),
    "dest_district": N_("Destination district"),
    "weight_g": N_("Weight"),
    "fee_fen": N_("Fee"),
    "insured_value_fen": N_("Insured value"),
    "cod_amount_fen": N_("Cash on delivery"),
    "door_delivery": N_("Door delivery"),
    "signed_receipt_return": N_("Signed-receipt return"),
    "created_at": N_("Created at"),
    "promised_at": N_("Promised"),
    "delivered_at": N_("Delivered at"),
    "is_damaged": N_("Damaged"),
    "is_lost": N_("Lost"),
    "destination": N_("Travel destination"),
    "departure_date": N_("Departure date"),
    "return_date": N_("Return date"),
    "party_size": N_("Party size"),
    "product_name": N_("Product"),
    "quantity": N_("Quantity"),
}
# Where one field name means something else in one kind of file.
_KIND_FIELD_LABELS: dict[tuple[ImportKind, str], str] = {
    (ImportKind.shipments, "kind"): N_("Document type"),
    (ImportKind.contacts, "name"): N_("Contact name"),
}


def field_label(lang: str, kind: ImportKind | None, name: str) -> str:
    """A field's name for people, in ``lang`` (the code itself when it has no label)."""
    text = (kind is not None and _KIND_FIELD_LABELS.get((kind, name))) or FIELD_LABELS.get(name)
    return i18n.gettext(lang, text) if text else name


@cache
def _message_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(template)), re.DOTALL)


def message_in(
    lang: str,
    code: str,
    message: str,
    params: dict[str, Any] | None = None,
    kind: ImportKind | None = None,
) -> str:
    """An import message in ``lang``: the English text of a stored row error or of a
    :class:`FieldError` raised here, translated by its code.

    A stored message carries its values only inside the English text; they are read back
    with the code's template. Field names (``field`` / ``fields``) are shown by their labels.
    """
    template = ERROR_MESSAGES.get(code) or MESSAGES.get(code)
    if template is None or (lang == "en" and params is None):
        return message if lang == "en" or template is None else i18n.gettext(lang, template)
    if params is None:
        if "{" not in template:
            return i18n.gettext(lang, template)
        match = _message_pattern(template).fullmatch(message)
        if match is None:
            return message
        params = match.groupdict()
    shown = dict(params)
    for key in ("field", "fields"):
        if key in shown:
            names = str(shown[key]).split(" / ")
            shown[key] = " / ".join(field_label(lang, kind, n) for n in names)
    try:
        return i18n.gettext(lang, template, **shown)
    except (KeyError, IndexError, ValueError):
        return message


def _field_error(loc: tuple[str, ...], code: str, **params: Any) -> FieldError:
    return FieldError(loc, code, MESSAGES[code].format(**params), params)


class UploadTooLarge(Exception):
    """The uploaded file is over the configured limit (nothing of it is kept)."""


@dataclass(frozen=True)
class StoredUpload:
    """An uploaded file under the data directory, named by its SHA-256 and suffix."""

    upload_id: str
    path: Path
    file_name: str
    size: int

    @property
    def sha256(self) -> str:
        """The content hash (the start of the id)."""
        return self.upload_id[:64]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_upload(
    source: BinaryIO, *, file_name: str, directory: Path, max_bytes: int
) -> StoredUpload:
    """Copy ``source`` into ``directory`` chunk by chunk (never whole in memory), hashing it.

    Raises :class:`UploadTooLarge` past ``max_bytes``. A file is named by its content, so
    the same file uploaded twice is stored once, and importing it again resumes the
    unfinished job of the same file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    _purge_uploads(directory)
    name = PureWindowsPath(file_name).name[:255]  # browsers may send a full Windows path
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in UPLOAD_SUFFIXES else ""
    digest = hashlib.sha256()
    size = 0
    # mkstemp creates the file readable by its owner only: it holds personal data.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".part-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge
                digest.update(chunk)
                out.write(chunk)
        upload_id = digest.hexdigest() + suffix
        path = directory / upload_id
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    name = name or upload_id
    _sidecar(path).write_text(json.dumps({"file_name": name, "size": size}), encoding="utf-8")
    return StoredUpload(upload_id, path, name, size)


def load_upload(directory: Path, upload_id: str) -> StoredUpload:
    """The stored upload ``upload_id``; :class:`ValidationFailed` naming ``upload_id`` when
    the id is malformed or the file is gone (imported, or removed after a week)."""
    path = directory / upload_id
    if re.fullmatch(UPLOAD_ID_PATTERN, upload_id) and path.is_file():
        try:
            meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
            size = path.stat().st_size
        except (OSError, ValueError):
            meta, size = {}, 0
        name = meta.get("file_name") if isinstance(meta, dict) else None
        return StoredUpload(upload_id, path, str(name or upload_id), size)
    raise ValidationFailed([_field_error(("upload_id",), "upload_unknown")])


def discard_upload(upload: StoredUpload) -> None:
    """Remove an upload and its description."""
    upload.path.unlink(missing_ok=True)
    _sidecar(upload.path).unlink(missing_ok=True)


def _purge_uploads(directory: Path) -> None:
    cutoff = time.time() - UPLOAD_KEEP_SECONDS
    for entry in directory.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            continue  # removed meanwhile by another request or process


@dataclass(frozen=True)
class ImportField:
    """A field a column can be mapped to, for the mapping dropdown."""

    name: str
    required: bool
    many: bool


def import_fields(kind: ImportKind) -> list[ImportField]:
    """The fields of ``kind`` in the order the import knows them."""
    required = {name for options in _REQUIRED[kind] for name in options}
    return [ImportField(f.name, f.name in required, f.many) for f in FIELDS[kind]]


@dataclass
class UploadPreview:
    """An upload read as one kind: header, first rows, the mapping and what it lacks."""

    upload: StoredUpload
    kind: ImportKind
    format: str
    encoding: str | None
    headers: list[str]
    rows: list[list[str]]
    columns: list[str | None]  # the field of each column, by position
    mapping: dict[str, str | None]
    unknown_columns: list[str]
    missing_required: list[tuple[str, ...]]


def _column_map(
    kind: ImportKind, headers: list[str], overrides: dict[str, str | None] | None
) -> ColumnMap:
    """:func:`build_map`, refusing overrides that name no column or no field, or give a
    field to two columns (the mapping would otherwise drop one silently)."""
    overrides = {k: (v or None) for k, v in (overrides or {}).items()}
    specs = {f.name: f for f in FIELDS[kind]}
    present = {header_key(h) for h in headers if h}
    errors = [
        _field_error(("mapping", header), "mapping_column_unknown", column=header)
        if header_key(header) not in present
        else _field_error(("mapping", header), "mapping_field_unknown", field=target)
        for header, target in overrides.items()
        if header_key(header) not in present or (target is not None and target not in specs)
    ]
    if errors:
        raise ValidationFailed(errors)
    cmap = build_map(kind, headers, overrides)
    unknown = set(cmap.unknown)
    errors = [
        _field_error(("mapping", header), "mapping_duplicate", field=target)
        for header, target in overrides.items()
        if target is not None and header in unknown
    ]
    if errors:
        raise ValidationFailed(errors)
    return cmap


def preview_upload(
    upload: StoredUpload, *, kind: ImportKind, overrides: dict[str, str | None] | None = None
) -> UploadPreview:
    """Read an upload's header and first rows and propose (or check) its column mapping.

    Raises :class:`UnreadableFile` for a file that cannot be read, :class:`ValidationFailed`
    for overrides that cannot apply.
    """
    table = open_table(upload.path)
    try:
        cmap = _column_map(kind, table.headers, overrides)
        width = len(table.headers)
        rows = [
            [c[:PREVIEW_CELL] for c in (cells + [""] * width)[:width]]
            if cells != [CSV_ERROR]
            else [""] * width
            for _, cells in islice(table.rows(), PREVIEW_ROWS)
        ]
    finally:
        table.close()
    return UploadPreview(
        upload=upload,
        kind=kind,
        format=table.format,
        encoding=table.encoding,
        headers=table.headers,
        rows=rows,
        columns=[cmap.fields[i].name if i in cmap.fields else None for i in range(width)],
        mapping=cmap.as_json(),
        unknown_columns=cmap.unknown,
        missing_required=missing_required(kind, cmap),
    )


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
        dry = job.status in (DRY_RUNNING, DRY_FINISHED, DRY_FAILED)
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
    dry = job.status in (DRY_RUNNING, DRY_FINISHED, DRY_FAILED)
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
    kind = ImportKind(job.kind) if job.kind in ImportKind._value2member_map_ else None
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
        finally:
            session.close()
            with self._lock:
                if self._threads.get(job_id) is threading.current_thread():
                    del self._threads[job_id]


_RUNNER_LOCK = threading.Lock()


def runner(app_state: Any) -> ImportRunner:
    """The app's import runner, made on first use from its sessionmaker."""
    with _RUNNER_LOCK:
        found = getattr(app_state, "import_runner", None)
        if not isinstance(found, ImportRunner):
            found = ImportRunner(app_state.sessionmaker)
            app_state.import_runner = found
        return found


def receive_upload(
    source: BinaryIO, *, file_name: str, kind: ImportKind, directory: Path, max_bytes: int
) -> UploadPreview:
    """Store an uploaded file (:func:`save_upload`) and preview it as ``kind``.

    Raises :class:`UploadTooLarge`, or :class:`UnreadableFile` — a file that cannot be read
    is not kept.
    """
    upload = save_upload(source, file_name=file_name, directory=directory, max_bytes=max_bytes)
    try:
        return preview_upload(upload, kind=kind)
    except UnreadableFile:
        discard_upload(upload)
        raise


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


def upload_id_of(job: ImportJob, directory: Path) -> str | None:
    """The upload a job's file is still stored as (to import it after a dry run), if any."""
    suffix = Path(job.file_name).suffix.lower()
    upload_id = job.file_sha256 + (suffix if suffix in UPLOAD_SUFFIXES else "")
    return upload_id if (directory / upload_id).is_file() else None
