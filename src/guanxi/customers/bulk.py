"""Bulk upsert of customers and contact persons, for file imports.

Runs inside the caller's transaction (the import service commits one batch at a time with
its checkpoint). A row is matched to a stored customer by, in order: its customer number
(``external_id``), its resident ID number, its credit code, or its name together with its
first phone. A matched customer is updated only where the file says something new — scalar
fields present in the file are overwritten, phones, addresses, contacts and tags are added
if missing, nothing is deleted — so importing the same file twice changes nothing. Rows of
one batch that name the same customer are folded together first.

New customers are written with Core ``executemany`` (tens of thousands a second); updates go
through the ORM with one ``customer.updated`` audit entry each, so a record's history shows
what an import changed; creations are audited once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.bulkload import insert_rows
from guanxi.core.db import reserve_ids, table_of
from guanxi.customers import service
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
    Tag,
    customer_tag,
)
from guanxi.customers.schemas import AddressIn, ContactIn, CustomerCreate
from guanxi.customers.tokens import name_tokens, normalise_name
from guanxi.security.crypto import cipher

_SCALARS = (
    "kind",
    "name",
    "external_id",
    "source",
    "industry",
    "region",
    "owner_id",
    "birthday",
    "lifecycle_stage",
    "credit_rating",
    "notes",
)
_IDENTIFIERS = ("email", "id_number", "credit_code")
# IN-list size: well inside SQLite's and PostgreSQL's parameter limits, and small enough that
# PostgreSQL probes the index (with 500 blind indexes it scanned a 100,000-row phone table).
_CHUNK = 200


@dataclass
class RowRejection:
    """A row a domain's rules refused at write time (a kind / identifier clash, a delivery
    before its shipment); shipments' bulk upsert reports with it too."""

    row: int
    field: str
    code: str
    message: str


@dataclass
class BatchResult:
    """What one batch did."""

    # Rows of the file, not records: imported + updated + unchanged + rejected = rows.
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)


def _value(data: CustomerCreate, name: str) -> Any:
    value = getattr(data, name)
    return value.value if hasattr(value, "value") else value


@dataclass
class _Draft:
    """The rows of one batch that describe the same customer, folded in file order."""

    rows: list[int]
    # Guanxi's own id, when the file carries it (an export being re-imported).
    known_id: int | None
    scalars: dict[str, Any]
    identifiers: dict[str, str]
    phones: list[str]
    addresses: list[AddressIn]
    contacts: list[ContactIn]
    tags: list[str]
    # keys() memoised: a batch asks for each draft's keys several times; fold() resets it.
    _keys: list[tuple[str, str]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, row: int, data: CustomerCreate, known_id: int | None = None) -> _Draft:
        draft = cls([row], known_id, {}, {}, [], [], [], [])
        draft.fold(row, data)
        return draft

    def fold(self, row: int, data: CustomerCreate) -> None:
        # Only what the file said: a missing column must not overwrite a stored value with
        # the schema's default.
        present = data.model_fields_set | {"name"}
        self._keys = None
        if row not in self.rows:
            self.rows.append(row)
        for name in _SCALARS:
            if name in present and getattr(data, name) is not None:
                self.scalars[name] = _value(data, name)
        for name in _IDENTIFIERS:
            if name in present and getattr(data, name):
                self.identifiers[name] = getattr(data, name)
        self.phones += [p for p in data.phones or [] if p not in self.phones]
        self.addresses += [a for a in data.addresses or [] if a not in self.addresses]
        self.contacts += [c for c in data.contacts or [] if c not in self.contacts]
        self.tags += [t for t in data.tags or [] if t not in self.tags]

    def keys(self) -> list[tuple[str, str]]:
        if self._keys is None:
            self._keys = self._find_keys()
        return self._keys

    def _find_keys(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.known_id is not None:
            found.append(("id", str(self.known_id)))
        if self.scalars.get("external_id"):
            found.append(("external_id", self.scalars["external_id"]))
        for name in ("id_number", "credit_code"):
            if name in self.identifiers:
                found.append((name, _bidx(name, self.identifiers[name])))
        if self.phones:
            found.append(("name_phone", _name_phone(self.scalars["name"], self.phones[0])))
        return found


def _name_phone(name: str, e164: str) -> str:
    return normalise_name(name) + "\x1f" + _bidx("phone", e164)


@lru_cache(maxsize=8192)
def _bidx(field: str, value: str) -> str:
    """Blind index, memoised: a batch asks for each draft's keys several times."""
    return cipher().blind_index(field, value)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# Registered by the de-duplication domain (guanxi.domains.load): the survivor of each merged
# record among the given ids, so a file naming a merged customer updates the one that stays.
SurvivorResolver = Callable[[Session, list[int]], dict[int, int]]
_survivor_resolvers: list[SurvivorResolver] = []


def register_survivor_resolver(resolver: SurvivorResolver) -> None:
    """Let imports follow merges (the customers domain cannot import de-duplication)."""
    if resolver not in _survivor_resolvers:
        _survivor_resolvers.append(resolver)


def _existing(session: Session, drafts: list[_Draft]) -> dict[tuple[str, str], int]:
    """Stored customers for every key of the batch (lowest id wins); a merged record is
    replaced by its survivor."""
    found = _existing_keys(session, drafts)
    for resolve in _survivor_resolvers:
        survivors = resolve(session, sorted(set(found.values())))
        if survivors:
            found = {key: survivors.get(cid, cid) for key, cid in found.items()}
    return found


def _survivor(session: Session, customer_id: int) -> int:
    """The record a (possibly merged) customer lives on in now."""
    for resolve in _survivor_resolvers:
        found = resolve(session, [customer_id]).get(customer_id)
        if found is not None:
            return found
    return customer_id


def _existing_keys(session: Session, drafts: list[_Draft]) -> dict[tuple[str, str], int]:
    wanted: dict[str, set[str]] = {}
    for draft in drafts:
        for kind, key in draft.keys():
            wanted.setdefault(kind, set()).add(key)
    found: dict[tuple[str, str], int] = {}
    for chunk in _chunks(sorted(int(k) for k in wanted.get("id", ()))):
        for (cid,) in session.execute(select(Customer.id).where(Customer.id.in_(chunk))):
            found[("id", str(cid))] = cid
    columns: dict[str, Any] = {
        "external_id": Customer.external_id,
        "id_number": Customer.id_number_bidx,
        "credit_code": Customer.credit_code_bidx,
    }
    for kind, column in columns.items():
        for chunk in _chunks(sorted(wanted.get(kind, ()))):
            for cid, key in session.execute(
                select(Customer.id, column).where(column.in_(chunk)).order_by(Customer.id.desc())
            ):
                found[(kind, key)] = cid
    pairs = wanted.get("name_phone", set())
    if pairs:
        by_bidx: dict[str, set[str]] = {}
        for pair in pairs:
            name, _, bidx = pair.partition("\x1f")
            by_bidx.setdefault(bidx, set()).add(name)
        for chunk in _chunks(sorted(by_bidx)):
            rows = session.execute(
                select(CustomerPhone.customer_id, CustomerPhone.phone_bidx, Customer.name)
                .join(Customer, Customer.id == CustomerPhone.customer_id)
                .where(CustomerPhone.phone_bidx.in_(chunk))
                .order_by(CustomerPhone.customer_id.desc())
            )
            for cid, bidx, name in rows:
                key = normalise_name(name) + "\x1f" + bidx
                if key in pairs:
                    found[("name_phone", key)] = cid
    return found


def _group(items: list[tuple[int, CustomerCreate]], known_ids: dict[int, int]) -> list[_Draft]:
    """Fold rows that share a key into one draft, in file order."""
    drafts: list[_Draft] = []
    by_key: dict[tuple[str, str], _Draft] = {}
    for row, data in items:
        single = _Draft.of(row, data, known_ids.get(row))
        target = next((by_key[k] for k in single.keys() if k in by_key), None)
        if target is None:
            drafts.append(single)
            target = single
        else:
            target.fold(row, data)
        for key in target.keys():
            by_key.setdefault(key, target)
    return drafts


def _kind_clash(kind: str, identifiers: dict[str, Any]) -> RowRejection | None:
    clash = service.identifier_kind_clash(
        kind,
        id_number=bool(identifiers.get("id_number")),
        credit_code=bool(identifiers.get("credit_code")),
    )
    return None if clash is None else RowRejection(0, str(clash.loc[0]), clash.code, clash.message)


def upsert_customers(
    session: Session,
    items: list[tuple[int, CustomerCreate]],
    *,
    actor: Actor,
    job_id: int,
    known_ids: dict[int, int] | None = None,
) -> BatchResult:
    """Create or update the customers of one batch (rows already validated by the schema).

    ``known_ids`` maps a row to the Guanxi id the file gave for it (re-imported exports).
    """
    result = BatchResult()
    drafts = _group(items, known_ids or {})
    existing = _existing(session, drafts)
    to_create: list[_Draft] = []
    to_update: dict[int, list[_Draft]] = {}
    for draft in drafts:
        match = next((existing[k] for k in draft.keys() if k in existing), None)
        if match is None:
            to_create.append(draft)
        else:
            to_update.setdefault(match, []).append(draft)
    if to_update:
        _update(session, to_update, actor, result)
    if to_create:
        _create(session, to_create, actor, job_id, result)
    return result


_CUSTOMER_COLUMNS = (
    "id", "kind", "name", "external_id", "source", "industry", "region", "owner_id",
    "birthday", "lifecycle_stage", "credit_rating", "notes", "status", "created_at",
    "updated_at", "version", "email_enc", "email_bidx", "id_number_enc", "id_number_bidx",
    "credit_code_enc", "credit_code_bidx",
)  # fmt: skip
_PHONE_COLUMNS = ("customer_id", "position", "kind", "phone_enc", "phone_bidx", "last4")
_ADDRESS_COLUMNS = (
    "customer_id", "position", "label", "province", "city", "district", "detail",
    "division_code",
)  # fmt: skip
_CONTACT_COLUMNS = (
    "customer_id", "position", "name", "title", "phone_enc", "phone_bidx", "email_enc",
    "is_primary",
)  # fmt: skip


def _create(
    session: Session, drafts: list[_Draft], actor: Actor, job_id: int, result: BatchResult
) -> None:
    now = clock.now()
    c = cipher()
    table = table_of(Customer)
    ids = reserve_ids(session, table, len(drafts))
    customers: list[tuple[Any, ...]] = []
    phones: list[tuple[Any, ...]] = []
    addresses: list[tuple[Any, ...]] = []
    contacts: list[tuple[Any, ...]] = []
    tokens: list[tuple[str, int]] = []
    tag_links: list[tuple[int, str]] = []
    for cid, draft in zip(ids, drafts, strict=True):
        s = draft.scalars
        secret: list[Any] = []
        for name in _IDENTIFIERS:
            value = draft.identifiers.get(name)
            secret.append(c.encrypt(name, value) if value else None)
            secret.append(c.blind_index(name, service.lookup_form(name, value)) if value else None)
        customers.append(
            (
                cid,
                s.get("kind", "individual"),
                s["name"],
                s.get("external_id"),
                s.get("source", "import"),
                s.get("industry"),
                s.get("region"),
                s.get("owner_id"),
                s.get("birthday"),
                s.get("lifecycle_stage", "new"),
                s.get("credit_rating"),
                s.get("notes"),
                "active",
                now,
                now,
                1,
                *secret,
            )
        )
        for i, e164 in enumerate(draft.phones):
            values = service.phone_values(i, e164)
            phones.append((cid, *(values[k] for k in _PHONE_COLUMNS[1:])))
        for i, address in enumerate(draft.addresses):
            values = service.address_values(i, address)
            addresses.append((cid, *(values[k] for k in _ADDRESS_COLUMNS[1:])))
        for i, contact in enumerate(draft.contacts):
            values = service.contact_values(i, contact)
            contacts.append((cid, *(values[k] for k in _CONTACT_COLUMNS[1:])))
        names = name_tokens(s["name"])
        for contact in draft.contacts:
            names |= name_tokens(contact.name)
        tokens += [(t, cid) for t in sorted(names)]
        tag_links += [(cid, t) for t in draft.tags]
    insert_rows(session, table, _CUSTOMER_COLUMNS, customers)
    for model, columns, prepared in (
        (CustomerPhone, _PHONE_COLUMNS, phones),
        (CustomerAddress, _ADDRESS_COLUMNS, addresses),
        (ContactPerson, _CONTACT_COLUMNS, contacts),
        (SearchToken, ("token", "customer_id"), tokens),
    ):
        insert_rows(session, table_of(model), columns, prepared)
    if tag_links:
        tag_ids = _tag_ids(session, [t for _, t in tag_links])
        insert_rows(
            session,
            customer_tag,
            ("customer_id", "tag_id"),
            [(cid, tag_ids[t]) for cid, t in tag_links],
        )
    # Counted in rows (a record folded from two rows of the file counts two).
    result.created += sum(len(d.rows) for d in drafts)
    result.created_ids += ids
    record(
        session,
        actor=actor,
        action="customer.imported",
        target_type="import_job",
        target_id=job_id,
        after={
            "created": len(ids),
            "first_id": min(ids),
            "last_id": max(ids),
            "rows": [min(min(d.rows) for d in drafts), max(max(d.rows) for d in drafts)],
        },
    )


def _tag_ids(session: Session, names: list[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    found = dict(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(wanted))).all())
    missing = [n for n in wanted if n not in found]
    if missing:
        session.execute(insert(table_of(Tag)), [{"name": n} for n in missing])
        found.update(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(missing))).all())
    return {str(k): int(v) for k, v in found.items()}


def _address_key(values: dict[str, Any]) -> tuple[Any, ...]:
    return (values["province"], values["city"], values["district"], values["detail"])


def _update(
    session: Session, matches: dict[int, list[_Draft]], actor: Actor, result: BatchResult
) -> None:
    customers = session.scalars(
        select(Customer)
        .where(Customer.id.in_(sorted(matches)))
        .options(
            selectinload(Customer.phones),
            selectinload(Customer.addresses),
            selectinload(Customer.contacts),
            selectinload(Customer.tags),
        )
    ).all()
    for customer in customers:
        for draft in matches[customer.id]:
            _apply(session, customer, draft, actor, result)


def _apply(
    session: Session, customer: Customer, draft: _Draft, actor: Actor, result: BatchResult
) -> None:
    c = cipher()
    kind = draft.scalars.get("kind", customer.kind)
    identifiers = {
        "id_number": draft.identifiers.get("id_number") or customer.id_number_bidx,
        "credit_code": draft.identifiers.get("credit_code") or customer.credit_code_bidx,
    }
    clash = _kind_clash(kind, identifiers)
    new_number = draft.scalars.get("external_id")
    keep_number = True
    if clash is None and new_number and customer.external_id is None:
        holder = session.scalar(select(Customer.id).where(Customer.external_id == new_number))
        if (
            holder is not None
            and holder != customer.id
            and _survivor(session, holder) == customer.id
        ):
            # The number belongs to a record merged into this one: it stays with that record.
            keep_number = False
        elif holder is not None and holder != customer.id:
            clash = RowRejection(
                0,
                "external_id",
                "external_id_taken",
                "Another customer already has this customer number",
            )
    if clash is not None:
        for row in draft.rows:
            result.rejected.append(RowRejection(row, clash.field, clash.code, clash.message))
        return
    before = service.snapshot(customer)
    for name, value in draft.scalars.items():
        if name == "external_id" and not keep_number:
            continue
        if name == "external_id" and customer.external_id and customer.external_id != value:
            continue  # a customer number never silently changes: that is a different record
        if getattr(customer, name) != value:
            setattr(customer, name, value)
    for name, value in draft.identifiers.items():
        if getattr(customer, f"{name}_bidx") != c.blind_index(
            name, service.lookup_form(name, value)
        ):
            service.set_identifier(customer, name, value)
    known_phones = {p.phone_bidx for p in customer.phones}
    for e164 in draft.phones:
        if c.blind_index("phone", e164) not in known_phones:
            customer.phones.append(
                CustomerPhone(**service.phone_values(len(customer.phones), e164))
            )
    known_addresses = {
        _address_key({k: getattr(a, k) for k in ("province", "city", "district", "detail")})
        for a in customer.addresses
    }
    for address in draft.addresses:
        values = service.address_values(len(customer.addresses), address)
        if _address_key(values) not in known_addresses:
            customer.addresses.append(CustomerAddress(**values))
            known_addresses.add(_address_key(values))
    known_contacts = {(k.name, k.phone_bidx) for k in customer.contacts}
    contacts_changed = False
    for contact in draft.contacts:
        values = service.contact_values(len(customer.contacts), contact)
        if (values["name"], values["phone_bidx"]) not in known_contacts:
            values["is_primary"] = contact.is_primary or not customer.contacts
            customer.contacts.append(ContactPerson(**values))
            known_contacts.add((values["name"], values["phone_bidx"]))
            contacts_changed = True
    known_tags = {t.name for t in customer.tags}
    new_tags = [t for t in draft.tags if t not in known_tags]
    if new_tags:
        customer.tags = list(customer.tags) + service.tags_by_name(session, new_tags)
    changed_before, changed_after = service.diff(before, service.snapshot(customer))
    if not changed_after:
        result.unchanged += len(draft.rows)
        return
    customer.version += 1
    customer.updated_at = clock.now()
    session.flush()
    if "name" in changed_after or contacts_changed:
        service.reindex(session, customer)
    record(
        session,
        actor=actor,
        action="customer.updated",
        target_type="customer",
        target_id=customer.id,
        before=changed_before,
        after=changed_after,
    )
    result.updated += len(draft.rows)


def find_customer_ids(
    session: Session,
    *,
    external_ids: Iterable[str] = (),
    credit_codes: Iterable[str] = (),
    phones: Iterable[str] = (),
    names: Iterable[str] = (),
) -> dict[tuple[str, str], int]:
    """Stored customers by customer number, credit code, phone (E.164) or exact name.

    For imports of shipments and contacts, which name their customer in one of these ways.
    Keys are ``("external_id", value)``, ``("credit_code", value)``, ``("phone", value)``,
    ``("name", value)``; a value shared by several customers maps to the newest.
    """
    c = cipher()
    found: dict[tuple[str, str], int] = {}
    lookups: list[tuple[str, Any, dict[str, str]]] = [
        ("external_id", Customer.external_id, {v: v for v in set(external_ids)}),
        (
            "credit_code",
            Customer.credit_code_bidx,
            {c.blind_index("credit_code", v): v for v in set(credit_codes)},
        ),
        ("name", Customer.name, {v: v for v in set(names)}),
    ]
    for kind, column, by_stored in lookups:
        for chunk in _chunks(sorted(by_stored)):
            for cid, stored in session.execute(
                select(Customer.id, column).where(column.in_(chunk)).order_by(Customer.id)
            ):
                found[(kind, by_stored[stored])] = cid
    by_bidx = {c.blind_index("phone", v): v for v in set(phones)}
    for chunk in _chunks(sorted(by_bidx)):
        for cid, bidx in session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.phone_bidx)
            .where(CustomerPhone.phone_bidx.in_(chunk))
            .order_by(CustomerPhone.customer_id)
        ):
            found[("phone", by_bidx[bidx])] = cid
    return found


def add_contacts(
    session: Session, items: list[tuple[int, int, ContactIn]], *, actor: Actor
) -> BatchResult:
    """Add contact persons ``(row, customer_id, contact)`` to stored customers; a contact
    already there (same name and phone) is left alone."""
    result = BatchResult()
    by_customer: dict[int, list[tuple[int, ContactIn]]] = {}
    for row, cid, contact in items:
        by_customer.setdefault(cid, []).append((row, contact))
    customers = session.scalars(
        select(Customer)
        .where(Customer.id.in_(sorted(by_customer)))
        .options(selectinload(Customer.contacts))
    ).all()
    for customer in customers:
        rows = by_customer[customer.id]
        draft = _Draft([r for r, _ in rows], None, {}, {}, [], [], [k for _, k in rows], [])
        if customer.kind == "individual":
            for row in draft.rows:
                result.rejected.append(
                    RowRejection(
                        row,
                        "customer",
                        "contact_individual",
                        "Only enterprises and government bodies have contact persons",
                    )
                )
            continue
        _apply(session, customer, draft, actor, result)
    return result
