"""Readable names of audit actions (translated in the UI)."""

from __future__ import annotations

from guanxi.core.i18n import N_

ACTION_LABELS: dict[str, str] = {
    "customer.created": N_("Customer created"),
    "customer.updated": N_("Customer updated"),
    "customer.archived": N_("Customer archived"),
    "customer.restored": N_("Customer restored"),
    "customer.revealed": N_("Personal data revealed"),
    "customer.merged": N_("Duplicate merged into this customer"),
    "customer.merged_into": N_("Merged into another customer"),
    "customer.merge_undone": N_("Merge undone"),
    "customer.unmerged": N_("Merge undone: customer restored"),
    "dedupe.run": N_("Duplicate check run"),
    "dedupe.distinct": N_("Marked as not the same customer"),
    "shipment.created": N_("Shipment recorded"),
    "shipment.status_changed": N_("Shipment status changed"),
    "user.created": N_("User created"),
    "user.login": N_("Signed in"),
    "user.logout": N_("Signed out"),
    "user.token_issued": N_("API token issued"),
    "loyalty.enrolled": N_("Enrolled in the membership programme"),
    "loyalty.points_adjusted": N_("Points corrected"),
    "loyalty.bonus_granted": N_("Bonus points granted"),
    "loyalty.points_redeemed": N_("Points spent"),
    "loyalty.policy_saved": N_("Membership rules changed"),
    "coupon.issued": N_("Coupon issued"),
    "coupon.redeemed": N_("Coupon used"),
    "coupon.voided": N_("Coupon voided"),
    "coupon.template_created": N_("Coupon template created"),
    "coupon.template_changed": N_("Coupon template changed"),
    "care.rule_created": N_("Care rule created"),
    "care.rule_changed": N_("Care rule changed"),
    "care.rule_enabled": N_("Care rule switched on"),
    "care.rule_disabled": N_("Care rule switched off"),
    "care.policy_changed": N_("Care policy changed"),
    "care.run_finished": N_("Care rule ran"),
    "care.thanks_queued": N_("Thanks after the complaint queued"),
}
