"""Error codes of campaigns and their English texts (translated where shown), registered
with the shared table of error messages when imported (every campaign module that raises
them imports this first)."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

CAMPAIGN_MESSAGES: dict[str, str] = {
    "campaign_unknown": N_("No such campaign"),
    "campaign_audience_unknown": N_("No such audience"),
    "campaign_variant_duplicate": N_("Each variant needs its own letter"),
    "campaign_sms_template": N_("Choose the SMS template of the gateway"),
    "campaign_sms_template_unknown": N_("No active SMS template has the code {code}"),
    "campaign_subject_required": N_("An e-mail needs a subject"),
    "campaign_body_required": N_("Write the message"),
    "campaign_placeholder": N_("Unknown placeholder {name}; you can use: {available}"),
    "campaign_link_needs_url": N_("A message with a link needs the target URL"),
    "campaign_target_url": N_("Give a web address starting with http:// or https://"),
    "campaign_coupon_unknown": N_("No active coupon template has the code {code}"),
    "campaign_send_at_past": N_("Choose a send time in the future"),
    "campaign_send_at_naive": N_("Give the time with its timezone"),
    "campaign_not_editable": N_("A campaign can only be changed before it is launched"),
    "campaign_not_launchable": N_("The campaign cannot be launched in its state ({status})"),
    "campaign_not_stoppable": N_("The campaign is already stopped"),
}
ERROR_MESSAGES.update(CAMPAIGN_MESSAGES)
