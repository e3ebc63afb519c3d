"""Everything held about one customer, as JSON or as a zip of CSV files (PIPL art. 45:
access, copy and portability).

The export is driven by the schema, so a table added later is exported without anyone
remembering to: every table with a ``customer_id`` column or a foreign key to the
customer, and every table reached from those by a foreign key (a ticket's timeline and
attachments, a shipment's scan events, a survey answer's items) is read. Tables that hold
customer data but are left out are listed in :data:`EXCLUDED` with the reason;
``tests/integration/privacy/test_export.py`` walks the metadata and fails for a table that
is neither exported nor excluded.

Values are decrypted (the export is a reveal; the caller audits it). Blind indexes,
hashes, storage keys and internal tokens are left out: they mean nothing to the customer
and would help an attacker.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Column, LargeBinary, Table, or_, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.imports.export import neutralise
from guanxi.security.crypto import cipher

# Tables that hold data about customers but are not part of a customer's export.
EXCLUDED: dict[str, str] = {
    "customer_search_token": "name bigrams derived from the name, which is exported",
    "audit_log": "the organisation's tamper-evident record of changes (identifiers masked); "
    "shown to auditors, not a copy of the customer's data",
    "audit_subject_key": "the secret key sealing the customer's texts in the audit log; "
    "a security secret, not data about the customer",
    "notification": "messages to staff; texts naming a customer are not filed by customer",
    "import_row_error": "rejected cells of import files, not tied to any customer record",
    "app_user": "staff accounts, not customers",
    "user_token": "staff sessions and API tokens",
    "webhook_endpoint": "the organisation's integration settings",
    "analytics_term_week": "weekly complaint-term counts over all customers (aggregates)",
    "analytics_kpi": "aggregate figures over all customers",
    "analytics_forecast": "aggregate volume forecasts",
    "analytics_alert": "alerts on aggregate figures",
}

# Columns never exported: machine keys with no meaning to the customer (idempotency keys,
# tracking codes) and values derived from secrets.
_DROPPED_COLUMNS = {
    "storage_key",
    "sha256",
    "source_key",
    "prev_hash",
    "hash",
    "csrf_token",
}
_DROPPED_TABLE_COLUMNS = {
    ("outbox_message", "key"),
    ("outbox_message", "provider_id"),
    ("survey_invitation", "key"),
    ("campaign_recipient", "code"),
}
# Foreign keys to customers not named customer_id: (table, column).
_CUSTOMER = "customer"
# Steps of "reached through" foreign keys followed from the customer's own rows.
_DEPTH = 3


def _dropped(table: str, column: Column[Any]) -> bool:
    name = column.name
    return (
        name.endswith(("_bidx", "_hash"))
        or name in _DROPPED_COLUMNS
        or (table, name) in _DROPPED_TABLE_COLUMNS
        or isinstance(column.type, LargeBinary)
    )


@dataclass(frozen=True)
class Link:
    """How a table's rows are found: ``columns`` equal to the customer's id (a root), or
    a foreign key column pointing at the rows of ``parent`` already found."""

    table: Table
    columns: tuple[str, ...] = ()
    parent: str | None = None
    parent_column: str = "id"
    via: tuple[str, ...] = ()


@dataclass
class Plan:
    """The tables of a customer's export, in reading order."""

    links: list[Link] = field(default_factory=list)

    @property
    def tables(self) -> list[str]:
        """The names of the exported tables."""
        return list(dict.fromkeys(link.table.name for link in self.links))


def _customer_columns(table: Table) -> tuple[str, ...]:
    cols = {c.name for c in table.columns if c.name == "customer_id"}
    cols |= {
        fk.parent.name
        for fk in table.foreign_keys
        if fk.column.table.name == _CUSTOMER and fk.column.name == "id"
    }
    return tuple(sorted(cols))


@cache
def plan() -> Plan:
    """Which tables are read, and how, from the metadata (see the module docstring)."""
    out = Plan()
    tables = {t.name: t for t in Base.metadata.sorted_tables if t.name not in EXCLUDED}
    out.links.append(Link(tables[_CUSTOMER], ("id",)))
    found = {_CUSTOMER}
    for name, table in tables.items():
        cols = _customer_columns(table)
        if name != _CUSTOMER and cols:
            out.links.append(Link(table, cols))
            found.add(name)
    frontier = set(found)
    for _step in range(_DEPTH):
        reached: set[str] = set()
        for name, table in tables.items():
            if name in found:
                continue
            vias: dict[tuple[str, str], list[str]] = {}
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target in frontier and target != _CUSTOMER:
                    vias.setdefault((target, fk.column.name), []).append(fk.parent.name)
            for (target, target_col), via in sorted(vias.items()):
                out.links.append(
                    Link(table, parent=target, parent_column=target_col, via=tuple(via))
                )
                reached.add(name)
        found |= reached
        frontier = reached
        if not reached:
            break
    return out


def _field_of(table: str, column: str) -> str:
    from guanxi.security.keys import FIELD_OF

    return FIELD_OF.get(f"{table}.{column}", column.removesuffix("_enc"))


def _clear(table: str, column: str, value: Any) -> Any:
    """A stored value as the customer should read it."""
    if value is None:
        return None
    if column.endswith("_enc"):
        return cipher().decrypt(_field_of(table, column), value)
    if table == "customer_merge" and column == "fields" and isinstance(value, dict):
        # {"<col>": [survivor's, duplicate's]} in stored form: sealed values opened,
        # blind indexes left out.
        return {
            key.removesuffix("_enc"): [
                cipher().decrypt(key.removesuffix("_enc"), v) if key.endswith("_enc") and v else v
                for v in pair
            ]
            for key, pair in value.items()
            if not key.endswith("_bidx")
        }
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass
class Export:
    """A customer's data: per table, the column names and the rows (clear values)."""

    customer_id: int
    generated_at: datetime
    tables: dict[str, tuple[list[str], list[list[Any]]]]

    def counts(self) -> dict[str, int]:
        """Rows per table (tables with rows only)."""
        return {name: len(rows) for name, (_cols, rows) in self.tables.items() if rows}

    def to_json(self) -> bytes:
        """One JSON document: ``{"customer_id", "generated_at", "tables": {name: [row
        objects]}}``."""
        doc = {
            "customer_id": self.customer_id,
            "generated_at": self.generated_at.isoformat(),
            "tables": {
                name: [dict(zip(cols, row, strict=True)) for row in rows]
                for name, (cols, rows) in self.tables.items()
            },
        }
        return json.dumps(doc, ensure_ascii=False, indent=1, default=str).encode("utf-8")

    def to_csv_zip(self) -> bytes:
        """A zip of one CSV per table (UTF-8 with BOM, so Excel shows Chinese; cells that
        a spreadsheet would run as formulas are neutralised)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, (cols, rows) in self.tables.items():
                text = io.StringIO()
                writer = csv.writer(text)
                writer.writerow(cols)
                for row in rows:
                    writer.writerow([_csv_cell(v) for v in row])
                archive.writestr(f"{name}.csv", "\ufeff" + text.getvalue())
        return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return neutralise(str(value))


def _chunks(values: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def export_customer(session: Session, customer_id: int) -> Export:
    """Read everything held about the customer (no audit here: the caller records the
    reveal). The customer must exist (the caller checked)."""
    keys: dict[tuple[str, str], set[Any]] = {}
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    seen: dict[str, set[tuple[str, ...]]] = {}
    for link in plan().links:
        table = link.table
        cols = [c for c in table.columns if not _dropped(table.name, c)]
        if link.parent is None:
            batches: list[Any] = [or_(*(table.c[c] == customer_id for c in link.columns))]
        else:
            parents = sorted(keys.get((link.parent, link.parent_column), set()))
            batches = [
                or_(*(table.c[c].in_(chunk) for c in link.via)) for chunk in _chunks(parents)
            ]
        _names, rows = tables.setdefault(table.name, ([c.name for c in cols], []))
        known = seen.setdefault(table.name, set())
        for where in batches:
            for row in session.execute(select(table).where(where)).mappings():
                # Every column of a found row is kept for the next links' lookups (a
                # child's foreign key may name any of them); the exported ones are written.
                for column in table.columns:
                    keys.setdefault((table.name, column.name), set()).add(row[column.name])
                values = [_clear(table.name, c.name, row[c.name]) for c in cols]
                # A row reached along two links (an attachment of a ticket and of its
                # claim) is written once.
                marker = tuple(json.dumps(v, default=str, sort_keys=True) for v in values)
                if marker not in known:
                    known.add(marker)
                    rows.append(values)
    return Export(customer_id, clock.now(), tables)
