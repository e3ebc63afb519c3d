"""Retention of decided duplicate pairs: a pair that was merged, or became obsolete (one
of the two archived or merged elsewhere), names two customers and the comparisons that
agreed; once decided long ago it is deleted (the merge itself keeps its own record for the
undo). Pairs a reviewer marked *distinct* stay: that decision keeps the pair from being
queued again. Called by the retention purge (:mod:`guanxi.privacy.retention`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true, update
from sqlalchemy.orm import Session

from guanxi.core.db import rowcount
from guanxi.dedupe.enums import PairStatus
from guanxi.dedupe.models import CustomerMerge, DuplicatePair

DONE = (PairStatus.merged.value, PairStatus.obsolete.value)


def _decided_before(before: datetime) -> ColumnElement[bool]:
    decided = func.coalesce(DuplicatePair.decided_at, DuplicatePair.created_at)
    return and_(DuplicatePair.status.in_(DONE), decided < before)


def count_decided_pairs(session: Session, *, before: datetime) -> int:
    """Merged or obsolete pairs decided before ``before``."""
    query = select(func.count(DuplicatePair.id)).where(_decided_before(before))
    return int(session.scalar(query) or 0)


def purge_decided_pairs(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` merged or obsolete pairs decided before ``before`` (a merge
    that named one keeps its record; its ``pair_id`` becomes empty)."""
    ids = list(
        session.scalars(
            select(DuplicatePair.id)
            .where(_decided_before(before))
            .order_by(DuplicatePair.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(DuplicatePair).where(DuplicatePair.id.in_(ids))))


def oldest_decided_pair(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest merged or obsolete pair still kept was decided."""
    decided = func.coalesce(DuplicatePair.decided_at, DuplicatePair.created_at)
    kept = true() if before is None else ~_decided_before(before)
    return session.scalar(select(func.min(decided)).where(DuplicatePair.status.in_(DONE), kept))


def anonymise_dedupe_data(session: Session, customer_ids: list[int]) -> int:
    """Forget these customers' duplicate candidates and the stored values of their merges
    inside the caller's transaction (deletion as anonymisation; such a merge can no longer
    be undone, the moved row ids stay for the record). Returns how many pairs were
    deleted."""
    pairs = rowcount(
        session.execute(
            delete(DuplicatePair).where(
                or_(
                    DuplicatePair.left_id.in_(customer_ids),
                    DuplicatePair.right_id.in_(customer_ids),
                )
            )
        )
    )
    # The merge's stored field values (names, notes, ciphertexts) are what an undo would
    # put back.
    session.execute(
        update(CustomerMerge)
        .where(
            or_(
                CustomerMerge.survivor_id.in_(customer_ids),
                CustomerMerge.merged_id.in_(customer_ids),
            )
        )
        .values(fields={})
    )
    return pairs
