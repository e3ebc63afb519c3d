"""Points accrual: every earning shipment credits its customer once, by the earn rules.

Set-based for throughput: the job walks the shipment table by id from a watermark in
chunks. Per chunk, in one transaction: the chunk's earn rows go into the ledger (INSERT ...
SELECT ... ON CONFLICT DO NOTHING; one row per shipment, key ``ship:<id>``: a shipment
already credited is skipped), their members are created or credited by one aggregated
upsert over exactly the rows just added, and the watermark is committed with them. A
crash rolls the chunk back whole; the next run starts from the last committed chunk; a run
from an older watermark (or from zero) adds nothing twice.

Earning shipments: not cancelled, fee at least the policy's minimum, and earning at least
one point. A shipment cancelled after it was credited keeps its points (a correction is a
manual adjustment).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, bindparam, func, select, text
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction
from guanxi.core.types import UTCDateTime
from guanxi.loyalty.clock import LOCAL_TZ, expiry_case, expiry_sql, month_starts
from guanxi.loyalty.ledger import dialect_of, max_entry_id, timed_sql
from guanxi.loyalty.models import AccrualState, LoyaltyMember, PointsEntry
from guanxi.loyalty.policy import LoyaltyPolicy, load_policy
from guanxi.shipments.enums import ServiceType, ShipmentStatus
from guanxi.shipments.models import Shipment

WATERMARK = "shipments"
# Shipments per transaction for a backfill (the CLI): every chunk touches most pages of
# the ledger's customer index and of the members, so few large chunks are much faster than
# many small ones (10 M shipments: 1 M a chunk ~125,000/s, 200,000 a chunk ~40,000/s on
# SQLite); a chunk holds the write lock for several seconds. The worker's job takes
# smaller ones (jobs.JOB_CHUNK): it usually finds a few thousand new shipments.
DEFAULT_CHUNK = 1_000_000
# PostgreSQL takes larger chunks: a chunk blocks no other writer but on the member rows it
# credits (locked for its last seconds), and every chunk credits most members once more
# (10 M shipments over 1 M customers: 61 s in chunks of 5 M, 107 s in chunks of 1 M).
PG_DEFAULT_CHUNK = 5_000_000


def default_chunk(session: Session) -> int:
    """A backfill's shipments per transaction on this database."""
    return PG_DEFAULT_CHUNK if dialect_of(session) == "postgresql" else DEFAULT_CHUNK


# SQLite: the page cache (KiB) and WAL checkpoint interval (pages) of the connection that
# accrues; the defaults suit web requests, a batch over millions of rows wants more.
SQLITE_CACHE_KIB = 262_144
# A backfill this large rebuilds the ledger's customer index once at the end.
BACKFILL_SHIPMENTS = 2_000_000
SQLITE_CHECKPOINT_PAGES = 20_000

Progress = Callable[[int, int], None]


@dataclass
class AccrualResult:
    """What one accrual run did."""

    chunks: int = 0
    shipments: int = 0
    entries: int = 0
    points: int = 0
    # New members over a whole run (:func:`accrue`; a single chunk does not count them).
    members: int = 0
    first_id: int = 0
    last_id: int = 0
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        """For the worker's log and the CLI."""
        return {
            "chunks": self.chunks,
            "shipments": self.shipments,
            "entries": self.entries,
            "points": self.points,
            "members": self.members,
            "last_id": self.last_id,
        }


def points_sql(policy: LoyaltyPolicy) -> str:
    """The earn rule as SQL over ``s`` (shipment): integer arithmetic, rounded down, like
    :meth:`EarnRule.points_for`. The multipliers are validated decimals and service types
    are enum values: nothing user-typed reaches the text."""
    earn = policy.earn
    cases = " ".join(
        f"WHEN '{t.value}' THEN {earn.multiplier_hundredths(t.value)}"
        for t in ServiceType
        if earn.multiplier_hundredths(t.value) != 100
    )
    multiplier = f"CASE s.service_type {cases} ELSE 100 END" if cases else "100"
    return (
        f"((s.fee_fen * {earn.rate_hundredths} * {multiplier}) / 1000000 + {earn.shipment_bonus})"
    )


def _ledger_sql(
    dialect: str, policy: LoyaltyPolicy, expiry: str, *, ordered: bool, guarded: bool = True
) -> str:
    """The ledger insert of one chunk ``:lo < id <= :hi``; ``expiry`` is the SQL of the
    rows' expiry (see :func:`clock.expiry_case`); ``ordered``: in customer order, so the
    ledger's customer index takes the chunk in one pass (not worth the sort while a
    backfill has the index down); ``guarded``: PostgreSQL, some of the chunk's shipments
    may already be credited (see :func:`_credited_in`).

    Only integers computed from the validated policy and fixed expressions are put into
    the text; values are bound."""
    key = (
        "'ship:' || lpad(CAST(s.id AS TEXT), 12, '0')"
        if dialect == "postgresql"
        else "'ship:' || printf('%012d', s.id)"
    )
    order = "ORDER BY s.customer_id" if ordered else ""
    # PostgreSQL: NOT EXISTS instead of ON CONFLICT, whose speculative insertion made the
    # statement 60 % slower, and only when the chunk's key range holds a credit already (a
    # run from a watermark moved back): otherwise the probe per row is wasted. Safe here:
    # accrual runs one chunk at a time (the watermark's row lock) and nothing else writes
    # earn rows; the unique index still stands guard (a duplicate would abort the chunk,
    # never double a credit).
    guard = (
        f"AND NOT EXISTS (SELECT 1 FROM loyalty_points AS p WHERE p.source_key = {key})"  # noqa: S608 - fixed text
        if dialect == "postgresql" and guarded
        else ""
    )
    conflict = "" if dialect == "postgresql" else "ON CONFLICT (source_key) DO NOTHING"
    return f"""
        INSERT INTO loyalty_points
            (customer_id, kind, points, source_key, occurred_at, expires_at, shipment_id,
             created_at)
        SELECT s.customer_id, 'earn', s.points, {key}, s.created_at, {expiry}, s.id, :now
        FROM (
            SELECT s.id, s.customer_id, s.created_at, {points_sql(policy)} AS points
            FROM shipment AS s
            WHERE s.id > :lo AND s.id <= :hi AND s.status <> :cancelled
              AND s.fee_fen > 0 AND s.fee_fen >= :min_fee
        ) AS s
        WHERE s.points > 0 {guard}
        {order}
        {conflict}
    """  # noqa: S608 - see the docstring


# The members of the rows just added: created (entry tier, joined at their first earning
# shipment) or credited, in one upsert. ``customer_id + 0``: the new rows are found by
# their ids (a range of the primary key); grouping on the bare column would let SQLite walk
# the whole ledger's customer index.
_MEMBERS_SQL = """
INSERT INTO loyalty_member
    (customer_id, tier, tier_since, joined_at, balance, lifetime_points, enrolled_via)
SELECT customer_id + 0, :entry, MIN(occurred_at), MIN(occurred_at), SUM(points), SUM(points),
       'shipment'
FROM loyalty_points
WHERE id > :after AND kind = 'earn'
GROUP BY customer_id + 0
ON CONFLICT (customer_id) DO UPDATE
SET balance = loyalty_member.balance + excluded.balance,
    lifetime_points = loyalty_member.lifetime_points + excluded.lifetime_points
"""

# PostgreSQL: the same in three statements. ON CONFLICT DO UPDATE probes, locks and
# updates member by member (a million members a chunk: most of the chunk's time). Instead
# the chunk's sums go into a temporary table once, each marked whether its customer is a
# member already (a read of the members: no statement here joins the member table it
# writes, whose growing heap a nested loop would rescan row after row); the existing
# members are credited by one join, and only customers new to the programme go through
# the upsert (ON CONFLICT still covers a member enrolled by hand meanwhile).
_PG_MEMBER_SUMS_SQL = """
CREATE TEMPORARY TABLE loyalty_accrual_sums ON COMMIT DROP AS
SELECT a.customer_id, a.first_at, a.points, m.customer_id IS NOT NULL AS known
FROM (
    SELECT customer_id, MIN(occurred_at) AS first_at, SUM(points) AS points
    FROM loyalty_points
    WHERE id > :after AND kind = 'earn'
    GROUP BY customer_id
) AS a
LEFT JOIN loyalty_member AS m ON m.customer_id = a.customer_id
"""
_PG_MEMBER_CREDIT_SQL = """
UPDATE loyalty_member AS m
SET balance = m.balance + s.points, lifetime_points = m.lifetime_points + s.points
FROM loyalty_accrual_sums AS s
WHERE s.known AND m.customer_id = s.customer_id
"""
_PG_MEMBER_NEW_SQL = """
INSERT INTO loyalty_member
    (customer_id, tier, tier_since, joined_at, balance, lifetime_points, enrolled_via)
SELECT s.customer_id, :entry, s.first_at, s.first_at, s.points, s.points, 'shipment'
FROM loyalty_accrual_sums AS s
WHERE NOT s.known
ON CONFLICT (customer_id) DO UPDATE
SET balance = loyalty_member.balance + excluded.balance,
    lifetime_points = loyalty_member.lifetime_points + excluded.lifetime_points
"""


def _credit_members(session: Session, *, after: int, entry: str) -> None:
    """Create or credit the members of the earn rows added after ledger row ``after``."""
    if dialect_of(session) != "postgresql":
        session.execute(text(_MEMBERS_SQL), {"after": after, "entry": entry})
        return
    session.execute(text(_PG_MEMBER_SUMS_SQL), {"after": after})
    session.execute(text("ANALYZE loyalty_accrual_sums"))
    session.execute(text(_PG_MEMBER_CREDIT_SQL))
    session.execute(text(_PG_MEMBER_NEW_SQL), {"entry": entry})
    # Dropped now, not at commit: the caller's transaction may run further chunks.
    session.execute(text("DROP TABLE loyalty_accrual_sums"))


# A chunk whose shipments span more months than this computes expiry row by row.
_MAX_CASE_MONTHS = 120


def source_key(shipment_id: int) -> str:
    """The ledger key of a shipment's earn row (zero-padded: keys sort as the ids do)."""
    return f"ship:{shipment_id:012d}"


def _credited_in(session: Session, lo: int, hi: int) -> bool:
    """Whether any shipment ``lo < id <= hi`` has its earn row: one probe of the unique
    key index, whose order is the ids' order."""
    return (
        session.scalar(
            select(PointsEntry.id)
            .where(PointsEntry.source_key.between(source_key(lo + 1), source_key(hi)))
            .limit(1)
        )
        is not None
    )


def _watermark(session: Session) -> int:
    """The committed watermark, locked for this transaction (PostgreSQL: a second worker
    waits here and then reads the moved watermark; SQLite: writers are serialised)."""
    if session.get(AccrualState, WATERMARK) is None:
        session.add(AccrualState(name=WATERMARK, last_id=0, updated_at=clock.now()))
        session.flush()
    stmt = select(AccrualState.last_id).where(AccrualState.name == WATERMARK)
    if dialect_of(session) == "postgresql":
        stmt = stmt.with_for_update()
    return int(session.scalar(stmt.execution_options(populate_existing=True)) or 0)


def _set_watermark(session: Session, last_id: int, now: datetime) -> None:
    session.execute(
        text("UPDATE loyalty_accrual_state SET last_id = :last, updated_at = :now WHERE name = :n")
        .bindparams(bindparam("now", type_=UTCDateTime))
        .execution_options(synchronize_session=False),
        {"last": last_id, "now": now, "n": WATERMARK},
    )


def watermark(session: Session) -> int:
    """The last shipment id whose points are in the ledger (0 before the first run)."""
    return int(
        session.scalar(select(AccrualState.last_id).where(AccrualState.name == WATERMARK)) or 0
    )


def reset_watermark(session: Session, *, to: int = 0) -> None:
    """Move the watermark back (operators re-checking old shipments: nothing is credited
    twice)."""
    with write_transaction(session):
        _watermark(session)
        _set_watermark(session, to, clock.now())


def accrue_chunk(
    session: Session,
    *,
    policy: LoyaltyPolicy,
    chunk: int = DEFAULT_CHUNK,
    now: datetime | None = None,
    tz: str = LOCAL_TZ,
    crash_after_ledger: bool = False,
    indexed: bool = True,
) -> AccrualResult | None:
    """Credit the next ``chunk`` shipments after the watermark, in one transaction; None
    when there are none. ``crash_after_ledger`` raises after the ledger insert (tests: a
    crash mid-chunk)."""
    now = now or clock.now()
    dialect = dialect_of(session)
    with write_transaction(session):
        _tune(session)
        lo = _watermark(session)
        top = session.scalar(select(func.max(Shipment.id)))
        if top is None or int(top) <= lo:
            return None
        # Ids are dense as a rule; a gap is stepped over from the next id that exists.
        first = int(session.scalar(select(func.min(Shipment.id)).where(Shipment.id > lo)) or 0)
        hi = min(first - 1 + chunk, int(top))
        shipments, first_at, last_at = session.execute(
            select(
                func.count(), func.min(Shipment.created_at), func.max(Shipment.created_at)
            ).where(Shipment.id > lo, Shipment.id <= hi)
        ).one()
        expiry_params: dict[str, Any] = {}
        if len(month_starts(first_at, last_at, tz)) <= _MAX_CASE_MONTHS:
            expiry, expiry_params = expiry_case(
                "s.created_at", first_at, last_at, policy.expiry_months, tz
            )
        else:
            expiry = expiry_sql(dialect, "s.created_at", policy.expiry_months, tz)
        guarded = dialect == "postgresql" and _credited_in(session, lo, hi)
        ledger_sql = _ledger_sql(dialect, policy, expiry, ordered=indexed, guarded=guarded)
        params: dict[str, Any] = {
            "lo": lo,
            "hi": hi,
            "cancelled": ShipmentStatus.cancelled.value,
            "min_fee": policy.earn.min_fee_fen,
            "now": now,
            **expiry_params,
        }
        after = max_entry_id(session)
        entries = cast(
            CursorResult[Any],
            session.execute(timed_sql(ledger_sql, "now", *expiry_params), params),
        ).rowcount
        if crash_after_ledger:
            raise RuntimeError("simulated crash after the ledger insert")
        points = 0
        if entries:
            _credit_members(session, after=after, entry=policy.entry.code)
            points = int(
                session.scalar(
                    select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                        PointsEntry.id > after, PointsEntry.kind == "earn"
                    )
                )
                or 0
            )
        _set_watermark(session, hi, now)
    return AccrualResult(
        chunks=1,
        shipments=int(shipments),
        entries=entries,
        points=points,
        first_id=lo + 1,
        last_id=hi,
    )


def accrue(
    session: Session,
    *,
    chunk: int | None = None,
    max_chunks: int | None = None,
    now: datetime | None = None,
    tz: str = LOCAL_TZ,
    progress: Progress | None = None,
) -> AccrualResult:
    """Credit every shipment after the watermark, chunk by chunk (each chunk its own
    transaction; by default :func:`default_chunk`); ``progress(done, total)`` after each,
    in shipments.

    A backfill (at least ``BACKFILL_SHIPMENTS`` waiting) takes the ledger's customer
    index down while it runs and builds it again at the end, in one sorted pass
    (seconds for ten million rows) instead of keeping it up to date chunk by chunk; the
    index is rebuilt also after an error, and at the start of the next run after a crash.
    Readers of one member's ledger scan meanwhile: a backfill is an operator's job.
    """
    started = time.perf_counter()
    chunk = chunk or default_chunk(session)
    policy = load_policy(session)
    members_before = _members(session)
    start = watermark(session)
    waiting = int(
        session.scalar(select(func.count()).select_from(Shipment).where(Shipment.id > start)) or 0
    )
    session.commit()
    backfill = waiting >= BACKFILL_SHIPMENTS
    _customer_index(session, present=True)
    if backfill:
        _customer_index(session, present=False)
    if progress is not None:
        progress(0, waiting)
    result = AccrualResult()
    try:
        while max_chunks is None or result.chunks < max_chunks:
            step = accrue_chunk(
                session, policy=policy, chunk=chunk, now=now, tz=tz, indexed=not backfill
            )
            if step is None:
                break
            if not result.chunks:
                result.first_id = step.first_id
            result.chunks += 1
            result.shipments += step.shipments
            result.entries += step.entries
            result.points += step.points
            result.last_id = step.last_id
            if progress is not None:
                progress(result.shipments, max(waiting, result.shipments))
    finally:
        session.rollback()
        _customer_index(session, present=True)
    if result.chunks:
        result.members = _members(session) - members_before
    session.commit()
    result.seconds = time.perf_counter() - started
    return result


def _tune(session: Session) -> None:
    """SQLite: a page cache, checkpoint interval and sorter threads for batch work on the
    connection at hand (per connection: the pool may hand out another one each time)."""
    if dialect_of(session) == "sqlite":
        session.execute(text(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"))
        session.execute(text(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}"))
        # Sorts (the members' grouping, the index build) may use a helper thread.
        session.execute(text("PRAGMA threads=2"))


def _customer_index(session: Session, *, present: bool) -> None:
    """Build (or drop) the ledger's customer index unless it already is (is not) there."""
    index = next(
        i for i in table_of(PointsEntry).indexes if i.name == "ix_loyalty_points_customer_id"
    )
    bind = session.get_bind()
    if present and dialect_of(session) == "sqlite" and isinstance(bind, Engine):
        # Move the backfill's pages from the WAL into the file first: the build reads the
        # whole table, faster from the file than through the WAL's index.
        raw = bind.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            raw.close()
    with write_transaction(session):
        _tune(session)
        if present:
            index.create(session.connection(), checkfirst=True)
        else:
            index.drop(session.connection(), checkfirst=True)


def _members(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LoyaltyMember)) or 0)
