"""The data-quality report on a small known base: every figure, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.quality.schemas import QualityReport
from guanxi.quality.service import months_before, quality_report
from tests.integration.quality.base import TODAY, build_base


@pytest.fixture
def base(db: Session, make_user: Any) -> dict[str, int]:
    return build_base(db, owner_id=make_user("sales").id)


@contextmanager
def statements(db: Session) -> Iterator[list[str]]:
    """Every SQL statement the session runs inside the block."""
    seen: list[str] = []
    engine = db.get_bind().engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _completeness(report: QualityReport) -> dict[str, tuple[str, int, int, float | None]]:
    return {
        f.field.value: (f.scope.value, f.filled, f.applicable, f.percent)
        for f in report.completeness
    }


def test_every_figure_of_a_known_base(db: Session, base: dict[str, int]) -> None:
    ids = base
    with statements(db) as seen:
        report = quality_report(db, today=TODAY)

    assert (report.today, report.stale.months, report.stale.cutoff) == (
        TODAY,
        12,
        date(2024, 6, 15),
    )
    assert report.totals.model_dump() == {
        "active": 10,
        "archived": 1,
        "created_last_30_days": 9,
        "total": 11,
    }
    assert _completeness(report) == {
        "name": ("all", 10, 10, 100.0),
        "kind": ("all", 10, 10, 100.0),
        "phone": ("all", 6, 10, 60.0),
        "email": ("all", 3, 10, 30.0),
        "id_number": ("individual", 2, 7, 28.6),
        "credit_code": ("organisation", 2, 3, 66.7),
        "address": ("all", 4, 10, 40.0),
        "address_district": ("all", 3, 10, 30.0),
        "region": ("all", 2, 10, 20.0),
        "industry": ("enterprise", 1, 2, 50.0),
        "owner": ("all", 1, 10, 10.0),
        "birthday": ("individual", 3, 7, 42.9),
        "source": ("all", 2, 10, 20.0),
        "contacts": ("organisation", 1, 3, 33.3),
    }
    assert report.field("phone").missing == 4

    assert {i.rule.value: (i.count, i.examples) for i in report.invalid} == {
        "address_no_province": (1, [ids["c2"]]),
        "address_unparsed": (1, [ids["c2"]]),
        "landline_only": (1, [ids["c3"]]),
        "junk_name": (2, [ids["c4"], ids["c5"]]),
        "birthday_future": (1, [ids["c2"]]),
        "birthday_before_1900": (1, [ids["c5"]]),
        "kind_unknown": (0, []),
        "source_unknown": (0, []),
        "lifecycle_unknown": (1, [ids["c7"]]),
        "credit_rating_unknown": (1, [ids["c7"]]),
    }

    def groups(rule: str) -> tuple[int, int, list[tuple[int, list[int]]]]:
        d = report.duplicate_rule(rule)
        return d.groups, d.customers, [(g.size, g.customer_ids) for g in d.examples]

    # The archived c11 shares the mobile too, but only active customers are compared.
    assert groups("phone") == (1, 2, [(2, [ids["c1"], ids["c2"]])])
    assert groups("email") == (1, 2, [(2, [ids["c6"], ids["c8"]])])
    assert groups("id_number") == (1, 2, [(2, [ids["c1"], ids["c9"]])])
    assert groups("credit_code") == (1, 2, [(2, [ids["c6"], ids["c7"]])])
    assert groups("name_district") == (1, 2, [(2, [ids["c6"], ids["c7"]])])

    assert (report.stale.count, report.stale.active, report.stale.percent) == (1, 10, 10.0)
    assert report.stale.examples == [ids["c3"]]

    # Read-only, and a fixed handful of statements whatever the size of the base.
    verbs = {s.lstrip().split(None, 1)[0].upper() for s in seen}
    assert verbs <= {"SELECT", "WITH", "BEGIN", "ROLLBACK", "SAVEPOINT", "RELEASE"}, verbs
    assert sum(s.lstrip().upper().startswith(("SELECT", "WITH")) for s in seen) <= 13


def test_stale_window_follows_the_months(db: Session, base: dict[str, int]) -> None:
    # Two months back (15 April 2025): c10's last shipment (1 March) is too old now.
    short = quality_report(db, stale_months=2, today=TODAY)
    assert short.stale.cutoff == date(2025, 4, 15)
    assert (short.stale.count, short.stale.examples) == (2, sorted([base["c3"], base["c10"]]))
    # 30 months back (15 December 2022): even c3, created in January 2023, is recent.
    long = quality_report(db, stale_months=30, today=TODAY)
    assert (long.stale.count, long.stale.percent, long.stale.examples) == (0, 0.0, [])


def test_junk_names(db: Session) -> None:
    names = {
        "8": True,
        "王": True,
        "xxx商行": True,
        "Test Co": True,
        "未知": True,
        "n/a": True,
        "王小明": False,
        "3M中国有限公司": False,
        "Contoso Express": False,
    }
    ids = {}
    for name in names:
        customer = create_customer(
            db, customer_in=CustomerCreate(name=name), actor=Actor.system("test")
        )
        ids[name] = customer.id
    junk = quality_report(db, today=TODAY).invalid_rule("junk_name")
    assert junk.count == 6
    assert junk.examples == sorted(ids[n] for n, is_junk in names.items() if is_junk)


def test_empty_base(db: Session) -> None:
    report = quality_report(db, today=TODAY)
    assert report.totals.total == 0
    assert all(f.applicable == 0 and f.percent is None for f in report.completeness)
    assert all(i.count == 0 for i in report.invalid)
    assert all(d.groups == d.customers == 0 and d.examples == [] for d in report.duplicates)
    assert (report.stale.count, report.stale.percent) == (0, None)


def test_duplicate_examples_are_capped(db: Session) -> None:
    # Twelve people behind one phone (a shop's counter number): one group, ten ids shown.
    ids = [
        create_customer(
            db,
            customer_in=CustomerCreate(name=f"客户{n:02d}", phones=["13500001234"]),
            actor=Actor.system("test"),
        ).id
        for n in range(12)
    ]
    phone = quality_report(db, today=TODAY).duplicate_rule("phone")
    assert (phone.groups, phone.customers) == (1, 12)
    assert [(g.size, g.customer_ids) for g in phone.examples] == [(12, ids[:10])]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2025, 6, 15), 12, date(2024, 6, 15)),
        (date(2025, 3, 31), 1, date(2025, 2, 28)),
        (date(2024, 3, 31), 1, date(2024, 2, 29)),
        (date(2025, 1, 10), 13, date(2023, 12, 10)),
    ],
)
def test_months_before(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


def test_stale_months_must_be_positive(db: Session) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        quality_report(db, stale_months=0)
