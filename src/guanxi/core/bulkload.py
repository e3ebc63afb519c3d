"""Writing many prepared rows at once, below Core's per-row parameter handling.

Core's ``executemany`` of dictionaries spends several microseconds a row building each
parameter set (key lookups, Python-side defaults, one type processor call per value); a file
import writes millions of rows. Here the statement is rendered once, each column's bind
processor — the same one Core applies (UTC datetimes, SQLite's date and time text) — is
applied to the column's values, and the rows go to the driver as tuples: SQLite's
``executemany``, PostgreSQL's ``COPY``. The stored values are the ones Core would store.

Runs on the session's connection, inside the caller's transaction. Columns not named get
their server default (an autoincrement id, NULL); a column with a Python-side default must
be named, which :func:`insert_rows` checks, since Core would have filled it in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Dialect, Table, insert
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any]

# Set by tests to write through Core instead (the stored rows must not differ).
USE_CORE = False


@cache
def _plan(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[tuple[int, Processor]]]:
    unnamed = [
        c.name
        for c in table.columns
        if c.name not in columns and c.default is not None and not c.primary_key
    ]
    if unnamed:
        raise ValueError(f"{table.name}: name the columns with Python defaults: {unnamed}")
    processors: list[tuple[int, Processor]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((index, processor))
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if dialect.name == "postgresql":
        sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
    else:
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
    return sql, processors


def _processed(rows: list[tuple[Any, ...]], processors: list[tuple[int, Processor]]) -> list[Any]:
    if not processors:
        return rows
    out = [list(row) for row in rows]
    for index, processor in processors:
        # Runs of one value (a batch's creation time) are converted once.
        last_in: Any = object()
        last_out: Any = None
        for row in out:
            value = row[index]
            if value is not last_in:
                last_in, last_out = value, processor(value)
            row[index] = last_out
    return out


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``."""
    if not rows:
        return
    names = tuple(columns)
    if USE_CORE:
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    connection = session.connection()
    sql, processors = _plan(table, names, connection.dialect)
    values = _processed(rows, processors)
    raw: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            write = copy.write_row
            for row in values:
                write(row)
        return
    cursor = raw.cursor()
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()
