"""Readable names of audit actions (translated in the UI)."""

from __future__ import annotations

from guanxi.core.i18n import N_

ACTION_LABELS: dict[str, str] = {
    "customer.created": N_("Customer created"),
    "customer.updated": N_("Customer updated"),
    "customer.archived": N_("Customer archived"),
    "customer.restored": N_("Customer restored"),
    "customer.revealed": N_("Personal data revealed"),
    "shipment.created": N_("Shipment recorded"),
    "shipment.status_changed": N_("Shipment status changed"),
    "user.created": N_("User created"),
    "user.login": N_("Signed in"),
    "user.logout": N_("Signed out"),
    "user.token_issued": N_("API token issued"),
}
