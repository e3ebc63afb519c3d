"""Coded values of de-duplication."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class PairStatus(StrEnum):
    """Where a suspected duplicate pair stands."""

    pending = "pending"  # in the review queue
    merged = "merged"  # merged (automatically or by a reviewer)
    distinct = "distinct"  # a reviewer said: not the same customer
    # One of the two is no longer an active customer (archived or merged elsewhere).
    obsolete = "obsolete"


class MatchRule(StrEnum):
    """What found a pair: an exact strong identifier decides alone, else the model."""

    id_number = "id_number"
    credit_code = "credit_code"
    model = "model"


class RunMode(StrEnum):
    """A full run scores the whole base; an incremental one only new customers."""

    full = "full"
    incremental = "incremental"


LABELS: dict[str, str] = {
    "pending": N_("Pending review"),
    "merged": N_("Merged"),
    "distinct": N_("Not the same"),
    "obsolete": N_("Obsolete"),
    "id_number": N_("Same ID number"),
    "credit_code": N_("Same credit code"),
    "model": N_("Similar records"),
    "full": N_("Full run"),
    "incremental": N_("Incremental"),
    "name": N_("Name"),
    "phones": N_("Phone"),
    "email": N_("E-mail"),
    "birthday": N_("Birthday"),
    "address": N_("Address"),
}
