"""Shapes of the 360 view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from guanxi.customers.schemas import CustomerRead
from guanxi.shipments.schemas import ShipmentStats, ShipmentSummary


class HistoryEntry(BaseModel):
    """One audit row about the customer."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    occurred_at: datetime
    actor_name: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Customer360(BaseModel):
    """Everything about one customer on one screen."""

    customer: CustomerRead
    shipment_stats: ShipmentStats
    recent_shipments: list[ShipmentSummary]
    history: list[HistoryEntry]
