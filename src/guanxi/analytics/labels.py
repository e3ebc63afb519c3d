"""Words for the analytics' codes (segments, classes, actions, reasons) in the user's
language; pages and the API show these, never the raw codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from guanxi.analytics.service import Reason
from guanxi.core.i18n import N_, gettext

NAMES: dict[str, str] = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalist": N_("Potential loyalist"),
    "new": N_("New"),
    "at_risk": N_("At risk"),
    "cant_lose": N_("Can't lose"),
    "hibernating": N_("Hibernating"),
    "lost": N_("Churned"),
    "prospect": N_("Never shipped"),
    "potential": N_("Potential"),
    "high": N_("High"),
    "medium": N_("Medium"),
    "low": N_("Low"),
    "return_visit": N_("Return visit"),
    "coupon": N_("Coupon"),
    "account_manager_call": N_("Account manager call"),
}

REASONS: dict[str, str] = {
    "never_shipped": N_("No shipment yet"),
    "why_r": N_("R {score}: last shipment {days} days ago"),
    "why_f": N_("F {score}: {count} shipments in {months} months"),
    "why_m": N_("M {score}: ¥{yuan} in {months} months"),
}


def name(code: str | None, lang: str) -> str:
    """The label of a segment, class, relationship or action code."""
    if code is None:
        return ""
    template = NAMES.get(code)
    return gettext(lang, template) if template else code


def reason_text(reason: Reason, lang: str) -> str:
    """One "why" line in ``lang``."""
    values: dict[str, Any] = dict(reason.values)
    if "fen" in values:
        values["yuan"] = f"{Decimal(values.pop('fen')) / 100:,.0f}"
    return gettext(lang, REASONS[reason.key], **values)
