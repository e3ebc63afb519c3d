"""Readable names of the outbound channels' codes (translated in the UI)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from guanxi.core import i18n
from guanxi.core.i18n import N_
from guanxi.core.web import request_language

LABELS: dict[str, str] = {
    # channels
    "email": N_("E-mail"),
    "sms": N_("SMS"),
    "webhook": N_("Webhook"),
    # categories
    "transactional": N_("Transactional"),
    "service": N_("Service message"),
    "marketing": N_("Marketing"),
    # statuses
    "pending": N_("Waiting"),
    "sending": N_("Sending"),
    "sent": N_("Sent"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    # delivery reports
    "unknown": N_("No report yet"),
    "delivered": N_("Delivered"),
    "undelivered": N_("Not delivered"),
}


def labeller(request: Request) -> Callable[[str | None], str]:
    """A function naming a code in the request's language (unknown codes as they are)."""
    lang = request_language(request)

    def name(code: str | None) -> str:
        if code is None:
            return "—"
        return i18n.gettext(lang, LABELS[code]) if code in LABELS else code

    return name
