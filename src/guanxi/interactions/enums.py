"""Coded values of the contact log."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class InteractionKind(StrEnum):
    """How the contact happened."""

    call = "call"
    visit = "visit"
    email = "email"
    chat = "chat"
    meeting = "meeting"
    return_visit = "return_visit"  # 回访


LABELS: dict[str, str] = {
    "call": N_("Call"),
    "visit": N_("Visit"),
    "email": N_("E-mail"),
    "chat": N_("Chat"),
    "meeting": N_("Meeting"),
    "return_visit": N_("Return visit"),
}
