"""Retention policies per data category and the purge that enforces them (PIPL art. 19:
personal information is kept no longer than its purpose needs; art. 47: deleted when the
retention period ends).

Each category names its owning domain's functions (``<domain>/purge.py``): they count,
delete or clear rows in batches inside the transaction this module opens, so no table is
written from here. A purge run walks the enabled categories in order, one batch per
transaction, and keeps a report row per category (rows, files, bytes, the oldest record
kept). It is idempotent (what is gone is not found again) and resumable: a run cut short
(a crash, ``max_batches``) stays ``running`` and the next purge continues it with the same
cut-offs. A dry run (preview) counts what a purge would do and changes nothing else.

Some data are not purged on a schedule, and the page says why (:data:`KEPT`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.privacy.retention_models import RetentionPolicy, RetentionReport, RetentionRun

log = logging.getLogger("guanxi.privacy.retention")

ERROR_MESSAGES.update(
    {
        "retention_too_short": N_("Keep this category at least {min_days} days"),
        "retention_too_long": N_("Keep this category at most {max_days} days"),
    }
)

BATCH = 1000


@dataclass(frozen=True)
class Context:
    """What the purge functions need besides the session: the settings (the data
    directory with the files) and who runs the purge (the anonymisation records it)."""

    settings: Settings
    actor: Actor

    @property
    def data_dir(self) -> Path:
        """Where uploads and attachments are stored."""
        return Path(self.settings.data_dir)


@dataclass
class Batch:
    """What one batch did, and what to do once its transaction has committed."""

    rows: int = 0
    files: int = 0
    bytes: int = 0
    after_commit: Callable[[], object] | None = None

    @property
    def empty(self) -> bool:
        """Nothing was left to do."""
        return self.rows == 0 and self.files == 0


@dataclass(frozen=True)
class Category:
    """A data category with a retention rule: labels, the default and allowed periods, the
    legal reference, and the owning domain's functions."""

    key: str
    label: str
    counts_from: str
    legal: str
    default_days: int
    min_days: int
    max_days: int
    # (session, cut-off, context) -> (rows, files, bytes) a purge would remove.
    preview: Callable[[Session, datetime, Context], tuple[int, int, int]]
    # (session, cut-off, batch size, context) -> one batch, inside the run's transaction.
    purge: Callable[[Session, datetime, int, Context], Batch]
    # (session, cut-off or None, context) -> the oldest record kept.
    oldest: Callable[[Session, datetime | None, Context], datetime | None]
    # The purge function opens its own transactions (the anonymisation service).
    own_transaction: bool = False


# --------------------------------------------------------------------------- categories


def _anonymised() -> object:
    from guanxi.privacy.models import Anonymisation

    return select(Anonymisation.customer_id)


def _customers_preview(session: Session, cutoff: datetime, ctx: Context) -> tuple[int, int, int]:
    from guanxi.customers.purge import count_archived

    return count_archived(session, before=cutoff, excluding=_anonymised()), 0, 0


def _customers_purge(session: Session, cutoff: datetime, limit: int, ctx: Context) -> Batch:
    from guanxi.customers.purge import archived_ids
    from guanxi.privacy.anonymise import anonymise_customers

    ids = archived_ids(session, before=cutoff, excluding=_anonymised(), limit=limit)
    if not ids:
        return Batch()
    done = anonymise_customers(
        session,
        customer_ids=ids,
        actor=ctx.actor,
        reason="retention: archived customer",
        settings=ctx.settings,
    )
    return Batch(rows=done)


def _customers_oldest(session: Session, cutoff: datetime | None, ctx: Context) -> datetime | None:
    from guanxi.customers.purge import oldest_archived

    return oldest_archived(session, excluding=_anonymised(), before=cutoff)


def _attachments(recordings: bool) -> tuple[
    Callable[[Session, datetime, Context], tuple[int, int, int]],
    Callable[[Session, datetime, int, Context], Batch],
    Callable[[Session, datetime | None, Context], datetime | None],
]:  # fmt: skip
    from guanxi.tickets import purge as tickets

    def preview(session: Session, cutoff: datetime, ctx: Context) -> tuple[int, int, int]:
        files, size = tickets.count_attachments(session, before=cutoff, recordings=recordings)
        return files, files, size

    def purge(session: Session, cutoff: datetime, limit: int, ctx: Context) -> Batch:
        removed = tickets.purge_attachments(
            session, before=cutoff, recordings=recordings, limit=limit
        )
        root = ctx.data_dir / "attachments"
        return Batch(
            rows=removed.rows,
            files=len(removed.storage_keys),
            bytes=removed.size_bytes,
            after_commit=lambda: tickets.remove_files(root, removed.storage_keys),
        )

    def oldest(session: Session, cutoff: datetime | None, ctx: Context) -> datetime | None:
        return tickets.oldest_attachment(session, recordings=recordings, before=cutoff)

    return preview, purge, oldest


def _imports_preview(session: Session, cutoff: datetime, ctx: Context) -> tuple[int, int, int]:
    from guanxi.imports import purge as imports

    files, size = imports.upload_files(imports.uploads_dir(ctx.data_dir), before=cutoff)
    return imports.count_row_errors(session, before=cutoff), files, size


def _imports_purge(session: Session, cutoff: datetime, limit: int, ctx: Context) -> Batch:
    from guanxi.imports import purge as imports

    rows = imports.purge_row_errors(session, before=cutoff, limit=limit)
    if rows:
        return Batch(rows=rows)
    # Files go once the rows are done; an unlink cannot be rolled back, nor needs to be.
    files, size = imports.purge_upload_files(
        imports.uploads_dir(ctx.data_dir), before=cutoff, limit=limit
    )
    return Batch(files=files, bytes=size)


def _imports_oldest(session: Session, cutoff: datetime | None, ctx: Context) -> datetime | None:
    from guanxi.imports import purge as imports

    times = [
        imports.oldest_row_error(session, before=cutoff),
        imports.oldest_upload_file(imports.uploads_dir(ctx.data_dir), before=cutoff),
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _rows(
    count: Callable[..., int], purge: Callable[..., int], oldest: Callable[..., datetime | None]
) -> tuple[
    Callable[[Session, datetime, Context], tuple[int, int, int]],
    Callable[[Session, datetime, int, Context], Batch],
    Callable[[Session, datetime | None, Context], datetime | None],
]:  # fmt: skip
    """The three functions of a category whose domain deletes or clears rows only."""
    return (
        lambda session, cutoff, ctx: (count(session, before=cutoff), 0, 0),
        lambda session, cutoff, limit, ctx: Batch(rows=purge(session, before=cutoff, limit=limit)),
        lambda session, cutoff, ctx: oldest(session, before=cutoff),
    )


def _build() -> dict[str, Category]:
    from guanxi.analytics import purge as analytics
    from guanxi.dedupe import purge as dedupe
    from guanxi.notify import purge as notify
    from guanxi.security import purge as security
    from guanxi.surveys import purge as surveys

    art19 = N_("PIPL art. 19 (shortest period the purpose needs), art. 47 (deletion)")
    categories = [
        Category(
            "archived_customers",
            N_("Archived customers"),
            N_("after the customer was archived; anonymised, aggregates kept"),
            N_(
                "E-Commerce Law art. 31 (transaction records at least 3 years); "
                "PIPL art. 19, art. 47"
            ),
            1095,
            365,
            3650,
            _customers_preview,
            _customers_purge,
            _customers_oldest,
            own_transaction=True,
        ),
        Category(
            "ticket_attachments",
            N_("Ticket and claim attachments"),
            N_("after upload; files and their rows deleted"),
            N_("Civil Code art. 188 (3-year limitation period for claims); PIPL art. 19"),
            1095,
            365,
            3650,
            *_attachments(recordings=False),
        ),
        Category(
            "call_recordings",
            N_("Call recordings"),
            N_("after upload (audio attachments); files and their rows deleted"),
            art19,
            365,
            30,
            3650,
            *_attachments(recordings=True),
        ),
        Category(
            "outbox_contents",
            N_("Contents of sent messages"),
            N_("after sending; text and address cleared, metadata kept"),
            art19,
            180,
            30,
            1095,
            *_rows(
                notify.count_message_contents,
                notify.clear_message_contents,
                notify.oldest_message_content,
            ),
        ),
        Category(
            "import_files",
            N_("Import files and rejected rows"),
            N_("after upload (files) or the end of the import (rejected rows)"),
            N_("PIPL art. 19: temporary data deleted after use"),
            7,
            1,
            90,
            _imports_preview,
            _imports_purge,
            _imports_oldest,
        ),
        Category(
            "sessions_tokens",
            N_("Ended sessions and API tokens"),
            N_("after expiry or revocation"),
            art19,
            30,
            1,
            365,
            *_rows(security.count_ended_tokens, security.purge_ended_tokens, security.oldest_token),
        ),
        Category(
            "login_failures",
            N_("Failed sign-in records"),
            N_("after the failed attempt (kept only for the lockout window)"),
            art19,
            7,
            1,
            90,
            *_rows(
                security.count_login_failures,
                security.purge_login_failures,
                security.oldest_login_failure,
            ),
        ),
        Category(
            "survey_links",
            N_("Unanswered survey invitations"),
            N_("after the link expired"),
            art19,
            90,
            30,
            730,
            *_rows(
                surveys.count_expired_invitations,
                surveys.purge_expired_invitations,
                surveys.oldest_invitation,
            ),
        ),
        Category(
            "dedupe_pairs",
            N_("Decided duplicate pairs"),
            N_("after the merge (pairs marked distinct are kept)"),
            art19,
            365,
            30,
            1825,
            *_rows(
                dedupe.count_decided_pairs, dedupe.purge_decided_pairs, dedupe.oldest_decided_pair
            ),
        ),
        Category(
            "analytics_runs",
            N_("Old analytics snapshots"),
            N_("after the run, once its results were replaced"),
            art19,
            730,
            90,
            3650,
            *_rows(analytics.count_spent_runs, analytics.purge_spent_runs, analytics.oldest_run),
        ),
    ]
    return {c.key: c for c in categories}


CATEGORIES: dict[str, Category] = _build()

# Data kept on purpose or never stored, with the reason shown on the retention page.
KEPT: dict[str, tuple[str, str]] = {
    "audit_log": (
        N_("Audit log"),
        N_(
            "Kept: append-only and hash-chained, so no entry can be removed without breaking "
            "the chain that proves nothing was altered (Cybersecurity Law art. 21: logs at "
            "least six months; PIPL art. 54 audits). Entries hold no identifiers in clear."
        ),
    ),
    "selfservice_proofs": (
        N_("Self-service proofs and rate limits"),
        N_(
            "Not stored: a lookup proof is a signed token valid 30 minutes, held by the "
            "customer's browser; rate-limit counters live in memory only."
        ),
    ),
    "export_files": (
        N_("Export files"),
        N_(
            "Not stored on the server: exports are streamed to the person who asked for them "
            "and audited; nothing stays behind to purge."
        ),
    ),
}


# --------------------------------------------------------------------------- policies


class PolicyUpdate(BaseModel):
    """A new retention period for one category."""

    model_config = ConfigDict(extra="forbid")

    keep_days: Annotated[int, Field(ge=0, le=36500)]
    enabled: bool = True


class PolicyRead(BaseModel):
    """One category's rule, with its labels in English (translated where shown)."""

    category: str
    label: str
    counts_from: str
    legal: str
    keep_days: int
    default_days: int
    min_days: int
    max_days: int
    enabled: bool
    updated_at: datetime | None


def _read(cat: Category, row: RetentionPolicy | None) -> PolicyRead:
    return PolicyRead(
        category=cat.key,
        label=cat.label,
        counts_from=cat.counts_from,
        legal=cat.legal,
        keep_days=row.keep_days if row else cat.default_days,
        default_days=cat.default_days,
        min_days=cat.min_days,
        max_days=cat.max_days,
        enabled=row.enabled if row else True,
        updated_at=row.updated_at if row else None,
    )


def list_policies(session: Session) -> list[PolicyRead]:
    """Every category's rule, in the order the purge runs them."""
    rows = {r.category: r for r in session.scalars(select(RetentionPolicy))}
    return [_read(cat, rows.get(key)) for key, cat in CATEGORIES.items()]


def update_policy(
    session: Session, *, category: str, policy_in: PolicyUpdate, actor: Actor, user_id: int | None
) -> PolicyRead:
    """Change one category's period (privacy officer); audited as
    ``retention.policy_changed``. A period outside the category's bounds is refused naming
    ``keep_days``; an unknown category is :class:`NotFound`."""
    cat = CATEGORIES.get(category)
    if cat is None:
        raise NotFound("No such retention category", field="category")
    if policy_in.keep_days < cat.min_days:
        raise ValidationFailed(
            [
                FieldError(
                    ("keep_days",),
                    "retention_too_short",
                    f"Keep this category at least {cat.min_days} days",
                    {"min_days": cat.min_days},
                )
            ]
        )
    if policy_in.keep_days > cat.max_days:
        raise ValidationFailed(
            [
                FieldError(
                    ("keep_days",),
                    "retention_too_long",
                    f"Keep this category at most {cat.max_days} days",
                    {"max_days": cat.max_days},
                )
            ]
        )
    with write_transaction(session):
        row = session.get(RetentionPolicy, category)
        before = {"keep_days": row.keep_days, "enabled": row.enabled} if row else None
        if row is None:
            row = RetentionPolicy(category=category)
            session.add(row)
        row.keep_days = policy_in.keep_days
        row.enabled = policy_in.enabled
        row.updated_at = clock.now()
        row.updated_by = user_id
        record(
            session,
            actor=actor,
            action="retention.policy_changed",
            target_type="retention_policy",
            target_id=category,
            before=before,
            after={"keep_days": row.keep_days, "enabled": row.enabled},
        )
    return _read(cat, row)


# --------------------------------------------------------------------------- purge runs


@dataclass
class RunResult:
    """A finished (or paused) run and its report rows."""

    run: RetentionRun
    reports: list[RetentionReport] = field(default_factory=list)

    def figures(self) -> dict[str, dict[str, int]]:
        """Per category: rows, files, bytes."""
        return {
            r.category: {"rows": r.rows, "files": r.files, "bytes": r.bytes} for r in self.reports
        }


def _unfinished(session: Session) -> RetentionRun | None:
    return session.scalar(
        select(RetentionRun)
        .where(RetentionRun.status == "running", RetentionRun.dry_run.is_(False))
        .order_by(RetentionRun.id)
        .limit(1)
    )


def _enabled(session: Session) -> list[tuple[Category, int]]:
    rows = {r.category: r for r in session.scalars(select(RetentionPolicy))}
    chosen = []
    for key, cat in CATEGORIES.items():
        row = rows.get(key)
        if row is None or row.enabled:
            chosen.append((cat, row.keep_days if row else cat.default_days))
    return chosen


def run_purge(
    session: Session,
    *,
    actor: Actor,
    trigger: str,
    settings: Settings,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH,
    max_batches: int | None = None,
) -> RunResult:
    """Purge every enabled category past its period (``dry_run``: only count).

    An unfinished purge is resumed with its cut-offs. ``max_batches`` stops after that many
    batches in all, leaving the run to be resumed (a bounded step; also how a crash is
    simulated). Audited as ``retention.purged`` (or ``retention.previewed``) with the
    figures per category once the run finishes.
    """
    now = now or clock.now()
    ctx = Context(settings=settings, actor=actor)
    with write_transaction(session):
        run = None if dry_run else _unfinished(session)
        if run is None:
            run = RetentionRun(
                started_at=now,
                dry_run=dry_run,
                trigger=trigger,
                actor_name=actor.name[:100],
                status="running",
            )
            session.add(run)
            session.flush()
            for chosen, days in _enabled(session):
                session.add(
                    RetentionReport(
                        run_id=run.id,
                        category=chosen.key,
                        keep_days=days,
                        cutoff=now - timedelta(days=days),
                        rows=0,
                        files=0,
                        bytes=0,
                        finished=False,
                    )
                )
    reports = list(
        session.scalars(
            select(RetentionReport)
            .where(RetentionReport.run_id == run.id)
            .order_by(RetentionReport.id)
        )
    )
    batches = 0
    for report in reports:
        if report.finished:
            continue
        cat = CATEGORIES.get(report.category)
        if cat is None:  # a category since removed from the code
            with write_transaction(session):
                report.finished = True
            continue
        if dry_run:
            rows, files, size = cat.preview(session, report.cutoff, ctx)
            oldest = cat.oldest(session, report.cutoff, ctx)
            with write_transaction(session):
                report.rows, report.files, report.bytes = rows, files, size
                report.oldest_kept = oldest
                report.finished = True
            continue
        while True:
            if max_batches is not None and batches >= max_batches:
                log.info("retention run %s paused after %s batches", run.id, batches)
                return RunResult(run, reports)
            batches += 1
            if cat.own_transaction:
                batch = cat.purge(session, report.cutoff, batch_size, ctx)
                with write_transaction(session):
                    _add(report, batch)
            else:
                with write_transaction(session):
                    batch = cat.purge(session, report.cutoff, batch_size, ctx)
                    _add(report, batch)
            if batch.after_commit is not None:
                batch.after_commit()
            if batch.empty:
                break
        oldest = cat.oldest(session, None, ctx)
        with write_transaction(session):
            report.oldest_kept = oldest
            report.finished = True
    with write_transaction(session):
        run.status = "done"
        run.finished_at = clock.now()
        record(
            session,
            actor=actor,
            action="retention.previewed" if dry_run else "retention.purged",
            target_type="retention_run",
            target_id=run.id,
            after={r.category: {"rows": r.rows, "files": r.files} for r in reports},
        )
    log.info("retention run %s (%s): %s", run.id, "preview" if dry_run else "purge",
             {r.category: r.rows + r.files for r in reports})  # fmt: skip
    return RunResult(run, reports)


def _add(report: RetentionReport, batch: Batch) -> None:
    report.rows += batch.rows
    report.files += batch.files
    report.bytes += batch.bytes


# --------------------------------------------------------------------------- reports


class ReportRow(BaseModel):
    """One category's line of a run's report."""

    model_config = ConfigDict(from_attributes=True)

    category: str
    keep_days: int
    cutoff: datetime
    rows: int
    files: int
    bytes: int
    oldest_kept: datetime | None
    finished: bool


class RunRead(BaseModel):
    """A purge run with its report."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    trigger: str
    actor_name: str
    status: str
    report: list[ReportRow]


def _run_read(session: Session, run: RetentionRun) -> RunRead:
    rows = session.scalars(
        select(RetentionReport).where(RetentionReport.run_id == run.id).order_by(RetentionReport.id)
    )
    return RunRead(
        id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        dry_run=run.dry_run,
        trigger=run.trigger,
        actor_name=run.actor_name,
        status=run.status,
        report=[ReportRow.model_validate(r) for r in rows],
    )


def get_run(session: Session, run_id: int) -> RunRead:
    """One run with its report; :class:`NotFound` when there is none."""
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound("No such purge run", field="run_id")
    return _run_read(session, run)


def recent_runs(session: Session, *, limit: int = 20) -> list[RunRead]:
    """The newest runs (purges and previews), newest first, with their reports."""
    runs = session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(limit))
    return [_run_read(session, run) for run in runs]


def latest_run(session: Session, *, dry_run: bool | None = None) -> RunRead | None:
    """The newest run (of the kind asked for), or None."""
    query = select(RetentionRun).order_by(RetentionRun.id.desc()).limit(1)
    if dry_run is not None:
        query = query.where(RetentionRun.dry_run.is_(dry_run))
    run = session.scalar(query)
    return None if run is None else _run_read(session, run)


CSV_HEADER = [
    "run_id",
    "started_at",
    "dry_run",
    "category",
    "keep_days",
    "cutoff",
    "rows",
    "files",
    "bytes",
    "oldest_kept",
    "finished",
]


def report_csv(run: RunRead) -> str:
    """A run's report as CSV (UTF-8, one line per category; times in UTC, ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in run.report:
        writer.writerow(
            [
                run.id,
                run.started_at.isoformat(),
                "yes" if run.dry_run else "no",
                r.category,
                r.keep_days,
                r.cutoff.isoformat(),
                r.rows,
                r.files,
                r.bytes,
                r.oldest_kept.isoformat() if r.oldest_kept else "",
                "yes" if r.finished else "no",
            ]
        )
    return out.getvalue()


def daily_purge(session: Session, *, settings: Settings, now: datetime) -> dict[str, object]:
    """The worker's job: once per local day, purge every enabled category; an unfinished
    run is resumed whenever the job runs. Figures of the run, or ``{"ran": False}``."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.timezone)
    last = session.scalar(
        select(RetentionRun.started_at)
        .where(RetentionRun.dry_run.is_(False), RetentionRun.status == "done")
        .order_by(RetentionRun.id.desc())
        .limit(1)
    )
    if (
        _unfinished(session) is None
        and last is not None
        and last.astimezone(zone).date() == now.astimezone(zone).date()
    ):
        return {"ran": False}
    result = run_purge(
        session, actor=Actor.system("retention"), trigger="job", settings=settings, now=now
    )
    return {"ran": True, "run_id": result.run.id, **result.figures()}
