"""Deletion as anonymisation of the communication log (:mod:`guanxi.privacy.anonymise`):
a deleted customer's interactions and action items stay as dated, typed rows (contact
frequency, cadence statistics) without what was said or who took part."""

from __future__ import annotations

from sqlalchemy.orm import Session

from guanxi.core.scrub import blank_rows
from guanxi.interactions.models import ActionItem, Interaction


def anonymise_interactions_data(
    session: Session, customer_ids: list[int], *, placeholder: str
) -> int:
    """Remove the texts of these customers' interactions and action items inside the
    caller's transaction: summaries and action items' titles become ``placeholder``,
    participants and outcomes go; kinds, times and due dates stay. Returns how many
    interactions were changed."""
    interactions = blank_rows(
        session,
        Interaction.customer_id,
        customer_ids,
        {"summary": placeholder, "participants": None, "outcome": None},
    )
    blank_rows(session, ActionItem.customer_id, customer_ids, {"title": placeholder})
    return interactions
