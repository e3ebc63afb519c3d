"""Deletion as anonymisation of shipments (:mod:`guanxi.privacy.anonymise`): a deleted
customer's waybills stay for the statistics (counts, amounts, dates, origin and destination
province and city) without the receiver's name and phone or the tracking notes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core.scrub import blank_rows, clear_column
from guanxi.shipments.models import Shipment, ShipmentEvent


def anonymise_shipments_data(session: Session, customer_ids: list[int]) -> int:
    """Remove the receivers' names and phones (with their blind index) of these customers'
    shipments and their tracking events' notes inside the caller's transaction; counts,
    amounts, dates and places stay. Returns how many shipments were changed."""
    shipments = blank_rows(
        session,
        Shipment.customer_id,
        customer_ids,
        {"receiver_name": None, "receiver_phone_enc": None, "receiver_phone_bidx": None},
    )
    theirs = select(Shipment.id).where(Shipment.customer_id.in_(customer_ids))
    clear_column(session, ShipmentEvent.note, ShipmentEvent.shipment_id.in_(theirs))
    return shipments
