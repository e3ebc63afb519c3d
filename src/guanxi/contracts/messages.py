"""Error codes of the contracts domain and their English texts (translated where shown).
Registered with the shared table of error messages when this module is imported, which
every contracts module that raises them does first."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

CONTRACT_MESSAGES: dict[str, str] = {
    "contract_unknown": N_("No such contract"),
    "contract_customer_kind": N_("Contracts are signed with enterprises and public bodies only"),
    "contract_dates": N_("The end date must be after the start date"),
    "contract_owner_sales": N_("The owner must be an active user who works the sales pipeline"),
    "contract_owner_other": N_("Only a sales manager may give a contract to someone else"),
    "contract_not_yours": N_("Only a sales manager may change another person's contract"),
    "contract_reason_required": N_("Say why the active contract is changed"),
    "contract_not_draft": N_("Only a draft contract can be activated"),
    "contract_not_active": N_("Only an active contract can be changed, renewed or terminated"),
    "contract_overlap": N_("The customer already has an active contract in this period ({number})"),
    "contract_terminate_date": N_("The effective day must fall within the contract's period"),
    "contract_renewed_already": N_("This contract already has a renewal ({number})"),
    "contract_renew_state": N_("Only an active or expired contract can be renewed"),
    "contract_month": N_("Give a month like 2026-11"),
    "contract_discount_pct": N_("Give a percentage from 0 to 100 with at most two decimals"),
}
ERROR_MESSAGES.update(CONTRACT_MESSAGES)
