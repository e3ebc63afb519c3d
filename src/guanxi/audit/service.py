"""Writing and verifying the audit chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.context import request_id
from guanxi.core.db import HotSelect, serialize_writers, write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.pagination import decode_id_cursor, encode_cursor

GENESIS = "0" * 64
_AUDIT_LOCK = 0x6775_616E  # advisory lock id for the chain head on PostgreSQL


@dataclass(frozen=True)
class Actor:
    """Who did it: a signed-in user, or a named system process (CLI, import, job)."""

    id: int | None
    name: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """An actor for work no user started (demo loader, scheduled jobs)."""
        return cls(None, name)


def _digest(prev_hash: str, entry: AuditEntry) -> str:
    payload = {
        "prev": prev_hash,
        "at": entry.occurred_at.astimezone(UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor": entry.actor_name,
        "action": entry.action,
        "target": [entry.target_type, entry.target_id],
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry to the chain inside the caller's transaction.

    Personal values in ``before``/``after`` must already be masked: the log is readable by
    auditors who may not reveal them.
    """
    serialize_writers(session, _AUDIT_LOCK)
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    entry = AuditEntry(
        occurred_at=clock.now().replace(microsecond=0),
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        request_id=request_id.get(),
        prev_hash=prev or GENESIS,
    )
    entry.hash = _digest(entry.prev_hash, entry)
    session.add(entry)
    session.flush()
    return entry


# One change of :func:`record_many`: target id, before, after.
Change = tuple[str | int, dict[str, Any] | None, dict[str, Any] | None]


def record_many(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    changes: Sequence[Change],
) -> int:
    """Append one entry per change of the same kind (an owner change of many customers)
    inside the caller's transaction: the chain's head is locked and read once and the
    entries are chained in order, so a batch costs one round trip instead of three per
    entry; the chain is exactly what as many :func:`record` calls would write. Returns
    how many entries were added. Same masking rule as :func:`record`."""
    if not changes:
        return 0
    serialize_writers(session, _AUDIT_LOCK)
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev = prev or GENESIS
    at = clock.now().replace(microsecond=0)
    rid = request_id.get()
    entries = []
    for target_id, before, after in changes:
        entry = AuditEntry(
            occurred_at=at,
            actor_id=actor.id,
            actor_name=actor.name,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            before=before,
            after=after,
            request_id=rid,
            prev_hash=prev,
        )
        entry.hash = prev = _digest(entry.prev_hash, entry)
        entries.append(entry)
    session.add_all(entries)
    session.flush()
    return len(entries)


@dataclass(frozen=True)
class ChainProblem:
    """A break in the chain: the row where it shows and what is wrong."""

    entry_id: int
    problem: str


def verify(session: Session, *, batch: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Walk the whole chain in id order; return the number of rows and the breaks found.

    An altered row fails its own hash; a removed or inserted row breaks the next row's link.
    """
    problems: list[ChainProblem] = []
    prev_hash = GENESIS
    # No lower bound at first: a row forged with id 0 or below is walked too.
    last_id: int | None = None
    count = 0
    while True:
        stmt = select(AuditEntry).order_by(AuditEntry.id).limit(batch)
        if last_id is not None:
            stmt = stmt.where(AuditEntry.id > last_id)
        rows = session.scalars(stmt).all()
        if not rows:
            break
        for entry in rows:
            count += 1
            if entry.prev_hash != prev_hash:
                problems.append(
                    ChainProblem(
                        entry.id, "link broken: a row before it was removed, inserted or altered"
                    )
                )
            if _digest(entry.prev_hash, entry) != entry.hash:
                problems.append(ChainProblem(entry.id, "content altered"))
            prev_hash = entry.hash
            last_id = entry.id
        session.expunge_all()
    return count, problems


_HISTORY = HotSelect(
    select(AuditEntry.__table__)
    .where(
        AuditEntry.target_type == bindparam("target_type"),
        AuditEntry.target_id == bindparam("target_id"),
    )
    .order_by(AuditEntry.id.desc())
    .limit(bindparam("limit"))
)


def history(
    session: Session, *, target_type: str, target_id: str | int, limit: int = 200
) -> list[Any]:
    """The newest entries about one record (read-only rows), for its 360 view."""
    params = {"target_type": target_type, "target_id": str(target_id), "limit": limit}
    return _HISTORY.all(session, params)


def save_setting(
    session: Session,
    *,
    model: type[Any],
    key: str,
    text: str,
    actor: Actor,
    user_id: int | None,
    action: str,
    audit_whole: type[BaseModel] | None = None,
) -> None:
    """Replace one JSON configuration row (``model`` has ``key``, ``value``, ``updated_at``,
    ``updated_by``) inside the caller's transaction and audit the top-level entries that
    changed, before and after (the desk, care, pool, campaign and other policies).

    With ``audit_whole`` (the document's pydantic model) the entry holds the whole documents
    instead, even when nothing changed: before is the stored one read through that model
    (its defaults filled in, the defaults alone while none is stored), after the new one.
    The contract and data-subject request policies have always been audited this way."""
    row = session.get(model, key)
    stored = None if row is None else row.value
    if row is None:
        row = model(key=key, value=text)
        session.add(row)
    row.value = text
    row.updated_at = clock.now()
    row.updated_by = user_id
    after = json.loads(text)
    if audit_whole is not None:
        # Read like the domain's own load: an empty value counts as none stored.
        shown = audit_whole.model_validate_json(stored) if stored else audit_whole()
        before: dict[str, Any] | None = shown.model_dump(mode="json")
    else:
        old = None if stored is None else json.loads(stored)
        changed = sorted(k for k in after if old is None or old.get(k) != after[k])
        before = {k: old[k] for k in changed} if old else None
        after = {k: after[k] for k in changed}
    record(
        session,
        actor=actor,
        action=action,
        target_type=model.__tablename__,
        target_id=key,
        before=before,
        after=after,
    )


# --------------------------------------------------------------------------- the viewer


@dataclass(frozen=True)
class AuditQuery:
    """An auditor's search: who (username), which record (type, id), which action, and a
    time range ``[since, until)``; every part optional."""

    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, str]:
        """The parts given, as text (the export's audit entry, the page's links)."""
        out = {}
        for key in ("actor", "target_type", "target_id", "action", "since", "until"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


def _utc(value: datetime, name: str) -> datetime:
    # A time without a zone is read as UTC (the log's own zone).
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 has no UTC time
        raise ValidationFailed(
            [FieldError(("query", name), "value_error", "Invalid value")]
        ) from exc


def _searched(query: AuditQuery) -> Select[AuditEntry]:
    since = _utc(query.since, "since") if query.since else None
    until = _utc(query.until, "until") if query.until else None
    if since and until and until < since:
        raise ValidationFailed(
            [FieldError(("query", "until"), "period_order", "The end must be after the start")]
        )
    stmt = select(AuditEntry)
    if query.actor:
        stmt = stmt.where(AuditEntry.actor_name == query.actor)
    if query.target_type:
        stmt = stmt.where(AuditEntry.target_type == query.target_type)
    if query.target_id:
        stmt = stmt.where(AuditEntry.target_id == query.target_id)
    if query.action:
        stmt = stmt.where(AuditEntry.action == query.action)
    if since:
        stmt = stmt.where(AuditEntry.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEntry.occurred_at < until)
    return stmt


def search(
    session: Session, *, query: AuditQuery, cursor: str | None = None, limit: int = 50
) -> tuple[list[AuditEntry], str | None]:
    """One page of the entries matching ``query``, newest first, and the cursor of the
    next page (None on the last). A tampered cursor is a 422 on ``cursor``."""
    stmt = _searched(query)
    if cursor:
        stmt = stmt.where(AuditEntry.id < decode_id_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1].id]) if more and rows else None


def record_export(session: Session, *, query: AuditQuery, actor: Actor) -> int:
    """Audit a CSV export of ``query`` before it is streamed: who exported which search
    and how many entries, up to the entry that is newest now. Returns that entry's id:
    :func:`export_entries` stops there, so the file holds what the entry says."""
    stmt = _searched(query)
    head = int(session.scalar(select(func.max(AuditEntry.id))) or 0)
    count = session.scalar(
        select(func.count()).select_from(stmt.where(AuditEntry.id <= head).subquery())
    )
    with write_transaction(session):
        record(
            session,
            actor=actor,
            action="audit.exported",
            target_type="audit_log",
            target_id=str(head),
            after={"search": query.as_dict(), "entries": int(count or 0)},
        )
    return head


def export_entries(
    session: Session, *, query: AuditQuery, up_to: int, batch: int = 2000
) -> Iterator[AuditEntry]:
    """Every entry matching ``query`` with an id up to ``up_to``, newest first, read in
    batches (detached from the session as they go: an export may be the whole log)."""
    stmt = _searched(query)
    below = up_to + 1
    while True:
        rows = list(
            session.scalars(
                stmt.where(AuditEntry.id < below).order_by(AuditEntry.id.desc()).limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        below = rows[-1].id
        session.expunge_all()
