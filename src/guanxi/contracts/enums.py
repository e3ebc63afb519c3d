"""Coded values of the contracts domain; labels are translated in the UI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class ContractStatus(StrEnum):
    """Where a contract stands (draft → active → expired / terminated / renewed)."""

    draft = "draft"  # 草拟: terms still open, no amendment history
    active = "active"  # 生效
    expired = "expired"  # 到期: ran to its end without a renewal
    terminated = "terminated"  # 终止: ended early
    renewed = "renewed"  # 已续签: ran to its end and a renewal took over


# States in which a contract is over (it no longer binds either side).
ENDED = (ContractStatus.expired, ContractStatus.terminated, ContractStatus.renewed)

# Customer kinds that sign contracts (individuals ship on list prices).
CONTRACT_KINDS = ("enterprise", "government")

LABELS: dict[str, str] = {
    "draft": N_("Draft"),
    "active": N_("In force"),
    "expired": N_("Expired"),
    "terminated": N_("Terminated"),
    "renewed": N_("Renewed"),
}

# Field names as the forms and the amendment history show them.
FIELD_LABELS: dict[str, str] = {
    "customer_id": N_("Customer"),
    "owner_id": N_("Owner"),
    "title": N_("Contract title"),
    "discount_bp": N_("Discount"),
    "commit_shipments": N_("Monthly shipments committed"),
    "commit_revenue_fen": N_("Monthly revenue committed"),
    "start_date": N_("Start date"),
    "end_date": N_("End date"),
    "auto_renew": N_("Renews automatically"),
    "reminder_days": N_("Reminder days before the end"),
    "notes": N_("Notes"),
    "status": N_("Status"),
    "reason": N_("Reason"),
    "version": N_("Version"),
    "file": N_("File"),
    "month": N_("Month"),
    "ended_on": N_("Effective day"),
}
