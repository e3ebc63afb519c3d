"""Folding one customer record into another (and back) at the level of customer rows.

The de-duplication service decides *which* records merge and owns the transaction and the
audit entry; this module knows how a customer's own rows move: the scalar fields a
reviewer picks, phones, addresses, contact persons and tags, the name tokens and the
status. Everything is returned as plain data (row ids and stored values — ciphertexts,
never clear text) so an undo can put each row back exactly where it was.

Written with set-oriented Core statements rather than ORM objects: an automatic run merges
tens of thousands of pairs, and a merge is a dozen statements either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from guanxi.audit.sealing import seal
from guanxi.core import clock
from guanxi.core.db import table_of
from guanxi.customers.consent import carry_on_merge, undo_carry
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
    customer_tag,
)
from guanxi.customers.tokens import name_tokens
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_credit_code, mask_email, mask_id_number

# Fields a reviewer may take from the duplicate. The customer number (external_id) stays
# with its record: it is the key a re-import finds that record by.
MERGEABLE = (
    "kind",
    "name",
    "email",
    "id_number",
    "credit_code",
    "source",
    "industry",
    "region",
    "owner_id",
    "birthday",
    "lifecycle_stage",
    "credit_rating",
    "notes",
)
_SEALED = {"email": mask_email, "id_number": mask_id_number, "credit_code": mask_credit_code}
_T = table_of(Customer)
_C = _T.c


def _columns(field: str) -> tuple[str, ...]:
    return (f"{field}_enc", f"{field}_bidx") if field in _SEALED else (field,)


def _stored(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _loaded(column: str, value: Any) -> Any:
    return date.fromisoformat(value) if column == "birthday" and value else value


# Personal texts the audit log keeps sealed under the customer's audit key (crypto-shredded
# on anonymisation, see guanxi.audit.sealing), as customers.service.snapshot does.
_AUDIT_SEALED = frozenset({"name", "birthday", "notes"})


def masked(field: str, stored: Any, *, session: Session, customer_id: int) -> Any:
    """A field's stored value as the audit log may show it about ``customer_id``
    (identifiers masked, personal texts sealed)."""
    if field in _SEALED and stored:
        return _SEALED[field](cipher().decrypt(field, stored))
    if field in _AUDIT_SEALED and stored:
        return seal(session, "customer", customer_id, str(_stored(stored)))
    return _stored(stored)


@dataclass
class MergeRows:
    """What a merge changed on the customer side, enough to undo it."""

    # {column: [before, after]} of the survivor, stored form.
    changes: dict[str, Any]
    # {table: [[row id, old position], ...], "tags": [tag ids added to the survivor]}
    moved: dict[str, Any]
    prior_status: str
    # Masked before/after of the survivor's changed fields, for the audit entry.
    audit_before: dict[str, Any]
    audit_after: dict[str, Any]


def _field_columns() -> list[Any]:
    names = ["id", "status", "version"] + [c for f in MERGEABLE for c in _columns(f)]
    return [_C[n] for n in names]


def read_pair(session: Session, survivor_id: int, duplicate_id: int) -> dict[int, dict[str, Any]]:
    """Both records' mergeable columns (stored form), by id; missing ids are absent."""
    rows = session.execute(
        select(*_field_columns()).where(_C.id.in_([survivor_id, duplicate_id]))
    ).mappings()
    return {r["id"]: dict(r) for r in rows}


def _blank(record: dict[str, Any], field: str) -> bool:
    return record[_columns(field)[0]] in (None, "")


def default_choices(survivor: dict[str, Any], duplicate: dict[str, Any]) -> set[str]:
    """Fields to take from the duplicate when nobody chose: the survivor's blanks."""
    return {f for f in MERGEABLE if _blank(survivor, f) and not _blank(duplicate, f)}


def merge_rows(
    session: Session,
    survivor: dict[str, Any],
    duplicate: dict[str, Any],
    fields: Iterable[str] | None,
) -> MergeRows:
    """Fold ``duplicate`` into ``survivor`` (both from :func:`read_pair`, both active)."""
    sid, did = survivor["id"], duplicate["id"]
    chosen = default_choices(survivor, duplicate) if fields is None else set(fields)
    changes: dict[str, Any] = {}
    audit_before: dict[str, Any] = {}
    audit_after: dict[str, Any] = {}
    for field in sorted(chosen):
        for column in _columns(field):
            before, after = survivor[column], duplicate[column]
            if before != after:
                changes[column] = [_stored(before), _stored(after)]
        if survivor[_columns(field)[0]] != duplicate[_columns(field)[0]]:
            audit_before[field] = masked(
                field, survivor[_columns(field)[0]], session=session, customer_id=sid
            )
            audit_after[field] = masked(
                field, duplicate[_columns(field)[0]], session=session, customer_id=sid
            )
    now = clock.now()
    session.execute(
        update(_T)
        .where(_C.id == sid)
        .values(
            {**{c: duplicate[c] for c in changes}, "version": _C.version + 1, "updated_at": now}
        )
    )
    moved = _move_children(session, sid, did)
    # Consents follow the person: the evidence moves, the stricter state wins.
    events, states = carry_on_merge(session, survivor_id=sid, duplicate_id=did)
    moved["customer_consent_event"], moved["customer_consent"] = events, states
    session.execute(
        update(_T)
        .where(_C.id == did)
        .values(status=CustomerStatus.merged.value, version=_C.version + 1, updated_at=now)
    )
    _reindex(session, sid)
    session.execute(delete(SearchToken).where(SearchToken.customer_id == did))
    return MergeRows(changes, moved, duplicate["status"], audit_before, audit_after)


_MOVABLE: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("customer_phone", table_of(CustomerPhone), ("phone_bidx",)),
    ("customer_address", table_of(CustomerAddress), ("province", "city", "district", "detail")),
    ("contact_person", table_of(ContactPerson), ("name", "phone_bidx")),
)


def _move_children(session: Session, sid: int, did: int) -> dict[str, Any]:
    """Move the duplicate's phones, addresses, contacts and tags to the survivor.

    A phone, address or contact the survivor already has stays on the duplicate (kept for
    undo, not repeated on the survivor).
    """
    moved: dict[str, Any] = {}
    for name, table, key in _MOVABLE:
        rows = session.execute(
            select(table.c.id, table.c.customer_id, table.c.position, *(table.c[k] for k in key))
            .where(table.c.customer_id.in_([sid, did]))
            .order_by(table.c.position, table.c.id)
        ).all()
        have = {tuple(r[3:]) for r in rows if r[1] == sid}
        next_position = 1 + max((r[2] for r in rows if r[1] == sid), default=-1)
        move = [r for r in rows if r[1] == did and tuple(r[3:]) not in have]
        moved[name] = [[r[0], r[2]] for r in move]
        if move:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(customer_id=sid, position=bindparam("new_position")),
                [{"row_id": r[0], "new_position": next_position + i} for i, r in enumerate(move)],
            )
    tags = session.execute(
        select(customer_tag.c.customer_id, customer_tag.c.tag_id).where(
            customer_tag.c.customer_id.in_([sid, did])
        )
    ).all()
    have_tags = {t for c, t in tags if c == sid}
    added = sorted({t for c, t in tags if c == did} - have_tags)
    if added:
        session.execute(insert(customer_tag), [{"customer_id": sid, "tag_id": t} for t in added])
    moved["tags"] = added
    return moved


def _reindex(session: Session, customer_id: int) -> None:
    """Rebuild a customer's name tokens (its name and its contacts' names)."""
    name = session.scalar(select(_C.name).where(_C.id == customer_id)) or ""
    tokens = name_tokens(name)
    for contact in session.scalars(
        select(ContactPerson.name).where(ContactPerson.customer_id == customer_id)
    ):
        tokens |= name_tokens(contact)
    session.execute(delete(SearchToken).where(SearchToken.customer_id == customer_id))
    if tokens:
        session.execute(
            insert(SearchToken), [{"token": t, "customer_id": customer_id} for t in sorted(tokens)]
        )


def unmerge_rows(
    session: Session,
    survivor_id: int,
    duplicate_id: int,
    changes: dict[str, Any],
    moved: dict[str, Any],
    prior_status: str,
) -> list[str]:
    """Undo :func:`merge_rows`. Returns the survivor's columns left as they are because
    someone changed them after the merge."""
    current = read_pair(session, survivor_id, duplicate_id)[survivor_id]
    kept: list[str] = []
    restore: dict[str, Any] = {}
    for column, (before, after) in changes.items():
        if _stored(current[column]) != after:
            kept.append(column)
        else:
            restore[column] = _loaded(column, before)
    now = clock.now()
    session.execute(
        update(_T)
        .where(_C.id == survivor_id)
        .values({**restore, "version": _C.version + 1, "updated_at": now})
    )
    for name, table, _key in _MOVABLE:
        rows = moved.get(name, [])
        if rows:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"), table.c.customer_id == survivor_id)
                .values(customer_id=duplicate_id, position=bindparam("old_position")),
                [{"row_id": r[0], "old_position": r[1]} for r in rows],
            )
    if moved.get("tags"):
        session.execute(
            delete(customer_tag).where(
                customer_tag.c.customer_id == survivor_id,
                customer_tag.c.tag_id.in_(moved["tags"]),
            )
        )
    undo_carry(
        session,
        events=moved.get("customer_consent_event", []),
        changed=moved.get("customer_consent", []),
        survivor_id=survivor_id,
        duplicate_id=duplicate_id,
    )
    session.execute(
        update(_T)
        .where(_C.id == duplicate_id)
        .values(status=prior_status, version=_C.version + 1, updated_at=now)
    )
    _reindex(session, survivor_id)
    _reindex(session, duplicate_id)
    return kept
