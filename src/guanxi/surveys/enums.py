"""Coded values of surveys, each with a label translated on the page."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class TemplateKind(StrEnum):
    """What a template mainly measures."""

    csat = "csat"
    nps = "nps"
    multi = "multi"  # multi-dimension: CSAT / NPS with the five service dimensions
    custom = "custom"


class QuestionKind(StrEnum):
    """How a question is answered."""

    csat = "csat"  # overall satisfaction, 1-10
    nps = "nps"  # likelihood to recommend, 0-10
    dimension = "dimension"  # one service dimension, 1-10
    rating = "rating"  # a free rating, 1-5
    single = "single"  # one of the options
    multi = "multi"  # any of the options
    text = "text"


# (lowest, highest) score of the scored kinds.
SCALES: dict[QuestionKind, tuple[int, int]] = {
    QuestionKind.csat: (1, 10),
    QuestionKind.nps: (0, 10),
    QuestionKind.dimension: (1, 10),
    QuestionKind.rating: (1, 5),
}


class Dimension(StrEnum):
    """The service dimensions of the manuals (REQUIREMENTS.md §5)."""

    service_attitude = "service_attitude"
    timeliness = "timeliness"
    process = "process"
    price = "price"
    after_sales = "after_sales"


class VersionStatus(StrEnum):
    """A template version's life: edited as a draft, published (then immutable), retired
    when a newer one is published (its invitations and answers keep pointing at it)."""

    draft = "draft"
    published = "published"
    retired = "retired"


class Trigger(StrEnum):
    """Why a survey was sent or answered."""

    ticket = "ticket"  # a ticket was resolved
    delivery = "delivery"  # a shipment was delivered (sampled)
    relationship = "relationship"  # the periodic relationship survey
    manual = "manual"  # an administrator invited the customer
    outlet = "outlet"  # scanned at an outlet (QR code)
    agent = "agent"  # entered by an agent (paper / phone) without an invitation


class InviteChannel(StrEnum):
    """How the invitation reached the customer."""

    sms = "sms"
    email = "email"
    # No message of its own: the link is only on the ticket's private page.
    link = "link"


class ResponseChannel(StrEnum):
    """Where the answer came from."""

    sms = "sms"
    email = "email"
    link = "link"
    qr = "qr"
    paper = "paper"
    phone = "phone"


class InvitationStatus(StrEnum):
    """An invitation is answered once; expiry is read from its expiry time."""

    open = "open"
    answered = "answered"


class FollowUp(StrEnum):
    """The detractor follow-up of a response: none needed, waiting to be opened, being
    opened (claimed by one process), opened (the ticket exists)."""

    none = "none"
    pending = "pending"
    opening = "opening"
    opened = "opened"


# Promoters score 9-10, passives 7-8, detractors 0-6 (NPS); satisfied is CSAT >= 8; a
# CSAT at or below 4 is a detractor where the survey asked no NPS question.
PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6
SATISFIED_FROM = 8
CSAT_DETRACTOR_UP_TO = 4

LABELS: dict[str, str] = {
    "csat": N_("Overall satisfaction (CSAT)"),
    "nps": N_("Likelihood to recommend (NPS)"),
    "multi": N_("Multi-dimension"),
    "custom": N_("Custom"),
    "dimension": N_("Service dimension"),
    "rating": N_("Rating 1–5"),
    "single": N_("Single choice"),
    "text": N_("Text"),
    "service_attitude": N_("Service attitude"),
    "timeliness": N_("Timeliness"),
    "process": N_("Process"),
    "price": N_("Price reasonableness"),
    "after_sales": N_("After-sales service"),
    "draft": N_("Draft"),
    "published": N_("Published"),
    "retired": N_("Retired"),
    "ticket": N_("After a ticket"),
    "delivery": N_("After delivery"),
    "relationship": N_("Relationship survey"),
    "manual": N_("Invited by hand"),
    "outlet": N_("Outlet QR code"),
    "agent": N_("Entered by an agent"),
    "sms": N_("SMS"),
    "email": N_("E-mail"),
    "link": N_("Private page"),
    "qr": N_("QR code"),
    "paper": N_("Paper"),
    "phone": N_("Phone"),
    "open": N_("Not answered yet"),
    "answered": N_("Answered"),
    "expired": N_("Expired"),
}
# Multiple choice shares its code with nothing else; labelled apart.
LABELS["multi_choice"] = N_("Multiple choice")


def kind_label(kind: str) -> str:
    """The label of a question kind (``multi`` is a template kind too)."""
    return LABELS["multi_choice"] if kind == QuestionKind.multi.value else LABELS.get(kind, kind)
