"""Deletion as anonymisation of loyalty data (:mod:`guanxi.privacy.anonymise`): a deleted
customer's points ledger and coupons stay for the programme's figures (points earned and
spent, coupons issued and redeemed, their dates) without the free texts and references
that could name the person or an order."""

from __future__ import annotations

from sqlalchemy.orm import Session

from guanxi.core.scrub import blank_rows
from guanxi.loyalty.models import Coupon, PointsEntry


def anonymise_loyalty_data(session: Session, customer_ids: list[int]) -> dict[str, int]:
    """Remove the reasons and references of these customers' points entries and the void
    reasons and redemption references of their coupons inside the caller's transaction
    (the ledger stays append-only in its amounts: points, kinds, times and source keys are
    kept). Returns the rows changed per table."""
    return {
        "points_entry": blank_rows(
            session, PointsEntry.customer_id, customer_ids, {"reason": None, "reference": None}
        ),
        "coupon": blank_rows(
            session, Coupon.customer_id, customer_ids, {"void_reason": None, "redeemed_ref": None}
        ),
    }
