"""Factories of the loyalty tests: shipments written straight to the table (exact times and
fees), and a member with a known ledger."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.shipments.models import Shipment

_serial = itertools.count(1)


def add_shipment(
    session: Session,
    customer_id: int,
    *,
    fee_fen: int,
    at: datetime,
    service_type: str | None = "standard",
    status: str = "delivered",
) -> Shipment:
    """A shipment of ``customer_id`` at ``at`` (committed by the caller's next commit)."""
    shipment = Shipment(
        waybill_no=f"LY{next(_serial):010d}",
        customer_id=customer_id,
        service_type=service_type,
        status=status,
        fee_fen=fee_fen,
        created_at=at,
    )
    session.add(shipment)
    session.flush()
    return shipment


@pytest.fixture
def ship(db: Session) -> Any:
    """``ship(customer_id, fee_fen=..., at=...)`` adds a shipment and commits it."""

    def factory(customer_id: int, **kw: Any) -> Shipment:
        shipment = add_shipment(db, customer_id, **kw)
        db.commit()
        return shipment

    return factory
