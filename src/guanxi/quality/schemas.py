"""The data-quality report's shape (``QualityReport``), shared by the page, the CLI and JSON.

Figures are counts of active customers; percentages are computed from them, never stored.
Examples are customer ids only: the report never carries personal data. New sections (for
example the de-duplication review queue) are added as new fields with a default, so older
readers of the JSON keep working.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, computed_field

from guanxi.quality.enums import CompletenessField, DuplicateRule, InvalidRule, Scope


def percent(part: int, whole: int) -> float | None:
    """``part`` as a percentage of ``whole`` with one decimal; None when there is no whole."""
    return round(part * 100 / whole, 1) if whole else None


class Totals(BaseModel):
    """How many customers there are."""

    model_config = ConfigDict(frozen=True)

    active: int
    archived: int
    # Created in the 30 days up to the report's day, whatever their status now.
    created_last_30_days: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        """Active and archived together."""
        return self.active + self.archived


class FieldCompleteness(BaseModel):
    """How many of the customers a field applies to have it filled in."""

    model_config = ConfigDict(frozen=True)

    field: CompletenessField
    scope: Scope
    filled: int
    # The denominator: active customers of the kinds the field applies to.
    applicable: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing(self) -> int:
        """Applicable customers without the field."""
        return self.applicable - self.filled

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float | None:
        """Share filled, 0-100 (None when no customer is applicable)."""
        return percent(self.filled, self.applicable)


class InvalidValues(BaseModel):
    """Active customers with one kind of invalid or suspicious value."""

    model_config = ConfigDict(frozen=True)

    rule: InvalidRule
    count: int
    # Up to 20 of them, lowest id first.
    examples: list[int]


class DuplicateGroup(BaseModel):
    """One set of active customers sharing a key (the key itself is never shown)."""

    model_config = ConfigDict(frozen=True)

    size: int
    # Up to 10 of the group's customer ids, lowest first.
    customer_ids: list[int]


class DuplicateFigures(BaseModel):
    """Suspected duplicates by one rule: groups sharing a key, and the customers in them."""

    model_config = ConfigDict(frozen=True)

    rule: DuplicateRule
    groups: int
    # Distinct customers in any group of this rule (a customer counts once).
    customers: int
    # Up to 10 groups, those with the lowest customer id first.
    examples: list[DuplicateGroup]


class StaleRecords(BaseModel):
    """Active customers neither updated nor shipping since the cut-off."""

    model_config = ConfigDict(frozen=True)

    months: int
    cutoff: date
    count: int
    active: int
    examples: list[int]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float | None:
        """Share of active customers that are stale, 0-100."""
        return percent(self.count, self.active)


class QualityReport(BaseModel):
    """The whole data-quality report of the customer base on one day."""

    model_config = ConfigDict(frozen=True)

    today: date
    generated_at: datetime
    seconds: float
    totals: Totals
    completeness: list[FieldCompleteness]
    invalid: list[InvalidValues]
    duplicates: list[DuplicateFigures]
    # From de-duplication: pairs waiting for a reviewer, and records already merged away.
    review_queue: int = 0
    merged: int = 0
    stale: StaleRecords

    def field(self, code: CompletenessField | str) -> FieldCompleteness:
        """The completeness figure of one field."""
        return next(f for f in self.completeness if f.field == code)

    def invalid_rule(self, code: InvalidRule | str) -> InvalidValues:
        """The figures of one invalid-value rule."""
        return next(f for f in self.invalid if f.rule == code)

    def duplicate_rule(self, code: DuplicateRule | str) -> DuplicateFigures:
        """The figures of one duplicate rule."""
        return next(f for f in self.duplicates if f.rule == code)
