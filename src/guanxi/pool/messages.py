"""Error codes of the customer pool and their English texts (translated where shown).
Registered with the shared table of error messages when this module is imported, which
every pool module that raises them does first."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

POOL_MESSAGES: dict[str, str] = {
    "pool_taken": N_("{owner} claimed this customer first; it is no longer in the pool"),
    "pool_yours": N_("This customer is already yours"),
    "pool_cap_reached": N_(
        "You have claimed {cap} customers today, the daily limit; claim more tomorrow"
    ),
    "pool_not_owner": N_("Only the customer's owner or a sales manager can release it"),
    "pool_not_owned": N_("This customer is already in the pool"),
    "pool_assignee": N_("Choose an active user who works the sales pipeline"),
    "pool_tag_unknown": N_("No customer has the tag {tag}"),
    "pool_customer_unknown": N_("No such active customer"),
}
ERROR_MESSAGES.update(POOL_MESSAGES)
