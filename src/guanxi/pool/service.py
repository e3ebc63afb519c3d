"""The rules of the customer pool (公海): browsing it, claiming under the daily cap,
releasing, assigning, and the history.

Ownership is the customers domain's column: every change goes through
:func:`guanxi.customers.service.assign_owner` (conditional, locked, audited); this module
records the pool history beside it, in the same transaction. The daily return job lives in
:mod:`guanxi.pool.returns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased, selectinload

import guanxi.pool.messages  # noqa: F401 - registers the error texts
from guanxi.core import clock
from guanxi.core.db import rowcount, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.core.pagination import decode_id_cursor, encode_cursor
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, Tag, customer_tag
from guanxi.customers.service import ANY_OWNER, assign_owner, can_see, in_scope, to_summary
from guanxi.pool.enums import PoolEventKind
from guanxi.pool.models import PoolClaimDay, PoolEvent
from guanxi.pool.policy import load_policy
from guanxi.pool.schemas import (
    AssignIn,
    AssignResult,
    ClaimsToday,
    PoolCustomer,
    PoolEventRead,
)
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of, has_permission
from guanxi.shipments.models import Shipment

# Ids per IN list (bound parameters stay well under SQLite's limit).
CHUNK = 500


# --------------------------------------------------------------------------- local days


def local_day(at: datetime, timezone: str) -> date:
    """The calendar day of ``at`` in ``timezone`` (the cap and the rules count local days)."""
    return at.astimezone(ZoneInfo(timezone)).date()


def day_start(day: date, timezone: str) -> datetime:
    """The UTC instant local ``day`` begins."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    items = list(ids)
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


# --------------------------------------------------------------------------- browsing


@dataclass
class PoolFilters:
    """Filters of the pool list; ``None`` means not filtered."""

    region: str | None = None
    kind: str | None = None
    industry: str | None = None
    # In the pool for at least this many days.
    min_days_in_pool: int | None = None
    # Shipped within the last N days / not shipped for at least N days (or never).
    shipped_within_days: int | None = None
    idle_days: int | None = None


def _moves_of(customer_id: Any) -> Any:
    """Pool events that moved ``customer_id`` (warnings are not moves)."""
    return and_(PoolEvent.customer_id == customer_id, PoolEvent.kind != PoolEventKind.warned.value)


def list_pool(
    session: Session,
    *,
    filters: PoolFilters,
    now: datetime,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[PoolCustomer], str | None]:
    """One page of the active customers without an owner, newest first, phones masked."""
    stmt = select(Customer.id).where(
        Customer.owner_id.is_(None), Customer.status == CustomerStatus.active.value
    )
    if filters.region:
        stmt = stmt.where(Customer.region == filters.region)
    if filters.kind:
        stmt = stmt.where(Customer.kind == filters.kind)
    if filters.industry:
        stmt = stmt.where(Customer.industry == filters.industry)
    if filters.min_days_in_pool is not None:
        # In the pool since the last move (or since creation): no move after the cutoff.
        cutoff = now - timedelta(days=filters.min_days_in_pool)
        stmt = stmt.where(
            Customer.created_at <= cutoff,
            ~exists().where(_moves_of(Customer.id), PoolEvent.occurred_at > cutoff),
        )
    if filters.shipped_within_days is not None:
        since = now - timedelta(days=filters.shipped_within_days)
        stmt = stmt.where(
            exists().where(Shipment.customer_id == Customer.id, Shipment.created_at >= since)
        )
    if filters.idle_days is not None:
        since = now - timedelta(days=filters.idle_days)
        stmt = stmt.where(
            ~exists().where(Shipment.customer_id == Customer.id, Shipment.created_at >= since)
        )
    if cursor:
        stmt = stmt.where(Customer.id < decode_id_cursor(cursor))
    ids = list(session.scalars(stmt.order_by(Customer.id.desc()).limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    items = pool_rows(session, ids)
    return items, encode_cursor([ids[-1]]) if more and ids else None


def pool_rows(session: Session, ids: Sequence[int]) -> list[PoolCustomer]:
    """The pool rows of ``ids`` in that order: masked phone, tags, in the pool since, last
    shipment (three queries whatever the page size)."""
    if not ids:
        return []
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer)
            .where(Customer.id.in_(ids))
            .options(selectinload(Customer.phones), selectinload(Customer.tags))
        )
    }
    moved = dict(
        session.execute(
            select(PoolEvent.customer_id, func.max(PoolEvent.occurred_at))
            .where(PoolEvent.customer_id.in_(ids), PoolEvent.kind != PoolEventKind.warned.value)
            .group_by(PoolEvent.customer_id)
        ).all()
    )
    shipped = dict(
        session.execute(
            select(Shipment.customer_id, func.max(Shipment.created_at))
            .where(Shipment.customer_id.in_(ids))
            .group_by(Shipment.customer_id)
        ).all()
    )
    out = []
    for cid in ids:
        customer = customers.get(cid)
        if customer is None:
            continue
        summary = to_summary(customer)
        out.append(
            PoolCustomer(
                id=cid,
                kind=summary.kind,
                name=summary.name,
                phone=summary.phone,
                region=summary.region,
                industry=summary.industry,
                tags=summary.tags,
                in_pool_since=_aware(moved.get(cid)) or customer.created_at,
                last_shipment_at=_aware(shipped.get(cid)),
            )
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (MAX) come back without the column type on SQLite: naive UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def claims_today(session: Session, *, user_id: int, now: datetime, timezone: str) -> ClaimsToday:
    """The user's claims of today against the daily cap."""
    day = local_day(now, timezone)
    claimed = session.scalar(
        select(PoolClaimDay.claimed).where(PoolClaimDay.user_id == user_id, PoolClaimDay.day == day)
    )
    return ClaimsToday(day=day, claimed=claimed or 0, cap=load_policy(session).daily_cap)


def my_claimed(session: Session, *, user: User, limit: int = 50) -> list[PoolCustomer]:
    """The customers ``user`` owns through a claim or an assignment, last taken first."""
    last = (
        select(PoolEvent.customer_id, func.max(PoolEvent.id).label("last_id"))
        .where(
            PoolEvent.to_user_id == user.id,
            PoolEvent.kind.in_((PoolEventKind.claimed.value, PoolEventKind.assigned.value)),
        )
        .group_by(PoolEvent.customer_id)
        .subquery()
    )
    ids = list(
        session.scalars(
            select(last.c.customer_id)
            .join(Customer, Customer.id == last.c.customer_id)
            .where(Customer.owner_id == user.id, Customer.status == CustomerStatus.active.value)
            .order_by(last.c.last_id.desc())
            .limit(limit)
        )
    )
    return pool_rows(session, ids)


# --------------------------------------------------------------------------- claiming


def _count_claim(session: Session, *, user_id: int, day: date, cap: int) -> None:
    """Take one of the user's places of ``day``; a refusal when all ``cap`` are taken.

    One conditional UPDATE on the user's row of the day: concurrent claims queue on the row
    lock (PostgreSQL) or the write lock (SQLite) and only those under the cap pass.
    """
    maker = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        maker(PoolClaimDay)
        .values(user_id=user_id, day=day, claimed=0)
        .on_conflict_do_nothing(index_elements=["user_id", "day"])
    )
    taken = session.execute(
        update(PoolClaimDay)
        .where(PoolClaimDay.user_id == user_id, PoolClaimDay.day == day, PoolClaimDay.claimed < cap)
        .values(claimed=PoolClaimDay.claimed + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        raise Conflict("pool_cap_reached", field="customer_id", cap=cap)


def _taken(session: Session, customer_id: int, owner_id: int, user: User) -> Conflict:
    """The refusal of a claim of a customer that has an owner."""
    if owner_id == user.id:
        return Conflict("pool_yours", field="customer_id")
    owner = session.get(User, owner_id)
    return Conflict(
        "pool_taken", field="customer_id", owner=owner.display_name if owner else f"#{owner_id}"
    )


def _active_customer(session: Session, customer_id: int) -> Customer:
    # Fresh from the database: a long-lived session may hold the row as it was read earlier.
    customer = session.get(Customer, customer_id, populate_existing=True)
    if customer is None or customer.status != CustomerStatus.active.value:
        raise NotFound("customer not found", customer_id=customer_id)
    return customer


def claim(session: Session, *, customer_id: int, actor: User, timezone: str) -> PoolEvent:
    """Take a customer from the pool: the actor becomes its owner. At most the policy's
    daily cap per local day; of two people claiming the same customer at once exactly one
    wins and the other is told who was first (409)."""
    with write_transaction(session):
        customer = _active_customer(session, customer_id)
        # Out of the claimant's row-level scope: missing, before saying who owns it.
        if not in_scope(actor, customer):
            raise NotFound("customer not found", customer_id=customer_id)
        if customer.owner_id is not None:
            raise _taken(session, customer_id, customer.owner_id, actor)
        now = clock.now()
        # The cap's row first: a claimant holds it before the customer's row and the audit
        # chain, in that order, so concurrent claims never wait on each other in a circle.
        _count_claim(
            session,
            user_id=actor.id,
            day=local_day(now, timezone),
            cap=load_policy(session).daily_cap,
        )
        changed = assign_owner(
            session,
            customer_ids=[customer_id],
            owner_id=actor.id,
            actor=actor_of(actor),
            reason=PoolEventKind.claimed.value,
            if_owner=None,
        )
        if not changed:
            # Someone claimed it between the look and the lock; the place is given back
            # with the rollback.
            owner_id = session.scalar(select(Customer.owner_id).where(Customer.id == customer_id))
            raise _taken(session, customer_id, owner_id or 0, actor)
        event = PoolEvent(
            customer_id=customer_id,
            kind=PoolEventKind.claimed.value,
            occurred_at=now,
            actor_id=actor.id,
            to_user_id=actor.id,
        )
        session.add(event)
        session.flush()
    return event


def release(
    session: Session, *, customer_id: int, actor: User, note: str | None = None
) -> PoolEvent:
    """Put a customer back in the pool: its owner, or a sales manager for anyone's."""
    with write_transaction(session):
        customer = _active_customer(session, customer_id)
        if not can_see(actor, customer):
            raise NotFound("customer not found", customer_id=customer_id)
        owner_id = customer.owner_id
        if owner_id is None:
            raise Conflict("pool_not_owned", field="customer_id")
        if owner_id != actor.id and not has_permission(actor, Permission.sales_manage):
            raise PermissionDenied("pool_not_owner")
        changed = assign_owner(
            session,
            customer_ids=[customer_id],
            owner_id=None,
            actor=actor_of(actor),
            reason=PoolEventKind.released.value,
            if_owner=owner_id,
        )
        if not changed:
            raise Conflict("pool_not_owned", field="customer_id")
        event = PoolEvent(
            customer_id=customer_id,
            kind=PoolEventKind.released.value,
            occurred_at=clock.now(),
            actor_id=actor.id,
            from_user_id=owner_id,
            note=note or None,
        )
        session.add(event)
        session.flush()
    return event


def assignees(session: Session) -> list[User]:
    """Active users who work the sales pipeline (whom customers can be assigned to)."""
    users = session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))
    return [u for u in users if has_permission(u, Permission.sales_pipeline)]


def assign(session: Session, *, assign_in: AssignIn, actor: User) -> AssignResult:
    """Give customers to a salesperson (sales managers): from the pool or from another
    owner, outside the daily cap; each move is a history row and an audit entry."""
    with write_transaction(session):
        owner = session.get(User, assign_in.owner_id)
        if (
            owner is None
            or not owner.is_active
            or not has_permission(owner, Permission.sales_pipeline)
        ):
            raise ValidationFailed(
                [FieldError(("owner_id",), "pool_assignee", "Choose an active salesperson")]
            )
        wanted = list(dict.fromkeys(assign_in.customer_ids))
        known = set(
            session.scalars(
                select(Customer.id).where(
                    Customer.id.in_(wanted), Customer.status == CustomerStatus.active.value
                )
            )
        )
        missing = [
            FieldError(("customer_ids", i), "pool_customer_unknown", "No such active customer")
            for i, cid in enumerate(assign_in.customer_ids)
            if cid not in known
        ]
        if missing:
            raise ValidationFailed(missing)
        changed = assign_owner(
            session,
            customer_ids=wanted,
            owner_id=owner.id,
            actor=actor_of(actor),
            reason=PoolEventKind.assigned.value,
            if_owner=ANY_OWNER,
        )
        now = clock.now()
        for cid in wanted:
            if cid in changed:
                session.add(
                    PoolEvent(
                        customer_id=cid,
                        kind=PoolEventKind.assigned.value,
                        occurred_at=now,
                        actor_id=actor.id,
                        from_user_id=changed[cid],
                        to_user_id=owner.id,
                        note=assign_in.note or None,
                    )
                )
        session.flush()
    return AssignResult(
        assigned=[c for c in wanted if c in changed],
        unchanged=[c for c in wanted if c not in changed],
    )


# --------------------------------------------------------------------------- history


@dataclass
class HistoryFilters:
    """Filters of the pool history; ``user_id`` matches the actor, the previous or the new
    owner."""

    customer_id: int | None = None
    user_id: int | None = None
    kind: str | None = None


def _history_select() -> Any:
    actor, src, dst = aliased(User), aliased(User), aliased(User)
    return (
        select(
            PoolEvent,
            Customer.name,
            actor.display_name,
            src.display_name,
            dst.display_name,
        )
        .join(Customer, Customer.id == PoolEvent.customer_id)
        .outerjoin(actor, actor.id == PoolEvent.actor_id)
        .outerjoin(src, src.id == PoolEvent.from_user_id)
        .outerjoin(dst, dst.id == PoolEvent.to_user_id)
    )


def _event_read(row: Any) -> PoolEventRead:
    e, name, actor_name, from_name, to_name = row
    return PoolEventRead(
        id=e.id,
        customer_id=e.customer_id,
        customer_name=name,
        kind=PoolEventKind(e.kind),
        occurred_at=e.occurred_at,
        actor_id=e.actor_id,
        actor_name=actor_name,
        from_user_id=e.from_user_id,
        from_user_name=from_name,
        to_user_id=e.to_user_id,
        to_user_name=to_name,
        due_on=e.due_on,
        rule=e.rule,
        note=e.note,
    )


def get_event(session: Session, event_id: int) -> PoolEventRead:
    """One history row with its names."""
    row = session.execute(_history_select().where(PoolEvent.id == event_id)).first()
    if row is None:
        raise NotFound("pool event not found", event_id=event_id)
    return _event_read(row)


def history(
    session: Session, *, filters: HistoryFilters, cursor: str | None = None, limit: int = 50
) -> tuple[list[PoolEventRead], str | None]:
    """One page of the pool history, newest first, with the people's and customers' names."""
    stmt = _history_select()
    if filters.customer_id is not None:
        stmt = stmt.where(PoolEvent.customer_id == filters.customer_id)
    if filters.user_id is not None:
        uid = filters.user_id
        stmt = stmt.where(
            or_(
                PoolEvent.actor_id == uid,
                PoolEvent.from_user_id == uid,
                PoolEvent.to_user_id == uid,
            )
        )
    if filters.kind:
        stmt = stmt.where(PoolEvent.kind == filters.kind)
    if cursor:
        stmt = stmt.where(PoolEvent.id < decode_id_cursor(cursor))
    rows = session.execute(stmt.order_by(PoolEvent.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    items = [_event_read(row) for row in rows[:limit]]
    return items, encode_cursor([items[-1].id]) if more and items else None


def exempt_ids_clause(tags: Sequence[str]) -> Any:
    """Customers carrying any of ``tags`` (the policy's exempt tags)."""
    return Customer.id.in_(
        select(customer_tag.c.customer_id)
        .join(Tag, Tag.id == customer_tag.c.tag_id)
        .where(Tag.name.in_(list(tags)))
    )
