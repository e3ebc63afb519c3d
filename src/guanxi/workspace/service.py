"""Assembling the 360 view (reads only)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from guanxi.audit.service import history
from guanxi.customers.queries import read_customer
from guanxi.security.models import User
from guanxi.shipments import service as shipments
from guanxi.workspace.schemas import Customer360, HistoryEntry


def customer_360(session: Session, *, customer_id: int, viewer: User) -> Customer360:
    """Profile, shipping numbers, recent shipments and the record's history."""
    return Customer360(
        customer=read_customer(session, customer_id=customer_id, viewer=viewer),
        shipment_stats=shipments.customer_stats(session, customer_id=customer_id),
        recent_shipments=shipments.recent_summaries(session, customer_id=customer_id),
        history=[
            HistoryEntry.model_validate(e)
            for e in history(session, target_type="customer", target_id=customer_id, limit=50)
        ],
    )
