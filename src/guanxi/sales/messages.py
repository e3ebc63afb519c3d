"""Error codes of sales and their English texts (translated where shown). Registered with
the shared table of error messages when this module is imported, which every sales module
that raises them does first."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

SALES_MESSAGES: dict[str, str] = {
    "opportunity_unknown": N_("No such opportunity"),
    "opportunity_version_conflict": N_(
        "Someone else changed this opportunity meanwhile; the board shows it as it is now"
    ),
    "opportunity_closed": N_("The opportunity is closed; a sales manager may reopen it"),
    "opportunity_open": N_("Only a won or lost opportunity can be reopened"),
    "opportunity_not_yours": N_("Only the owner or their sales manager may change this"),
    "opportunity_owned": N_("Someone has already claimed this lead"),
    "opportunity_closed_stage": N_("A new opportunity starts in an open stage"),
    "lost_reason_required": N_("Choose why the opportunity was lost"),
    "lost_reason_unknown": N_("Not a reason in the list"),
    "lost_reason_only_lost": N_("Only a lost opportunity has a reason"),
    "sales_owner_unknown": N_("Choose a salesperson of your team"),
    "sales_customer_unknown": N_("No such customer"),
    "lead_converted": N_("The lead is already a customer's"),
    "lead_no_contact": N_("Only a lead from the web form can become a new customer"),
    "next_step_due_without_step": N_("Write the next step for its due date"),
    "team_name_taken": N_("Another team has this name"),
    "team_unknown": N_("No such team"),
    "team_member_elsewhere": N_("{name} is already in another team"),
    "team_member_not_sales": N_("{name} does not work the pipeline"),
    "team_manager_not_manager": N_("The manager must hold the sales manager's rights"),
    "lead_form_too_fast": N_("That was quicker than anyone can type: please try again"),
    "lead_form_stale": N_("The form has expired: please send it again"),
}
ERROR_MESSAGES.update(SALES_MESSAGES)
