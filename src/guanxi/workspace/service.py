"""Assembling the 360 view (reads only)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from guanxi.audit.sealing import display_data
from guanxi.audit.service import history
from guanxi.customers.queries import read_customer
from guanxi.security.models import User
from guanxi.shipments import service as shipments
from guanxi.workspace.schemas import Customer360, HistoryEntry


def customer_360(
    session: Session, *, customer_id: int, viewer: User, lang: str = "en"
) -> Customer360:
    """Profile, shipping numbers, recent shipments and the record's history (its sealed
    personal texts masked, "(erased)" in ``lang`` once the customer was anonymised)."""
    return Customer360(
        customer=read_customer(session, customer_id=customer_id, viewer=viewer),
        shipment_stats=shipments.customer_stats(session, customer_id=customer_id),
        recent_shipments=shipments.recent_summaries(session, customer_id=customer_id),
        history=[
            HistoryEntry(
                id=e.id,
                occurred_at=e.occurred_at,
                actor_name=e.actor_name,
                action=e.action,
                before=display_data(session, e.before, reveal=False, lang=lang),
                after=display_data(session, e.after, reveal=False, lang=lang),
            )
            for e in history(session, target_type="customer", target_id=customer_id, limit=50)
        ],
    )
