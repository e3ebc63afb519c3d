"""Bulk upsert of shipments by waybill number, for file imports.

Runs inside the caller's transaction. A waybill number not yet stored is created (with its
first timeline step); a stored one is updated where the file's present columns differ (a
status file re-imported each day moves shipments along), so importing the same file twice
changes nothing. Creations and updates are audited once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.bulkload import insert_rows
from guanxi.core.db import reserve_ids, table_of
from guanxi.customers.bulk import RowRejection
from guanxi.security.crypto import cipher
from guanxi.shipments.models import Shipment, ShipmentEvent
from guanxi.shipments.schemas import ShipmentCreate

_CHUNK = 500
# The schema's fields as the shipment's columns (the receiver's phone is stored encrypted).
_MODEL_COLUMNS = tuple(name for name in ShipmentCreate.model_fields if name != "receiver_phone")
_CREATED_AT = _MODEL_COLUMNS.index("created_at")
_STATUS = _MODEL_COLUMNS.index("status")


@dataclass
class ShipmentBatchResult:
    """What one batch did, counted in rows of the file."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowRejection] = field(default_factory=list)


def _values(data: ShipmentCreate) -> dict[str, Any]:
    """Column values for the fields the file gave (enum members as their codes)."""
    out: dict[str, Any] = {}
    for name in data.model_fields_set:
        if name == "receiver_phone":
            continue
        value = getattr(data, name)
        out[name] = value.value if hasattr(value, "value") else value
    if data.receiver_phone:
        out["receiver_phone_bidx"] = cipher().blind_index("phone", data.receiver_phone)
    return out


def upsert_shipments(
    session: Session, items: list[tuple[int, ShipmentCreate]], *, actor: Actor, job_id: int
) -> ShipmentBatchResult:
    """Create or update the shipments of one batch (rows validated by the schema)."""
    result = ShipmentBatchResult()
    # The last row of the file wins for a waybill number given twice in one batch.
    latest: dict[str, tuple[int, ShipmentCreate]] = {}
    folded: dict[str, list[int]] = {}
    for row, data in items:
        latest[data.waybill_no] = (row, data)
        folded.setdefault(data.waybill_no, []).append(row)
    numbers = sorted(latest)
    stored: dict[str, Any] = {}
    table = table_of(Shipment)
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        for found in session.execute(select(table).where(table.c.waybill_no.in_(chunk))):
            stored[found.waybill_no] = found
    now = clock.now()
    c = cipher()
    new_rows: list[list[Any]] = []
    changes: list[dict[str, Any]] = []
    rows_seen: list[int] = []
    for number in numbers:
        row, data = latest[number]
        rows_seen += folded[number]
        extra = len(folded[number]) - 1
        values = _values(data)
        current = stored.get(number)
        created_at = values.get("created_at") or (current.created_at if current else now)
        delivered = values.get("delivered_at") or (current.delivered_at if current else None)
        if delivered is not None and delivered < created_at:
            result.rejected += [
                RowRejection(
                    r,
                    "delivered_at",
                    "delivered_before_shipped",
                    "Delivery cannot be before the shipment was created",
                )
                for r in folded[number]
            ]
            continue
        if current is None:
            # Every column named (one shape for the whole batch), the schema's defaults
            # included; enum members as their codes.
            full = [getattr(data, name) for name in _MODEL_COLUMNS]
            full = [v.value if isinstance(v, Enum) else v for v in full]
            full[_CREATED_AT] = created_at
            phone = data.receiver_phone
            full.append(c.encrypt("phone", phone) if phone else None)
            full.append(values.get("receiver_phone_bidx"))
            new_rows.append(full)
            result.created += 1 + extra
            continue
        diff = {k: v for k, v in values.items() if getattr(current, k) != v}
        if diff.get("receiver_phone_bidx"):
            diff["receiver_phone_enc"] = cipher().encrypt("phone", data.receiver_phone or "")
        if diff:
            changes.append({"_id": current.id, **diff})
            result.updated += 1 + extra
        else:
            result.unchanged += len(folded[number])
    if new_rows:
        ids = reserve_ids(session, table, len(new_rows))
        insert_rows(
            session,
            table,
            ("id", *_MODEL_COLUMNS, "receiver_phone_enc", "receiver_phone_bidx"),
            [(new_id, *r) for new_id, r in zip(ids, new_rows, strict=True)],
        )
        insert_rows(
            session,
            table_of(ShipmentEvent),
            ("shipment_id", "occurred_at", "status"),
            [(sid, r[_CREATED_AT], r[_STATUS]) for sid, r in zip(ids, new_rows, strict=True)],
        )
    # One UPDATE statement per set of changed columns, executed for all rows that share it.
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_columns.setdefault(tuple(sorted(k for k in change if k != "_id")), []).append(change)
    for columns, group in by_columns.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns})
        )
        session.connection().execute(stmt, group)
        status_steps = [
            {"shipment_id": g["_id"], "occurred_at": now, "status": g["status"]}
            for g in group
            if "status" in g
        ]
        if status_steps:
            session.execute(insert(table_of(ShipmentEvent)), status_steps)
    if result.created or result.updated:
        record(
            session,
            actor=actor,
            action="shipment.imported",
            target_type="import_job",
            target_id=job_id,
            after={
                "created": result.created,
                "updated": result.updated,
                "rows": [min(rows_seen), max(rows_seen)],
            },
        )
    return result
