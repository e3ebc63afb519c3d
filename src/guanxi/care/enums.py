"""Coded values of customer-care automation; labels are translated in the UI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class RuleKind(StrEnum):
    """What occasion a care rule greets."""

    birthday = "birthday"  # 生日祝福
    festival = "festival"  # 节日问候 (lunar festivals and national holidays)
    anniversary = "anniversary"  # 入会周年
    winback = "winback"  # 流失挽回: customers at high churn risk
    complaint_thanks = "complaint_thanks"  # 投诉关闭后的感谢


class CareChannel(StrEnum):
    """How a care message goes out."""

    sms = "sms"
    email = "email"
    sms_or_email = "sms_or_email"  # SMS when the customer has a mobile and consents, else e-mail


class RunStatus(StrEnum):
    """Where one rule's run of one day stands."""

    running = "running"
    done = "done"


# Kinds the daily run handles; thanks after a complaint is sent when the ticket closes.
SCHEDULED_KINDS = (RuleKind.birthday, RuleKind.festival, RuleKind.anniversary, RuleKind.winback)
# Kinds that may carry a coupon from the loyalty programme.
COUPON_KINDS = (RuleKind.birthday, RuleKind.anniversary, RuleKind.winback)

# SMS template codes of care messages (mapped to the gateway's template ids by notify).
SMS_TEMPLATES = ("care_greeting", "care_birthday", "care_winback", "care_thanks")

LABELS: dict[str, str] = {
    "birthday": N_("Birthday greeting"),
    "festival": N_("Festival greeting"),
    "anniversary": N_("Membership anniversary"),
    "winback": N_("Win-back"),
    "complaint_thanks": N_("Thanks after a complaint"),
    "sms": N_("SMS"),
    "email": N_("E-mail"),
    "sms_or_email": N_("SMS, else e-mail"),
    "running": N_("Running"),
    "done": N_("Done"),
    "care_greeting": N_("Greeting (care_greeting)"),
    "care_birthday": N_("Birthday (care_birthday)"),
    "care_winback": N_("Win-back (care_winback)"),
    "care_thanks": N_("Thanks (care_thanks)"),
}
