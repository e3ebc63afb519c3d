"""Fixed lists of the customer pool, with their labels (translated in the UI)."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class PoolEventKind(StrEnum):
    """Why a customer moved into or out of the pool (a history row's kind)."""

    claimed = "claimed"
    released = "released"
    assigned = "assigned"
    returned_no_follow_up = "returned_no_follow_up"
    returned_contract_ended = "returned_contract_ended"
    # Not a move: the owner was told the customer returns on ``due_on``.
    warned = "warned"


class ReturnRule(StrEnum):
    """The rule that returns an owned customer to the pool."""

    no_follow_up = "no_follow_up"
    contract_ended = "contract_ended"


# The kinds that took a customer out of its owner's hands into the pool.
TO_POOL = (
    PoolEventKind.released.value,
    PoolEventKind.returned_no_follow_up.value,
    PoolEventKind.returned_contract_ended.value,
)
# The kinds that gave a customer its current owner.
TO_OWNER = (PoolEventKind.claimed.value, PoolEventKind.assigned.value)

LABELS: dict[str, str] = {
    "claimed": N_("Claimed"),
    "released": N_("Released to the pool"),
    "assigned": N_("Assigned"),
    "returned_no_follow_up": N_("Returned: no follow-up"),
    "returned_contract_ended": N_("Returned: contract ended"),
    "warned": N_("Return announced"),
    "no_follow_up": N_("No follow-up"),
    "contract_ended": N_("Contract ended"),
}
