"""Retention of ticket and claim attachments (photos, letters) and of call recordings
(audio attachments), which have their own, usually shorter, period.

The purge deletes the rows inside the caller's transaction and hands back the storage
keys; the caller removes the files once that transaction has committed (a file removed
before a rolled-back delete would leave a row pointing at nothing). Called by the
retention purge (:mod:`guanxi.privacy.retention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import rowcount
from guanxi.tickets.attachments import _KEY, _path_of
from guanxi.tickets.models import Attachment, Claim, Ticket, TicketEvent


def _kind(recordings: bool) -> ColumnElement[bool]:
    audio = Attachment.content_type.like("audio/%")
    return audio if recordings else ~audio


def _uploaded_before(before: datetime, recordings: bool) -> ColumnElement[bool]:
    return and_(_kind(recordings), Attachment.uploaded_at < before)


@dataclass(frozen=True)
class RemovedAttachments:
    """Rows deleted by one batch and the files to remove after commit."""

    rows: int
    storage_keys: list[str]
    size_bytes: int


def count_attachments(session: Session, *, before: datetime, recordings: bool) -> tuple[int, int]:
    """Attachments (``recordings``: audio ones only; else all others) uploaded before
    ``before``: (files, bytes)."""
    count, size = session.execute(
        select(func.count(Attachment.id), func.coalesce(func.sum(Attachment.size_bytes), 0)).where(
            _uploaded_before(before, recordings)
        )
    ).one()
    return int(count), int(size)


def purge_attachments(
    session: Session, *, before: datetime, recordings: bool, limit: int
) -> RemovedAttachments:
    """Delete up to ``limit`` attachment rows uploaded before ``before``; their files are
    the caller's to remove after commit (:func:`remove_files`)."""
    rows = session.execute(
        select(Attachment.id, Attachment.storage_key, Attachment.size_bytes)
        .where(_uploaded_before(before, recordings))
        .order_by(Attachment.id)
        .limit(limit)
    ).all()
    if not rows:
        return RemovedAttachments(0, [], 0)
    session.execute(delete(Attachment).where(Attachment.id.in_([r.id for r in rows])))
    return RemovedAttachments(
        len(rows), [r.storage_key for r in rows], sum(r.size_bytes for r in rows)
    )


def remove_files(root: Path, storage_keys: list[str]) -> int:
    """Remove the stored files of deleted attachments; the number removed (a file already
    gone is skipped)."""
    removed = 0
    for key in storage_keys:
        if not _KEY.fullmatch(key):
            continue
        try:
            _path_of(root, key).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def oldest_attachment(
    session: Session, *, recordings: bool, before: datetime | None = None
) -> datetime | None:
    """When the oldest attachment of the kind still kept was uploaded."""
    kept = true() if before is None else Attachment.uploaded_at >= before
    return session.scalar(select(func.min(Attachment.uploaded_at)).where(_kind(recordings), kept))


@dataclass(frozen=True)
class AnonymisedTickets:
    """What :func:`anonymise_tickets_data` changed: rows per table and the attachment
    files to remove once the caller's transaction has committed."""

    counts: dict[str, int]
    storage_keys: list[str]


def anonymise_tickets_data(
    session: Session, customer_ids: list[int], *, placeholder: str
) -> AnonymisedTickets:
    """Remove the personal texts of these customers' tickets and claims inside the
    caller's transaction (deletion as anonymisation, :mod:`guanxi.privacy.anonymise`):
    subjects become ``placeholder``; descriptions, timeline notes, e-mail addresses,
    self-service links, claims' evidence and notes and the attachments go; categories,
    times, statuses, amounts and satisfaction stay for the statistics."""
    now = clock.now()
    tickets = select(Ticket.id).where(Ticket.customer_id.in_(customer_ids))
    claims = select(Claim.id).where(Claim.customer_id.in_(customer_ids))
    # The version and updated_at change: the analytics snapshot's fingerprint of the block
    # changes with them, so its next refresh re-copies the texts (now blank).
    counts = {
        "ticket": rowcount(
            session.execute(
                update(Ticket)
                .where(Ticket.customer_id.in_(customer_ids))
                .values(
                    subject=placeholder,
                    description=None,
                    root_cause=None,
                    contact_email_enc=None,
                    public_token_hash=None,
                    updated_at=now,
                    version=Ticket.version + 1,
                )
            )
        )
    }
    session.execute(
        update(TicketEvent)
        .where(TicketEvent.ticket_id.in_(tickets), TicketEvent.note.is_not(None))
        .values(note=None)
    )
    counts["claim"] = rowcount(
        session.execute(
            update(Claim)
            .where(Claim.customer_id.in_(customer_ids))
            .values(
                evidence=None,
                decision_note=None,
                payout_ref=None,
                version=Claim.version + 1,
            )
        )
    )
    attached = or_(Attachment.ticket_id.in_(tickets), Attachment.claim_id.in_(claims))
    keys = list(session.scalars(select(Attachment.storage_key).where(attached)))
    counts["attachment"] = rowcount(session.execute(delete(Attachment).where(attached)))
    return AnonymisedTickets(counts, keys)
