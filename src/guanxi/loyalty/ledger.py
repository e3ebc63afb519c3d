"""The points ledger (积分流水): append-only rows, the cached balance kept equal to their
sum, first-in-first-out expiry without touching a row, and the check that proves it.

Rules every write here keeps, inside the caller's transaction:

* A ledger row is only ever inserted. Its ``source_key`` is unique, so the same event
  (shipment, request retried, expiry step) can add one row at most.
* The member's ``balance`` changes in the same transaction by exactly the rows added. A
  debit is one conditional ``UPDATE ... SET balance = balance - n WHERE balance >= n``:
  of two concurrent redemptions that together overdraw, one finds no row to update and is
  refused, on SQLite (writers serialised by BEGIN IMMEDIATE) and PostgreSQL (row lock,
  the second re-checks the condition after the first commits) alike.
* Expiry is first in, first out: debits consume the oldest points first, so what has to
  expire by ``t`` is ``max(0, credits expiring by t - every debit so far)``. The expiry
  row's key names the customer and that cumulative credit level: two runs reaching the
  same level cannot both write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, TextClause, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from guanxi.core.db import table_of
from guanxi.core.errors import Conflict
from guanxi.core.types import UTCDateTime
from guanxi.loyalty.enums import PointsKind
from guanxi.loyalty.models import LoyaltyMember, PointsEntry


def timed_sql(sql: str, *names: str) -> TextClause:
    """A textual statement whose ``names`` parameters are UTC datetimes (bound in the
    stored form: SQLite compares them as text)."""
    return text(sql).bindparams(*(bindparam(n, type_=UTCDateTime) for n in names))


def dialect_of(session: Session) -> str:
    """``sqlite`` or ``postgresql``."""
    return session.get_bind().dialect.name


def lock_members(session: Session, customer_ids: Sequence[int]) -> None:
    """Take the member rows' locks for the rest of the transaction, in id order (PostgreSQL;
    SQLite's write transaction already excludes every other writer)."""
    if dialect_of(session) == "postgresql" and customer_ids:
        session.execute(
            select(LoyaltyMember.customer_id)
            .where(LoyaltyMember.customer_id.in_(sorted(set(customer_ids))))
            .order_by(LoyaltyMember.customer_id)
            .with_for_update()
        ).all()


def ensure_member(session: Session, *, customer_id: int, tier: str, at: datetime, via: str) -> bool:
    """Make the customer a member in ``tier`` unless they are one; True when added."""
    table = table_of(LoyaltyMember)
    maker = pg_insert if dialect_of(session) == "postgresql" else sqlite_insert
    stmt = (
        maker(table)
        .values(
            customer_id=customer_id,
            tier=tier,
            tier_since=at,
            joined_at=at,
            balance=0,
            lifetime_points=0,
            enrolled_via=via,
        )
        .on_conflict_do_nothing(index_elements=["customer_id"])
        # RETURNING rather than the row count, which the driver may not report for it.
        .returning(table.c.customer_id)
    )
    return session.execute(stmt).first() is not None


def find_entry(session: Session, source_key: str) -> PointsEntry | None:
    """The ledger row written for ``source_key``, if any."""
    return session.scalar(select(PointsEntry).where(PointsEntry.source_key == source_key))


def post(
    session: Session,
    *,
    customer_id: int,
    kind: PointsKind,
    points: int,
    source_key: str,
    at: datetime,
    expires_at: datetime | None = None,
    reason: str | None = None,
    reference: str | None = None,
    actor_id: int | None = None,
) -> tuple[PointsEntry, bool]:
    """Add one ledger row and move the balance with it, in the caller's transaction.

    Returns (row, added). A key already in the ledger returns its row and adds nothing
    (a retried request). A debit beyond the balance raises ``Conflict`` naming
    ``points``; the caller's transaction then rolls back whole. The member row must be
    locked by the caller (:func:`lock_members`) so the key check and the write see the
    same state on PostgreSQL.
    """
    existing = find_entry(session, source_key)
    if existing is not None:
        return existing, False
    member = table_of(LoyaltyMember).c
    if points >= 0:
        values: dict[str, Any] = {"balance": member.balance + points}
        if points > 0:
            values["lifetime_points"] = member.lifetime_points + points
        result = cast(
            CursorResult[Any],
            session.execute(
                update(LoyaltyMember)
                .where(LoyaltyMember.customer_id == customer_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
    else:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(LoyaltyMember)
                .where(
                    LoyaltyMember.customer_id == customer_id,
                    LoyaltyMember.balance >= -points,
                )
                .values(balance=member.balance + points)
                .execution_options(synchronize_session=False)
            ),
        )
    if result.rowcount != 1:
        balance = session.scalar(
            select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == customer_id)
        )
        if balance is None:
            raise Conflict("loyalty_not_member", field="customer_id")
        raise Conflict("points_insufficient", field="points", balance=balance, asked=-points)
    entry = PointsEntry(
        customer_id=customer_id,
        kind=kind.value,
        points=points,
        source_key=source_key,
        occurred_at=at,
        expires_at=expires_at if points > 0 else None,
        reason=reason,
        reference=reference,
        actor_id=actor_id,
        created_at=at,
    )
    session.add(entry)
    session.flush()
    return entry, True


# --------------------------------------------------------------------------- expiry


# Subqueries rather than a WITH clause: Python's sqlite3 reports no row count for a
# statement that does not start with INSERT.
_EXPIRE_SQL = """
INSERT INTO loyalty_points (customer_id, kind, points, source_key, occurred_at, created_at)
SELECT due.customer_id, 'expire', COALESCE(spent.debits, 0) - due.credits,
       'expire:' || CAST(due.customer_id AS TEXT) || ':' || CAST(due.credits AS TEXT),
       :now, :now
FROM (
    SELECT customer_id, SUM(points) AS credits
    FROM loyalty_points
    WHERE points > 0 AND expires_at <= :now AND customer_id BETWEEN :lo AND :hi
    GROUP BY customer_id
) AS due
LEFT JOIN (
    SELECT customer_id, -SUM(points) AS debits
    FROM loyalty_points
    WHERE points < 0 AND customer_id BETWEEN :lo AND :hi
    GROUP BY customer_id
) AS spent ON spent.customer_id = due.customer_id
WHERE due.credits > COALESCE(spent.debits, 0)
ON CONFLICT (source_key) DO NOTHING
"""

_EXPIRE = timed_sql(_EXPIRE_SQL, "now")

_APPLY_SQL = """
UPDATE loyalty_member SET balance = loyalty_member.balance + d.points
FROM (
    SELECT customer_id, SUM(points) AS points
    FROM loyalty_points
    WHERE id > :after AND kind = :kind
    GROUP BY customer_id
) AS d
WHERE loyalty_member.customer_id = d.customer_id
"""


def max_entry_id(session: Session) -> int:
    """The newest ledger row's id (rows added after it are this transaction's own: on
    SQLite the write lock is held, on PostgreSQL new ids come from the sequence after)."""
    return int(session.scalar(select(func.coalesce(func.max(PointsEntry.id), 0))) or 0)


def expire_range(session: Session, *, lo: int, hi: int, now: datetime) -> tuple[int, int]:
    """Expire what is due at ``now`` for members ``lo`` .. ``hi`` (customer ids), in the
    caller's transaction; returns (members, points) expired."""
    if dialect_of(session) == "postgresql":
        session.execute(
            select(LoyaltyMember.customer_id)
            .where(LoyaltyMember.customer_id.between(lo, hi))
            .order_by(LoyaltyMember.customer_id)
            .with_for_update()
        ).all()
    after = max_entry_id(session)
    params = {"now": now, "lo": lo, "hi": hi}
    added = cast(CursorResult[Any], session.execute(_EXPIRE, params)).rowcount
    if not added:
        return 0, 0
    session.execute(text(_APPLY_SQL), {"after": after, "kind": PointsKind.expire.value})
    points = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.id > after, PointsEntry.kind == PointsKind.expire.value
        )
    )
    return added, -int(points or 0)


@dataclass(frozen=True)
class Expiring:
    """Points leaving a balance at one moment, if nothing is spent before."""

    at: datetime
    points: int


def upcoming_expiry(session: Session, customer_id: int, *, until: datetime) -> list[Expiring]:
    """What will expire up to ``until``, moment by moment, first in first out, assuming
    no further debits (the member panel's "expiring soon")."""
    spent = -int(
        session.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.customer_id == customer_id, PointsEntry.points < 0
            )
        )
        or 0
    )
    rows = session.execute(
        select(PointsEntry.expires_at, func.sum(PointsEntry.points))
        .where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.points > 0,
            PointsEntry.expires_at <= until,
        )
        .group_by(PointsEntry.expires_at)
        .order_by(PointsEntry.expires_at)
    ).all()
    out: list[Expiring] = []
    cumulative = 0
    for at, credits in rows:
        before = max(0, cumulative - spent)
        cumulative += int(credits)
        now_due = max(0, cumulative - spent)
        if now_due > before and at is not None:
            out.append(Expiring(at=at, points=now_due - before))
    return out


# --------------------------------------------------------------------------- checks


@dataclass
class BalanceCheck:
    """The outcome of :func:`verify_balances`: totals and every member whose cached
    balance or lifetime points differ from the ledger (customer id, cached, ledger)."""

    members: int
    entries: int
    balance_total: int
    ledger_total: int
    differences: list[tuple[int, int, int]] = field(default_factory=list)
    lifetime_differences: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Ledger == balances for everyone."""
        return not self.differences and not self.lifetime_differences


_VERIFY_BATCH = 200_000

# A full join: ledger rows of a customer with no member row are a difference too (their
# cached balance is 0), as in the SQLite path.
_VERIFY_SQL = """
SELECT COALESCE(m.customer_id, l.customer_id), COALESCE(m.balance, 0), COALESCE(l.total, 0),
       COALESCE(m.lifetime_points, 0), COALESCE(l.credits, 0)
FROM loyalty_member AS m
FULL JOIN (
    SELECT customer_id, SUM(points) AS total,
           SUM(CASE WHEN points > 0 THEN points ELSE 0 END) AS credits
    FROM loyalty_points GROUP BY customer_id
) AS l ON l.customer_id = m.customer_id
WHERE COALESCE(m.balance, 0) <> COALESCE(l.total, 0)
   OR COALESCE(m.lifetime_points, 0) <> COALESCE(l.credits, 0)
ORDER BY 1
LIMIT :limit
"""


def _verify_sql(session: Session, limit: int) -> BalanceCheck:
    """:func:`verify_balances` in SQL (PostgreSQL)."""
    entries, ledger_total = session.execute(
        select(func.count(), func.coalesce(func.sum(PointsEntry.points), 0))
    ).one()
    members, balance_total = session.execute(
        select(func.count(), func.coalesce(func.sum(LoyaltyMember.balance), 0))
    ).one()
    check = BalanceCheck(
        members=int(members),
        entries=int(entries),
        balance_total=int(balance_total),
        ledger_total=int(ledger_total),
    )
    for cid, balance, total, lifetime, credits in session.execute(
        text(_VERIFY_SQL), {"limit": limit}
    ):
        if int(balance) != int(total):
            check.differences.append((int(cid), int(balance), int(total)))
        if int(lifetime) != int(credits):
            check.lifetime_differences.append((int(cid), int(lifetime), int(credits)))
    return check


def _ledger_sums(session: Session, size: int) -> tuple[Any, Any]:
    """Per-customer (total, credits) of the whole ledger, as arrays indexed by customer
    id: the rows streamed from the driver's cursor in storage order, summed in numpy."""
    import numpy as np

    totals = np.zeros(size, dtype=np.int64)
    credits = np.zeros(size, dtype=np.int64)
    raw = session.connection().connection.dbapi_connection
    assert raw is not None  # noqa: S101 - an open session's connection
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT customer_id, points FROM loyalty_points")
        while True:
            part = cursor.fetchmany(_VERIFY_BATCH)
            if not part:
                break
            block = np.array(part, dtype=np.int64).reshape(-1, 2)
            cids, points = block[:, 0], block[:, 1]
            # Per-batch sums stay far below 2**53: exact in float64.
            totals += np.bincount(cids, weights=points, minlength=size).astype(np.int64)
            positive = np.where(points > 0, points, 0)
            credits += np.bincount(cids, weights=positive, minlength=size).astype(np.int64)
    finally:
        cursor.close()
    return totals, credits


def verify_balances(session: Session, *, limit: int = 1000) -> BalanceCheck:
    """Compare every member's cached balance with the sum of their ledger rows (and
    lifetime points with the sum of their credits); report up to ``limit`` differences.
    Read-only.

    On SQLite the ledger is read once in storage order and summed per customer in numpy:
    a grouped SQL aggregate over ten million rows makes SQLite sort them (about a minute)
    or follow the customer index into rows stored in shipment order (longer still).
    PostgreSQL hash-aggregates in SQL."""
    import numpy as np

    if dialect_of(session) == "postgresql":
        return _verify_sql(session, limit)

    top = max(
        int(session.scalar(select(func.coalesce(func.max(PointsEntry.customer_id), 0))) or 0),
        int(session.scalar(select(func.coalesce(func.max(LoyaltyMember.customer_id), 0))) or 0),
    )
    totals, credits = _ledger_sums(session, top + 1)
    rows = np.array(
        session.execute(
            select(LoyaltyMember.customer_id, LoyaltyMember.balance, LoyaltyMember.lifetime_points)
        ).all(),
        dtype=np.int64,
    ).reshape(-1, 3)
    cached_balance = np.zeros(top + 1, dtype=np.int64)
    cached_lifetime = np.zeros(top + 1, dtype=np.int64)
    cached_balance[rows[:, 0]] = rows[:, 1]
    cached_lifetime[rows[:, 0]] = rows[:, 2]
    check = BalanceCheck(
        members=len(rows),
        entries=int(session.scalar(select(func.count()).select_from(PointsEntry)) or 0),
        balance_total=int(rows[:, 1].sum()),
        ledger_total=int(totals.sum()),
    )
    for cid in np.flatnonzero(cached_balance != totals)[:limit]:
        check.differences.append((int(cid), int(cached_balance[cid]), int(totals[cid])))
    for cid in np.flatnonzero(cached_lifetime != credits)[:limit]:
        check.lifetime_differences.append((int(cid), int(cached_lifetime[cid]), int(credits[cid])))
    return check
