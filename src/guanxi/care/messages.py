"""Error codes of customer-care automation and their English texts (translated where
shown). Registered with the shared table of error messages when this module is imported,
which every care module that raises them does first."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

CARE_MESSAGES: dict[str, str] = {
    "care_template_syntax": N_("The template cannot be read (line {line}): {detail}"),
    "care_template_variable": N_("Unknown variable {variable}; you can use: {available}"),
    "care_template_render": N_("The template fails with sample values: {detail}"),
    "care_template_too_long": N_("The message is longer than {limit} characters"),
    "care_template_required": N_("Write the message"),
    "care_subject_required": N_("An e-mail needs a subject"),
    "care_sms_template": N_("Choose the SMS template of the gateway"),
    "care_quiet_hours": N_(
        "The send time {time} falls in the quiet hours ({start}–{end}); choose a time outside them"
    ),
    "care_festivals_required": N_("Choose at least one festival"),
    "care_festivals_kind": N_("Only festival greetings name festivals"),
    "care_festival_unknown": N_("Unknown festival: {code}"),
    "care_coupon_kind": N_("Only birthday, anniversary and win-back messages carry a coupon"),
    "care_coupon_unknown": N_("No active coupon template has the code {code}"),
    "care_segment_unknown": N_("Unknown segment: {value}"),
    "care_rule_unknown": N_("No such care rule"),
    "care_rule_enabled": N_("The rule is already switched on"),
    "care_rule_disabled": N_("The rule is already switched off"),
    "care_date_range": N_("Choose a date within a year of today"),
    "care_send_time": N_("Give a local time like 10:00"),
}
ERROR_MESSAGES.update(CARE_MESSAGES)
