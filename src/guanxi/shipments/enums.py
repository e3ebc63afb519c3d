"""Fixed lists of the shipment domain."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class ShipmentKind(StrEnum):
    """What the transaction is: a waybill, a travel booking, or a generic order."""

    waybill = "waybill"
    booking = "booking"
    order = "order"


class ServiceType(StrEnum):
    """Express product."""

    standard = "standard"
    express = "express"
    same_day = "same_day"
    cold_chain = "cold_chain"
    international = "international"


class ShipmentStatus(StrEnum):
    """Where a shipment is in its life."""

    created = "created"
    picked_up = "picked_up"
    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    delivered = "delivered"
    returned = "returned"
    lost = "lost"
    cancelled = "cancelled"


LABELS: dict[str, str] = {
    "waybill": N_("Waybill"),
    "booking": N_("Booking"),
    "order": N_("Order"),
    "standard": N_("Standard"),
    "express": N_("Express"),
    "same_day": N_("Same-day"),
    "cold_chain": N_("Cold chain"),
    "international": N_("International"),
    "created": N_("Created"),
    "picked_up": N_("Picked up"),
    "in_transit": N_("In transit"),
    "out_for_delivery": N_("Out for delivery"),
    "delivered": N_("Delivered"),
    "returned": N_("Returned"),
    "lost": N_("Lost"),
    "cancelled": N_("Cancelled"),
}
