"""Error codes of the outbound channels and the consent ledger, with their English texts
(translated where shown). Registered with the shared table of error messages when this
module is imported, which every module that raises them does first."""

from __future__ import annotations

from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES

NOTIFY_MESSAGES: dict[str, str] = {
    "outbox_cancel_state": N_("Only a message waiting to be sent can be cancelled ({status})"),
    "outbox_retry_cancelled": N_("A cancelled message cannot be sent again"),
    "sms_params_differ": N_("The English text must use the same placeholders as the Chinese"),
    "sms_param_order": N_(
        "List each placeholder of the text once, in the provider template's order"
    ),
    "sms_template_code": N_("A template code is lower-case letters, digits and _"),
    "quiet_time": N_("Give a time like 21:00"),
    "timezone_unknown": N_("Unknown time zone"),
    "webhook_url": N_("Give an http:// or https:// address"),
    "webhook_events": N_("Choose at least one event"),
    "webhook_event_unknown": N_("Unknown event: {event}"),
    "webhook_disabled": N_("The endpoint is already switched off"),
    "consent_unknown_customer": N_("No such customer"),
}
ERROR_MESSAGES.update(NOTIFY_MESSAGES)
