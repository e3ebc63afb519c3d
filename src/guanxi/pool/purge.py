"""Deletion as anonymisation of the customer pool's history
(:mod:`guanxi.privacy.anonymise`): a deleted customer's pool events (claimed, released,
returned) stay for the pool's figures without the notes written about them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from guanxi.core.scrub import clear_column
from guanxi.pool.models import PoolEvent


def anonymise_pool_data(session: Session, customer_ids: list[int]) -> int:
    """Remove the notes of these customers' pool events inside the caller's transaction;
    kinds, owners and times stay. Returns how many events had a note."""
    return clear_column(session, PoolEvent.note, PoolEvent.customer_id.in_(customer_ids))
