"""The statements the domains' parts of deletion as anonymisation share
(:mod:`guanxi.privacy.anonymise`; each domain's ``purge`` module): blanking the columns of
the rows that belong to the anonymised customers, and finding and blanking the person's
values in free texts that are not keyed to them (a notification naming a customer, an
import's rejected cell).

Many needles are searched for in few statements: twenty ``LIKE`` terms each, the most
SQLite's parser nests comfortably.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from guanxi.core.db import Base, rowcount, table_of

# Terms per statement: SQLite's parser has a small stack for nesting.
CHUNK = 20


def blank_rows(
    session: Session,
    key: InstrumentedAttribute[Any],
    among: Sequence[int] | Select[Any],
    values: Mapping[str, Any],
) -> int:
    """Set ``values`` on the rows of ``key``'s table whose ``key`` is ``among`` the given
    ids (a list, or a query of them), inside the caller's transaction. Returns how many
    rows were changed."""
    return rowcount(session.execute(update(key.class_).where(key.in_(among)).values(dict(values))))


def clear_column(
    session: Session, column: InstrumentedAttribute[Any], where: ColumnElement[bool]
) -> int:
    """Empty ``column`` (NULL) on its table's rows that match ``where`` and still hold
    something (an empty one needs no rewrite), inside the caller's transaction. Returns
    how many rows were changed."""
    return rowcount(
        session.execute(
            update(column.class_).where(where, column.is_not(None)).values({column.key: None})
        )
    )


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``values`` in slices of ``size``, in order."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def contains_any(column: Any, needles: Iterable[str]) -> ColumnElement[bool]:
    """``column`` holds at least one of ``needles`` (``%`` and ``_`` in them are literal)."""
    return or_(*(column.contains(n, autoescape=True) for n in needles))


def replace_in(
    session: Session, model: type[Base], column: Any, needles: Iterable[str], *, placeholder: str
) -> int:
    """Replace each needle by ``placeholder`` in ``column`` of ``model``'s rows where it
    occurs, longest needle first (a phone's E.164 form before its national digits), inside
    the caller's transaction. Returns how many rows were changed.

    The matching rows are read and rewritten by id: nested SQL ``REPLACE`` calls overflow
    SQLite's parser for many needles."""
    ordered = sorted(needles, key=len, reverse=True)
    table = table_of(model)
    target = table.c[column.key]
    changed: dict[int, str] = {}
    for chunk in chunks(ordered):
        for row_id, text in session.execute(
            select(table.c.id, target).where(contains_any(target, chunk))
        ):
            new = changed.get(row_id, text)
            for needle in ordered:
                new = new.replace(needle, placeholder)
            changed[row_id] = new
    if changed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({column.key: bindparam("new_text")}),
            [{"row_id": k, "new_text": v} for k, v in sorted(changed.items())],
        )
    return len(changed)
