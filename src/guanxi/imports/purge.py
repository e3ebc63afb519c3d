"""Retention of import data (temporary data, deleted after use): the uploaded files under
``data_dir/uploads`` and the rejected rows of finished imports (their cell values).

The job rows themselves (file name, counts, who, when) stay as the record of the import.
Called by the retention purge (:mod:`guanxi.privacy.retention`). Deletion as
anonymisation blanks the rejected cells that hold an anonymised person's values
(:func:`anonymise_imports_data`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from guanxi.core.db import rowcount
from guanxi.core.scrub import chunks, contains_any
from guanxi.imports.models import ImportJob, ImportRowError


def uploads_dir(data_dir: Path) -> Path:
    """Where uploaded import files wait for their import: ``<data_dir>/uploads``."""
    return Path(data_dir) / "uploads"


def _of_jobs_finished_before(before: datetime) -> ColumnElement[bool]:
    finished = select(ImportJob.id).where(ImportJob.finished_at < before)
    return ImportRowError.job_id.in_(finished.scalar_subquery())


def count_row_errors(session: Session, *, before: datetime) -> int:
    """Rejected rows kept of imports that finished before ``before``."""
    query = select(func.count(ImportRowError.id)).where(_of_jobs_finished_before(before))
    return int(session.scalar(query) or 0)


def purge_row_errors(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` rejected rows of imports finished before ``before``."""
    ids = list(
        session.scalars(
            select(ImportRowError.id)
            .where(_of_jobs_finished_before(before))
            .order_by(ImportRowError.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(ImportRowError).where(ImportRowError.id.in_(ids))))


def oldest_row_error(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest import whose rejected rows are still kept started."""
    query = select(func.min(ImportJob.started_at)).where(
        ImportJob.id.in_(select(ImportRowError.job_id).distinct())
    )
    if before is not None:
        query = query.where((ImportJob.finished_at.is_(None)) | (ImportJob.finished_at >= before))
    return session.scalar(query)


def _files(directory: Path) -> list[tuple[Path, float, int]]:
    """Every stored upload (and its description) with its modification time and size."""
    found: list[tuple[Path, float, int]] = []
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        try:
            if entry.is_file():
                stat = entry.stat()
                found.append((entry, stat.st_mtime, stat.st_size))
        except OSError:
            continue  # removed meanwhile by another request or process
    return found


def upload_files(directory: Path, *, before: datetime) -> tuple[int, int]:
    """Uploaded files (and their descriptions) last written before ``before``: (files,
    bytes)."""
    cutoff = before.timestamp()
    stale = [(size) for _p, mtime, size in _files(directory) if mtime < cutoff]
    return len(stale), sum(stale)


def purge_upload_files(directory: Path, *, before: datetime, limit: int) -> tuple[int, int]:
    """Remove up to ``limit`` uploaded files last written before ``before``: (files,
    bytes) removed."""
    cutoff = before.timestamp()
    files = removed = 0
    for path, mtime, size in sorted(_files(directory), key=lambda f: f[1]):
        if mtime >= cutoff or files >= limit:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # an import finishing meanwhile removed it
        files += 1
        removed += size
    return files, removed


def oldest_upload_file(directory: Path, *, before: datetime | None = None) -> datetime | None:
    """When the oldest upload still kept was written."""
    cutoff = before.timestamp() if before is not None else float("-inf")
    times = [mtime for _p, mtime, _s in _files(directory) if mtime >= cutoff]
    return datetime.fromtimestamp(min(times), tz=UTC) if times else None


def anonymise_imports_data(session: Session, needles: Iterable[str]) -> int:
    """Blank the cell value of every rejected import row that holds one of these personal
    values (names, identifiers, address lines) inside the caller's transaction (deletion as
    anonymisation, :mod:`guanxi.privacy.anonymise`: a rejected row is not tied to a
    customer, so it is found by its text); the row, column and reason stay in the import's
    report. Returns how many rows were blanked."""
    blanked = 0
    for chunk in chunks(list(needles)):
        blanked += rowcount(
            session.execute(
                update(ImportRowError)
                .where(contains_any(ImportRowError.value, chunk))
                .values(value=None)
            )
        )
    return blanked
