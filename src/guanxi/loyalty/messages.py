"""Readable names of the loyalty forms' fields (refusals name the field in the user's
language); the error texts themselves live with every other code in
``core/messages.py``."""

from __future__ import annotations

from guanxi.core.i18n import N_

FIELD_NAMES: dict[str, str] = {
    "tiers": N_("Tier"),
    "code": N_("Code"),
    "name_zh": N_("Name (Chinese)"),
    "name_en": N_("Name (English)"),
    "min_spend_fen": N_("Spend threshold"),
    "min_shipments": N_("Shipment threshold"),
    "require_both": N_("Both thresholds"),
    "discount_percent": N_("Discount (%)"),
    "priority_service": N_("Priority service"),
    "coupon_templates": N_("Exclusive coupons"),
    "window_days": N_("Window (days)"),
    "grace_days": N_("Grace period (days)"),
    "earn": N_("Earn rules"),
    "points_per_yuan": N_("Points per yuan"),
    "multipliers": N_("Multipliers"),
    "shipment_bonus": N_("Bonus per shipment"),
    "min_fee_fen": N_("Minimum fee"),
    "expiry_months": N_("Points expire after (months)"),
    "expiring_soon_days": N_("Expiring soon (days)"),
    "points": N_("Points"),
    "reason": N_("Reason"),
    "reference": N_("Order or waybill"),
    "key": N_("Request key"),
    "template_code": N_("Coupon template"),
    "customer_ids": N_("Customers"),
    "customer_id": N_("Customer"),
    "tier": N_("Tier"),
    "segment": N_("Segment"),
    "source_key": N_("Occasion"),
    "kind": N_("Coupon kind"),
    "amount_off_fen": N_("Amount off"),
    "percent_off": N_("Percent off"),
    "free_service": N_("Free service"),
    "valid_from": N_("Valid from"),
    "valid_until": N_("Valid until"),
    "valid_days": N_("Valid for (days)"),
    "total_limit": N_("Total limit"),
    "eligible_tiers": N_("Eligible tiers"),
    "points_price": N_("Points price"),
    "active": N_("Active"),
    "amount_fen": N_("Order amount"),
}
