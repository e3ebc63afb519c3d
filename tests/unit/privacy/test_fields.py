"""Purposes declared per field: every column of the schema that looks personal is declared
(or listed as not personal with a reason), and every declaration names a real column, a
known retention rule, a purpose and a legal basis."""

from __future__ import annotations

import re

from sqlalchemy import Text

from guanxi import domains
from guanxi.core.db import Base
from guanxi.privacy.fields import (
    CONFIG_TABLES,
    FIELDS,
    LABELS,
    LIFETIME_RULES,
    NOT_PERSONAL,
    declared,
)
from guanxi.privacy.retention import CATEGORIES

# Names that hold personal information wherever they appear: encrypted identifiers and
# their blind indexes, names, contact details, addresses, free texts about a person.
LOOKS_PERSONAL = re.compile(
    r"(_enc|_bidx)$"
    r"|(^|_)(name|username|phone|email|address|detail|notes?|summary|description|body"
    r"|subject|participants|birthday|location|user_agent|evidence|last4|reason|details"
    r"|resolution|filename|value_text|title|token|value)$"
)


def _schema() -> list[tuple[str, str, bool]]:
    domains.load_models()
    return [
        (table.name, column.name, isinstance(column.type, Text))
        for table in Base.metadata.sorted_tables
        for column in table.c
    ]


def test_every_column_that_looks_personal_is_declared() -> None:
    known = declared()
    undeclared = [
        f"{table}.{column}"
        for table, column, is_text in _schema()
        if (LOOKS_PERSONAL.search(column) or is_text)
        and table not in CONFIG_TABLES
        and (table, column) not in known
        and (table, column) not in NOT_PERSONAL
    ]
    assert undeclared == [], (
        "declare these columns in guanxi/privacy/fields.py (or list them in NOT_PERSONAL "
        f"with the reason): {undeclared}"
    )


def test_declarations_name_real_columns_once() -> None:
    columns = {(table, column) for table, column, _text in _schema()}
    pairs = [(f.table, f.column) for f in FIELDS]
    assert len(pairs) == len(set(pairs))
    assert [p for p in pairs if p not in columns] == []
    assert [p for p in NOT_PERSONAL if p not in columns] == []
    assert [p for p in NOT_PERSONAL if p in set(pairs)] == []
    tables = {table for table, _column, _text in _schema()}
    assert sorted(CONFIG_TABLES - tables) == []


def test_declarations_are_complete() -> None:
    rules = set(CATEGORIES) | set(LIFETIME_RULES)
    for f in FIELDS:
        assert f.retention in rules, f
        assert f.purposes, f
        assert all(p.value in LABELS for p in f.purposes), f
        assert f.basis.value in LABELS, f
        assert f.category.value in LABELS, f


def test_identifiers_that_are_sensitive_are_marked() -> None:
    known = declared()
    assert known[("customer", "id_number_enc")].sensitive is True
    assert known[("customer", "id_number_enc")].basis.value == "legal_obligation"
    assert known[("shipment_event", "location")].sensitive is True
    assert known[("customer", "name")].sensitive is False
    assert known[("customer", "birthday")].basis.value == "consent"
    # Every encrypted identifier is declared with its blind index.
    for (table, column), field in known.items():
        if column.endswith("_bidx") and table != "login_failure":
            twin = column.removesuffix("_bidx") + "_enc"
            assert (table, twin) in known, (table, column)
            assert known[(table, twin)].category == field.category
