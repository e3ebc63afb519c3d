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
}
