"""The rules of the customer domain: create, read, update, archive, restore, reveal.

Every write runs in one transaction with its audit entry; personal identifiers are encrypted
here and never leave this module in clear except through :func:`reveal`, which is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from guanxi.audit.sealing import seal_optional
from guanxi.audit.service import Actor, record, record_many
from guanxi.core import clock
from guanxi.core.db import is_unique_violation, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.customers import validation
from guanxi.customers.addresses import parse_address
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
    Tag,
)
from guanxi.customers.schemas import (
    AddressIn,
    AddressRead,
    ContactIn,
    ContactRead,
    CustomerCreate,
    CustomerRead,
    CustomerSummary,
    CustomerUpdate,
    PhoneRead,
)
from guanxi.customers.tokens import name_tokens
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_credit_code, mask_email, mask_id_number, mask_phone
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.scope import Scope, scope_of
from guanxi.security.service import actor_of, has_permission

# Called inside create_customer's transaction, after the insert: sales turns a new
# enterprise customer into a lead. Each receives (session, customer); a failing hook fails
# the creation (the lead is part of the same write).
CreatedHook = Callable[[Session, Customer], None]
_created_hooks: list[CreatedHook] = []


def register_created_hook(hook: CreatedHook) -> None:
    """Run ``hook`` in every customer creation's transaction, after the insert (once per
    hook: domains register at every app start)."""
    if hook not in _created_hooks:
        _created_hooks.append(hook)


# --------------------------------------------------------------------------- visibility


def in_scope(viewer: User, customer: Customer) -> bool:
    """Whether the customer is inside the viewer's row-level scope (security/scope.py):
    always for unscoped users; for scoped ones, customers of their regions. Part of
    :func:`can_see`; alone where ownership is the question itself (claiming from the pool)."""
    scope = scope_of(viewer)
    return scope is None or scope.covers_region(customer.region)


def can_see(viewer: User, customer: Customer) -> bool:
    """Users without ``customer.read_all`` see only the customers they own; those who work
    the sales pipeline also see the customers without an owner (the pool, 公海). A scoped
    user (security/scope.py) sees, of those, only the customers of their regions."""
    if not in_scope(viewer, customer):
        return False
    if has_permission(viewer, Permission.customer_read_all) or customer.owner_id == viewer.id:
        return True
    return customer.owner_id is None and has_permission(viewer, Permission.sales_pipeline)


def region_clause(scope: Scope) -> ColumnElement[bool]:
    """The customers of a scope's regions, as a condition on ``Customer`` (prefix match,
    as :meth:`Scope.covers_region`; nothing when the scope has no region)."""
    if not scope.regions:
        return false()
    return or_(*(Customer.region.startswith(r, autoescape=True) for r in scope.regions))


def visible_clause(viewer: User) -> ColumnElement[bool] | None:
    """The rule of :func:`can_see` as a condition on ``Customer`` for lists; None when the
    viewer sees every customer (``customer.read_all`` and no scope)."""
    scope = scope_of(viewer)
    if has_permission(viewer, Permission.customer_read_all):
        base = None
    elif has_permission(viewer, Permission.sales_pipeline):
        base = or_(Customer.owner_id == viewer.id, Customer.owner_id.is_(None))
    else:
        base = Customer.owner_id == viewer.id
    if scope is None:
        return base
    return region_clause(scope) if base is None else and_(base, region_clause(scope))


def get_customer(session: Session, *, customer_id: int, viewer: User) -> Customer:
    """Load one customer with its children; 404 when missing or not visible to ``viewer``."""
    customer = session.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .options(
            selectinload(Customer.phones),
            selectinload(Customer.addresses),
            selectinload(Customer.contacts),
            selectinload(Customer.tags),
        )
    )
    if customer is None or not can_see(viewer, customer):
        raise NotFound("customer not found", customer_id=customer_id)
    return customer


# --------------------------------------------------------------------------- reading


def _decrypt(field: str, stored: str | None) -> str | None:
    return cipher().decrypt(field, stored) if stored else None


def phone_reads(customer: Customer) -> list[PhoneRead]:
    """The customer's phones, masked."""
    return [
        PhoneRead(id=p.id, kind=p.kind, number=mask_phone(cipher().decrypt("phone", p.phone_enc)))
        for p in customer.phones
    ]


def _summary_fields(customer: Customer) -> dict[str, Any]:
    first = customer.phones[0] if customer.phones else None
    return {
        "id": customer.id,
        "kind": customer.kind,
        "name": customer.name,
        "phone": mask_phone(cipher().decrypt("phone", first.phone_enc)) if first else None,
        "region": customer.region,
        "industry": customer.industry,
        "source": customer.source,
        "lifecycle_stage": customer.lifecycle_stage,
        "owner": {"id": customer.owner.id, "display_name": customer.owner.display_name}
        if customer.owner
        else None,
        "tags": [t.name for t in customer.tags],
        "status": customer.status,
        "created_at": customer.created_at,
    }


def to_summary(customer: Customer) -> CustomerSummary:
    """A list row: first phone masked."""
    return CustomerSummary(**_summary_fields(customer))


def to_read(customer: Customer) -> CustomerRead:
    """The full record, every personal identifier masked."""
    email = _decrypt("email", customer.email_enc)
    id_number = _decrypt("id_number", customer.id_number_enc)
    credit = _decrypt("credit_code", customer.credit_code_enc)
    # The list row's fields validated once, as part of the record (not as a summary first).
    return CustomerRead(
        **_summary_fields(customer),
        external_id=customer.external_id,
        phones=phone_reads(customer),
        email=mask_email(email) if email else None,
        id_number=mask_id_number(id_number) if id_number else None,
        credit_code=mask_credit_code(credit) if credit else None,
        addresses=[AddressRead.model_validate(a) for a in customer.addresses],
        contacts=[
            ContactRead(
                id=c.id,
                name=c.name,
                title=c.title,
                phone=mask_phone(cipher().decrypt("phone", c.phone_enc)) if c.phone_enc else None,
                email=mask_email(cipher().decrypt("email", c.email_enc)) if c.email_enc else None,
                is_primary=c.is_primary,
            )
            for c in customer.contacts
        ],
        birthday=customer.birthday,
        credit_rating=customer.credit_rating,
        notes=customer.notes,
        language=customer.language,
        updated_at=customer.updated_at,
        archived_at=customer.archived_at,
        version=customer.version,
    )


def _contact_line(contact: ContactPerson) -> str:
    phone = cipher().decrypt("phone", contact.phone_enc) if contact.phone_enc else None
    return f"{contact.name} {mask_phone(phone)}" if phone else contact.name


def snapshot(customer: Customer) -> dict[str, Any]:
    """The audited state of a customer: identifiers masked, personal texts sealed
    (:mod:`guanxi.audit.sealing`), children summarised.

    Built from the rows directly (not the read schema) so it also works on children that
    are not flushed yet.
    """
    email = _decrypt("email", customer.email_enc)
    id_number = _decrypt("id_number", customer.id_number_enc)
    credit = _decrypt("credit_code", customer.credit_code_enc)
    session = object_session(customer)
    if session is None:
        raise ValueError("snapshot() needs a customer attached to a session")
    if customer.id is None:
        session.flush()  # the customer's id names the key its values are sealed under

    def sealed(value: str | None) -> str | None:
        # Names, address lines, contact lines, notes and the birthday are sealed under the
        # customer's audit key: anonymisation shreds it (guanxi.audit.sealing).
        return seal_optional(session, "customer", customer.id, value)

    return {
        "kind": customer.kind,
        "name": sealed(customer.name),
        "external_id": customer.external_id,
        "phones": [mask_phone(cipher().decrypt("phone", p.phone_enc)) for p in customer.phones],
        "email": mask_email(email) if email else None,
        "id_number": mask_id_number(id_number) if id_number else None,
        "credit_code": mask_credit_code(credit) if credit else None,
        "addresses": [
            sealed("".join(x for x in (a.province, a.city, a.district, a.detail) if x))
            for a in customer.addresses
        ],
        "contacts": [sealed(_contact_line(c)) for c in customer.contacts],
        "source": customer.source,
        "industry": customer.industry,
        "region": customer.region,
        "owner_id": customer.owner_id,
        "tags": sorted(t.name for t in customer.tags),
        "birthday": sealed(customer.birthday.isoformat()) if customer.birthday else None,
        "lifecycle_stage": customer.lifecycle_stage,
        "credit_rating": customer.credit_rating,
        "notes": sealed(customer.notes),
        "language": customer.language,
        "status": customer.status,
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys that changed between two snapshots: (their old values, their new values)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


# --------------------------------------------------------------------------- writing


def phone_values(position: int, e164: str) -> dict[str, Any]:
    """Column values of one stored phone: encrypted, blind-indexed, last four in clear."""
    return {
        "position": position,
        "kind": validation.phone_kind(e164),
        "phone_enc": cipher().encrypt("phone", e164),
        "phone_bidx": cipher().blind_index("phone", e164),
        "last4": e164[-4:],
    }


def _phone_row(position: int, e164: str) -> CustomerPhone:
    return CustomerPhone(**phone_values(position, e164))


def address_values(position: int, address_in: AddressIn) -> dict[str, Any]:
    """Column values of one address: a free-text line is parsed into divisions."""
    if address_in.line:
        parsed = parse_address(address_in.line)
        return {
            "position": position,
            "label": address_in.label,
            "province": parsed.province,
            "city": parsed.city,
            "district": parsed.district,
            "detail": parsed.detail or address_in.line,
            "division_code": parsed.division_code,
        }
    # Structured parts: still run them through the parser to fill in the division code.
    joined = "".join(x for x in (address_in.province, address_in.city, address_in.district) if x)
    structured = parse_address(joined) if joined else None
    return {
        "position": position,
        "label": address_in.label,
        "province": address_in.province or (structured.province if structured else None),
        "city": address_in.city or (structured.city if structured else None),
        "district": address_in.district or (structured.district if structured else None),
        "detail": address_in.detail or "",
        "division_code": structured.division_code if structured else None,
    }


def _address_row(position: int, address_in: AddressIn) -> CustomerAddress:
    return CustomerAddress(**address_values(position, address_in))


def contact_values(position: int, contact_in: ContactIn) -> dict[str, Any]:
    """Column values of one contact person, phone and e-mail encrypted."""
    phone, email = contact_in.phone, contact_in.email
    return {
        "position": position,
        "name": contact_in.name,
        "title": contact_in.title,
        "phone_enc": cipher().encrypt("phone", phone) if phone else None,
        "phone_bidx": cipher().blind_index("phone", phone) if phone else None,
        "email_enc": cipher().encrypt("email", email) if email else None,
        "is_primary": contact_in.is_primary or position == 0,
    }


def _contact_row(position: int, contact_in: ContactIn) -> ContactPerson:
    return ContactPerson(**contact_values(position, contact_in))


def tags_by_name(session: Session, names: list[str]) -> list[Tag]:
    """Tag rows for names, creating the missing ones (pending in the session)."""
    wanted = list(dict.fromkeys(names))
    existing = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    tags = []
    for name in wanted:
        tag = existing.get(name)
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
        tags.append(tag)
    return tags


def lookup_form(field: str, value: str) -> str:
    """The form a value is blind-indexed in: e-mail addresses compare case-insensitively."""
    return value.lower() if field == "email" else value


def set_identifier(customer: Customer, field: str, value: str | None) -> None:
    """Store a personal identifier encrypted, with its blind index (None clears both)."""
    enc = cipher().encrypt(field, value) if value else None
    bidx = cipher().blind_index(field, lookup_form(field, value)) if value else None
    setattr(customer, f"{field}_enc", enc)
    setattr(customer, f"{field}_bidx", bidx)


def _check_owner(session: Session, owner_id: int | None, loc: str = "owner_id") -> None:
    if owner_id is not None and session.get(User, owner_id) is None:
        raise ValidationFailed(
            [FieldError((loc,), "owner_unknown", "No such user to own this customer")]
        )


def _check_external_id(session: Session, external_id: str | None) -> None:
    if external_id and session.scalar(
        select(Customer.id).where(Customer.external_id == external_id)
    ):
        raise Conflict("external_id_taken", field="external_id")


def reindex(session: Session, customer: Customer) -> None:
    """Rewrite the customer's name tokens (name and contact names)."""
    tokens = name_tokens(customer.name)
    for contact in customer.contacts:
        tokens |= name_tokens(contact.name)
    session.execute(delete(SearchToken).where(SearchToken.customer_id == customer.id))
    if tokens:
        session.execute(
            insert(SearchToken),
            [{"token": t, "customer_id": customer.id} for t in sorted(tokens)],
        )


def _refuse_outside_scope(actor: User | Actor, region: str | None) -> None:
    """A user with a row-level scope (security/scope.py) may not put a customer outside
    their regions: they could not see it afterwards (a lead they convert would vanish from
    their own pipeline with it), so the region field says so instead."""
    scope = scope_of(actor) if isinstance(actor, User) else None
    if scope is None or scope.covers_region(region):
        return
    if not scope.regions:
        error = FieldError(
            ("region",),
            "region_no_scope",
            "Your access covers no region, so you cannot add customers",
        )
    else:
        error = FieldError(
            ("region",),
            "region_outside_scope",
            f"Choose a region you look after: {', '.join(scope.regions)}",
            {"regions": list(scope.regions)},
        )
    raise ValidationFailed([error])


def _region_in_scope(actor: User | Actor, region: str | None) -> str | None:
    """The region a new customer gets: as given, or for a user scoped to one region that
    region when none is given; refused outside a scoped user's regions."""
    scope = scope_of(actor) if isinstance(actor, User) else None
    if scope is not None and region is None and len(scope.regions) == 1:
        return scope.regions[0]
    _refuse_outside_scope(actor, region)
    return region


def create_customer(
    session: Session, *, customer_in: CustomerCreate, actor: User | Actor
) -> Customer:
    """Create a customer with its phones, addresses, contacts and tags; audited."""
    audit_actor = actor if isinstance(actor, Actor) else actor_of(actor)
    region = _region_in_scope(actor, customer_in.region)
    try:
        with write_transaction(session):
            _check_owner(session, customer_in.owner_id)
            now = clock.now()
            _check_external_id(session, customer_in.external_id)
            customer = Customer(
                kind=customer_in.kind.value,
                name=customer_in.name,
                external_id=customer_in.external_id,
                source=customer_in.source.value,
                industry=customer_in.industry,
                region=region,
                owner_id=customer_in.owner_id
                if customer_in.owner_id is not None
                else (actor.id if isinstance(actor, User) and actor.role == "sales" else None),
                birthday=customer_in.birthday,
                lifecycle_stage=customer_in.lifecycle_stage.value,
                credit_rating=customer_in.credit_rating.value
                if customer_in.credit_rating
                else None,
                notes=customer_in.notes,
                language=customer_in.language,
                status=CustomerStatus.active.value,
                created_at=now,
                updated_at=now,
            )
            set_identifier(customer, "email", customer_in.email)
            set_identifier(customer, "id_number", customer_in.id_number)
            set_identifier(customer, "credit_code", customer_in.credit_code)
            customer.phones = [
                _phone_row(i, p) for i, p in enumerate(dict.fromkeys(customer_in.phones or []))
            ]
            customer.addresses = [
                _address_row(i, a) for i, a in enumerate(customer_in.addresses or [])
            ]
            customer.contacts = [
                _contact_row(i, c) for i, c in enumerate(customer_in.contacts or [])
            ]
            customer.tags = tags_by_name(session, customer_in.tags or [])
            session.add(customer)
            session.flush()
            reindex(session, customer)
            record(
                session,
                actor=audit_actor,
                action="customer.created",
                target_type="customer",
                target_id=customer.id,
                after={k: v for k, v in snapshot(customer).items() if v not in (None, [], "")},
            )
            for hook in _created_hooks:
                hook(session, customer)
    except IntegrityError as exc:
        # Two writers raced past the check on the customer number; the unique key decides.
        if is_unique_violation(exc):
            raise Conflict("external_id_taken", field="external_id") from exc
        raise
    return customer


def update_customer(
    session: Session, *, customer_id: int, customer_in: CustomerUpdate, actor: User
) -> Customer:
    """Apply a partial update; a stale ``version`` or a concurrent writer is a 409."""
    try:
        with write_transaction(session):
            customer = get_customer(session, customer_id=customer_id, viewer=actor)
            if customer.owner_id is None and not has_permission(
                actor, Permission.customer_read_all
            ):
                # A salesperson sees the pool but changes a customer only once claimed
                # (the claim is capped and recorded; an edit of the owner would bypass it).
                raise PermissionDenied("customer_not_owned")
            if customer_in.version is not None and customer_in.version != customer.version:
                raise Conflict("version_conflict", field="version")
            before = snapshot(customer)
            fields = customer_in.model_fields_set
            kind = customer_in.kind.value if customer_in.kind else customer.kind
            _check_identifier_kind(kind, customer_in, customer)
            if "external_id" in fields and customer_in.external_id != customer.external_id:
                _check_external_id(session, customer_in.external_id)
            if "region" in fields and customer_in.region != customer.region:
                # A scoped editor cannot move the customer out of their own reach.
                _refuse_outside_scope(actor, customer_in.region)
            for name in (
                "name",
                "external_id",
                "industry",
                "region",
                "birthday",
                "notes",
                "language",
            ):
                if name in fields:
                    setattr(customer, name, getattr(customer_in, name))
            for name in ("kind", "source", "lifecycle_stage", "credit_rating"):
                if name in fields:
                    value = getattr(customer_in, name)
                    setattr(customer, name, value.value if value is not None else None)
            if "owner_id" in fields:
                _check_owner(session, customer_in.owner_id)
                customer.owner_id = customer_in.owner_id
            for name in ("email", "id_number", "credit_code"):
                if name in fields:
                    set_identifier(customer, name, getattr(customer_in, name))
            if "phones" in fields:
                customer.phones = [
                    _phone_row(i, p) for i, p in enumerate(dict.fromkeys(customer_in.phones or []))
                ]
            if "addresses" in fields:
                customer.addresses = [
                    _address_row(i, a) for i, a in enumerate(customer_in.addresses or [])
                ]
            if "contacts" in fields:
                customer.contacts = [
                    _contact_row(i, c) for i, c in enumerate(customer_in.contacts or [])
                ]
            if "tags" in fields:
                customer.tags = tags_by_name(session, customer_in.tags or [])
            after = snapshot(customer)
            changed_before, changed_after = diff(before, after)
            if changed_after:
                customer.version += 1
                customer.updated_at = clock.now()
                session.flush()
                if {"name", "contacts"} & fields:
                    reindex(session, customer)
                record(
                    session,
                    actor=actor_of(actor),
                    action="customer.updated",
                    target_type="customer",
                    target_id=customer.id,
                    before=changed_before,
                    after=changed_after,
                )
    except StaleDataError as exc:
        raise Conflict("version_conflict", field="version") from exc
    return customer


def identifier_kind_clash(kind: str, *, id_number: bool, credit_code: bool) -> FieldError | None:
    """The rule tying identifiers to the kind of customer: only individuals have a resident
    ID number, only organisations a credit code. One place for the form, the API and imports."""
    if kind == "individual" and credit_code:
        return FieldError(
            ("credit_code",),
            "credit_code_individual",
            "Only enterprises and government bodies have a credit code",
        )
    if kind != "individual" and id_number:
        return FieldError(
            ("id_number",),
            "id_number_organisation",
            "Only individual customers have a resident ID number",
        )
    return None


def _check_identifier_kind(kind: str, customer_in: CustomerUpdate, customer: Customer) -> None:
    id_number = (
        customer_in.id_number
        if "id_number" in customer_in.model_fields_set
        else customer.id_number_enc
    )
    credit = (
        customer_in.credit_code
        if "credit_code" in customer_in.model_fields_set
        else customer.credit_code_enc
    )
    clash = identifier_kind_clash(kind, id_number=bool(id_number), credit_code=bool(credit))
    if clash is not None:
        raise ValidationFailed([clash])


def set_status(
    session: Session, *, customer_id: int, status: CustomerStatus, actor: User
) -> Customer:
    """Archive or restore a customer (kept with its history either way)."""
    with write_transaction(session):
        customer = get_customer(session, customer_id=customer_id, viewer=actor)
        if customer.status == status.value:
            return customer
        before = {"status": customer.status}
        customer.status = status.value
        customer.version += 1
        customer.archived_at = clock.now() if status is CustomerStatus.archived else None
        customer.updated_at = clock.now()
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="customer.archived"
            if status is CustomerStatus.archived
            else "customer.restored",
            target_type="customer",
            target_id=customer.id,
            before=before,
            after={"status": customer.status},
        )
    return customer


def reveal(session: Session, *, customer_id: int, field: str, actor: User) -> list[str]:
    """Clear values of one personal field, audited as ``customer.revealed``.

    The caller has already checked ``customer.reveal``; visibility is checked here.
    """
    with write_transaction(session):
        customer = get_customer(session, customer_id=customer_id, viewer=actor)
        values: list[str]
        if field == "phones":
            values = [cipher().decrypt("phone", p.phone_enc) for p in customer.phones]
        elif field == "contacts":
            values = [
                cipher().decrypt("phone", c.phone_enc) for c in customer.contacts if c.phone_enc
            ]
        else:
            stored = getattr(customer, f"{field}_enc")
            values = [cipher().decrypt(field, stored)] if stored else []
        record(
            session,
            actor=actor_of(actor),
            action="customer.revealed",
            target_type="customer",
            target_id=customer.id,
            after={"field": field, "count": len(values)},
        )
    return values


# --------------------------------------------------------------------------- ownership

# ``assign_owner(..., if_owner=ANY_OWNER)``: change the owner whoever holds the customer now.
ANY_OWNER = -1


def assign_owner(
    session: Session,
    *,
    customer_ids: Sequence[int],
    owner_id: int | None,
    actor: Actor,
    reason: str,
    if_owner: int | None = ANY_OWNER,
) -> dict[int, int | None]:
    """Give active customers to ``owner_id`` (None: no owner, the pool), each audited as
    ``customer.updated`` with the owner before and after and the ``reason``
    (claimed, released, assigned, returned_...). Runs in the caller's transaction.

    ``if_owner`` makes the change conditional: only customers whose owner is that user (or
    who have no owner, for None) change; the rows are locked first (``FOR UPDATE`` on
    PostgreSQL, the write lock on SQLite), so of two concurrent conditional changes one
    wins and the other sees the customer already changed. Returns {customer id: the
    previous owner} of the customers that changed.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Customer.id, Customer.owner_id)
        .where(Customer.id.in_(ids), Customer.status == CustomerStatus.active.value)
        .order_by(Customer.id)
        .with_for_update()
    ).all()
    changed = {
        cid: previous
        for cid, previous in rows
        if previous != owner_id and (if_owner == ANY_OWNER or previous == if_owner)
    }
    if not changed:
        return {}
    now = clock.now()
    session.execute(
        update(Customer)
        .where(Customer.id.in_(list(changed)))
        .values(owner_id=owner_id, version=Customer.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    # Customers loaded in this session show the new owner and version.
    for cid in changed:
        loaded = session.identity_map.get(session.identity_key(Customer, cid))
        if loaded is not None:
            session.expire(loaded, ["owner_id", "owner", "version", "updated_at"])
    # One chained batch: a daily pool return gives back thousands of customers.
    record_many(
        session,
        actor=actor,
        action="customer.updated",
        target_type="customer",
        changes=[
            (cid, {"owner_id": previous}, {"owner_id": owner_id, "reason": reason})
            for cid, previous in changed.items()
        ],
    )
    return changed
