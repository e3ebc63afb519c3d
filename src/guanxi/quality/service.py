"""The data-quality report: completeness, invalid values, suspected duplicates, stale records.

Read-only. Every figure is computed by the database with a few aggregate queries
(``queries.py``), so the report costs seconds on a million customers and never loads
customers into Python. Blind indexes are compared as opaque strings; nothing is decrypted,
and the report carries customer ids only.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.customers.enums import CustomerKind, CustomerStatus
from guanxi.dedupe.service import pending_count
from guanxi.quality import queries
from guanxi.quality.enums import CompletenessField, DuplicateRule, InvalidRule, Scope
from guanxi.quality.schemas import (
    FieldCompleteness,
    InvalidValues,
    QualityReport,
    StaleRecords,
    Totals,
)

RECENT_DAYS = 30

SCOPE_KINDS: dict[Scope, frozenset[str] | None] = {
    Scope.all: None,
    Scope.individual: frozenset({CustomerKind.individual.value}),
    Scope.organisation: frozenset({CustomerKind.enterprise.value, CustomerKind.government.value}),
    Scope.enterprise: frozenset({CustomerKind.enterprise.value}),
}

# The customers each field applies to: its denominator. Identity documents follow the kind
# (resident ID for people, credit code for organisations); a public body is reached through
# a named contact person just as an enterprise is.
FIELD_SCOPES: dict[CompletenessField, Scope] = {
    CompletenessField.name: Scope.all,
    CompletenessField.kind: Scope.all,
    CompletenessField.phone: Scope.all,
    CompletenessField.email: Scope.all,
    CompletenessField.id_number: Scope.individual,
    CompletenessField.credit_code: Scope.organisation,
    CompletenessField.address: Scope.all,
    CompletenessField.address_district: Scope.all,
    CompletenessField.region: Scope.all,
    CompletenessField.industry: Scope.enterprise,
    CompletenessField.owner: Scope.all,
    CompletenessField.birthday: Scope.individual,
    CompletenessField.source: Scope.all,
    CompletenessField.contacts: Scope.organisation,
}

# Where a rule only makes sense for some kinds (an enterprise's switchboard is fine).
INVALID_SCOPES: dict[InvalidRule, Scope] = {
    rule: Scope.individual if rule is InvalidRule.landline_only else Scope.all
    for rule in InvalidRule
}


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped: 31 March - 1 -> 28/29 Feb)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def quality_report(
    session: Session, *, stale_months: int = 12, today: date | None = None
) -> QualityReport:
    """The data-quality report of the active customers as of ``today`` (default: today, UTC).

    Stale means neither updated nor shipping since the same day ``stale_months`` months
    earlier. Read-only: it never writes; a read transaction it opened is ended before it
    returns.
    """
    if stale_months < 1:
        raise ValueError("stale_months must be at least 1")
    opened_here = not session.in_transaction()
    try:
        return _report(session, stale_months=stale_months, today=today)
    finally:
        if opened_here and session.in_transaction():
            # Nothing was written: ending the read releases the connection and its snapshot.
            session.rollback()


def _report(session: Session, *, stale_months: int, today: date | None) -> QualityReport:
    started = time.perf_counter()
    generated_at = clock.now()
    today = today or generated_at.date()
    cutoff_day = months_before(today, stale_months)
    cutoff = _midnight(cutoff_day)
    counts = queries.count_by_kind(session, today=today, cutoff=cutoff)

    def total(measure: str, scope: Scope = Scope.all) -> int:
        kinds = SCOPE_KINDS[scope]
        return sum(
            by_measure.get(measure, 0)
            for kind, by_measure in counts.items()
            if kinds is None or kind in kinds
        )

    fields = [
        FieldCompleteness(
            field=code, scope=scope, filled=total(code.value, scope), applicable=total("n", scope)
        )
        for code, scope in FIELD_SCOPES.items()
    ]
    invalid_counts = {rule: total(rule.value, scope) for rule, scope in INVALID_SCOPES.items()}
    stale_count = total("stale")
    # Examples only where there is something to find: a rule nobody breaks would otherwise
    # cost a walk over every customer.
    checks = queries.row_checks(today, session.get_bind().dialect.name, cutoff)
    wanted = [rule.value for rule, n in invalid_counts.items() if n]
    if stale_count:
        wanted.append("stale")
    examples = queries.example_ids(session, {code: checks[code] for code in wanted})

    totals = queries.count_totals(session, since=_midnight(today - timedelta(days=RECENT_DAYS)))
    return QualityReport(
        today=today,
        generated_at=generated_at,
        totals=Totals(
            active=totals.get(CustomerStatus.active.value, (0, 0))[0],
            archived=totals.get(CustomerStatus.archived.value, (0, 0))[0],
            created_last_30_days=sum(recent for _, recent in totals.values()),
        ),
        completeness=fields,
        invalid=[
            InvalidValues(rule=rule, count=n, examples=examples.get(rule.value, []))
            for rule, n in invalid_counts.items()
        ],
        duplicates=[queries.duplicates(session, rule) for rule in DuplicateRule],
        review_queue=pending_count(session),
        merged=totals.get(CustomerStatus.merged.value, (0, 0))[0],
        stale=StaleRecords(
            months=stale_months,
            cutoff=cutoff_day,
            count=stale_count,
            active=total("n"),
            examples=examples.get("stale", []),
        ),
        seconds=round(time.perf_counter() - started, 3),
    )
