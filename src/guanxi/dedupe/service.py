"""The rules of de-duplication: scoring runs, the review queue, merge and undo.

A run scores candidate pairs (:mod:`guanxi.dedupe.linkage`); pairs at or above the automatic
threshold merge at once (the older record survives, taking the duplicate's values where its
own are blank), pairs between the review threshold and the automatic one wait in the queue
for a person to choose the surviving value per field or to say "not the same". A merge
moves every child row — the customer's own (phones, addresses, contacts, tags) and other
domains' (shipments, and whatever registers a mover) — records what moved, and can be
undone. Every merge, decision and undo is audited in its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.config import Settings, get_settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.customers import merging
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerAddress, CustomerPhone, SearchToken
from guanxi.customers.queries import read_customer
from guanxi.customers.schemas import CustomerCreate, CustomerRead
from guanxi.customers.service import address_values
from guanxi.customers.tokens import query_tokens
from guanxi.dedupe import features, linkage
from guanxi.dedupe.enums import MatchRule, PairStatus, RunMode
from guanxi.dedupe.lock import exclusive
from guanxi.dedupe.models import CustomerMerge, DedupeRun, DuplicatePair
from guanxi.security.models import User

# Probability at or above which a pair merges without review, and below which a pair is
# not worth a reviewer's time. Chosen on planted duplicates (docs/benchmarks.md): at 0.99
# precision stays above 0.99.
AUTO_THRESHOLD = 0.99
REVIEW_THRESHOLD = 0.8
_THRESHOLDS = "Thresholds must satisfy 0 < review <= automatic <= 1"
MERGES_PER_TRANSACTION = 100
# Above this many new customers an incremental run scans the base instead of looking up
# each newcomer's candidates (index lookups cost more than one pass from there on).
INCREMENTAL_LIMIT = 2000

Mover = Callable[[Session, int, int], list[int]]
Restorer = Callable[[Session, list[int], int, int], None]
_MOVERS: dict[str, tuple[Mover, Restorer]] = {}


def register_mover(name: str, move: Mover, restore: Restorer) -> None:
    """Let another domain's rows follow a merge: ``move(session, from_id, to_id) -> ids``
    and ``restore(session, ids, survivor_id, to_id)`` for the undo."""
    _MOVERS[name] = (move, restore)


# --------------------------------------------------------------------------- runs


@dataclass
class RunProgress:
    """Stage callbacks for the CLI's progress display."""

    stage: Callable[[str], None] = lambda _stage: None


def _rule(pair: linkage.ScoredPair) -> MatchRule:
    if "id_number" in pair.agreed:
        return MatchRule.id_number
    if "credit_code" in pair.agreed:
        return MatchRule.credit_code
    return MatchRule.model


def run(
    session: Session,
    *,
    actor: Actor,
    mode: RunMode = RunMode.full,
    auto_threshold: float = AUTO_THRESHOLD,
    review_threshold: float = REVIEW_THRESHOLD,
    auto_merge: bool = True,
    progress: RunProgress | None = None,
    settings: Settings | None = None,
) -> DedupeRun:
    """Score the base (full), or the customers added or changed since the last finished
    run (incremental).

    A scan of the whole base scores on the engine ``settings.dedupe_engine`` names (default:
    the process's settings); a few newcomers always score on DuckDB (see linkage). A run
    started while another is going waits for it (:mod:`guanxi.dedupe.lock`)."""
    if not 0 < review_threshold <= auto_threshold <= 1:
        raise ValidationFailed([FieldError(("auto_threshold",), "threshold_order", _THRESHOLDS)])
    with exclusive(session, wait=True):
        return _run(
            session,
            actor=actor,
            mode=mode,
            auto_threshold=auto_threshold,
            review_threshold=review_threshold,
            auto_merge=auto_merge,
            progress=progress or RunProgress(),
            settings=settings,
        )


@dataclass(frozen=True)
class PeriodicRun:
    """What :func:`run_incremental_if_needed` did: ``ran`` (then ``run`` is the run),
    ``busy`` (another run held the lock), ``not_due`` (the last run finished less than the
    interval ago) or ``nothing_new`` (nobody added or changed since the last run)."""

    outcome: Literal["ran", "busy", "not_due", "nothing_new"]
    run: DedupeRun | None = None


def run_incremental_if_needed(
    session: Session,
    *,
    actor: Actor,
    every: timedelta,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> PeriodicRun:
    """An incremental run when the newest finished run ended ``every`` or longer before
    ``now`` and customers were added or changed since; otherwise nothing, and no run is
    recorded. The worker's periodic job: when another run is going it neither waits nor
    runs, so two workers never run it at once."""
    with exclusive(session, wait=False) as mine:
        if not mine:
            return PeriodicRun("busy")
        last_end = session.scalar(select(func.max(DedupeRun.finished_at)))
        if last_end is not None and (now or clock.now()) - last_end < every:
            session.commit()
            return PeriodicRun("not_due")
        began = clock.now()
        last, since = _watermark(session)
        top = _top(session)
        new_ids = _to_score(session, last, since)
        session.commit()
        if not new_ids:
            return PeriodicRun("nothing_new")
        done = _run(
            session,
            actor=actor,
            mode=RunMode.incremental,
            auto_threshold=AUTO_THRESHOLD,
            review_threshold=REVIEW_THRESHOLD,
            auto_merge=True,
            progress=RunProgress(),
            settings=settings,
            found=(began, top, new_ids),
        )
        return PeriodicRun("ran", done)


def _watermark(session: Session) -> tuple[int, datetime | None]:
    """The highest customer id the finished runs looked at, and when the newest of them
    began (its reads saw every change committed before)."""
    # Only finished runs count: a run killed while it merged left its sure pairs pending;
    # its newcomers are scored again so those pairs are merged, not left for review.
    row = session.execute(
        select(func.max(DedupeRun.last_customer_id), func.max(DedupeRun.started_at)).where(
            DedupeRun.finished_at.is_not(None)
        )
    ).one()
    return int(row[0] or 0), row[1]


def _top(session: Session) -> int:
    # Read before the customers to score: one created in between is above neither, and
    # would be skipped for good if the run recorded a later maximum as looked at.
    return session.scalar(select(func.max(Customer.id))) or 0


def _to_score(session: Session, last: int, since: datetime | None) -> list[int]:
    """The active customers an incremental run scores: those created after ``last``, and
    those changed after ``since`` whose latest change was not a merge into them (a merge
    brings the survivor only values of the duplicate, which was scored with them; the
    survivors of a run's own merges would otherwise be scored again by the next run)."""
    wanted: Any = Customer.id > last
    if since is not None:
        merged_last = (
            select(CustomerMerge.id)
            .where(
                CustomerMerge.survivor_id == Customer.id,
                CustomerMerge.created_at >= Customer.updated_at,
            )
            .exists()
        )
        wanted = or_(wanted, and_(Customer.updated_at > since, ~merged_last))
    return list(
        session.scalars(
            select(Customer.id)
            .where(Customer.status == CustomerStatus.active.value, wanted)
            .order_by(Customer.id)
        )
    )


def _run(
    session: Session,
    *,
    actor: Actor,
    mode: RunMode,
    auto_threshold: float,
    review_threshold: float,
    auto_merge: bool,
    progress: RunProgress,
    settings: Settings | None,
    found: tuple[datetime, int, list[int]] | None = None,
) -> DedupeRun:
    """:func:`run` with the lock held; ``found``: when the run began, the highest customer
    id then and the customers to score, when the caller has read them already."""
    started = time.perf_counter()
    if found is None:
        # Taken before anything is read: a change committed after this moment is seen by
        # the next incremental run.
        began = clock.now()
        last, since = _watermark(session)
        top = _top(session)
        new_ids = _to_score(session, last, since) if mode is RunMode.incremental else []
    else:
        began, top, new_ids = found
    progress.stage("features")
    spark = linkage.engine_for(settings or get_settings())
    if mode is RunMode.full:
        table = features.load_features(session)
        progress.stage("scoring")
        scored = linkage.score_all(table, keep_from=review_threshold, spark=spark)
        looked_at = table.num_rows
    elif len(new_ids) > INCREMENTAL_LIMIT:
        # Many newcomers (a large import): one scan of the base beats looking up each
        # newcomer's candidates; only pairs with a newcomer (or a changed record) are kept.
        wanted = set(new_ids)
        table = features.load_features(session)
        progress.stage("scoring")
        scored = [
            p
            for p in linkage.score_all(table, keep_from=review_threshold, spark=spark)
            if p.left in wanted or p.right in wanted
        ]
        looked_at = len(new_ids)
    else:
        scored, looked_at = _score_new(session, new_ids, review_threshold, progress)
    session.commit()
    progress.stage("storing")
    with write_transaction(session):
        dedupe_run = DedupeRun(
            mode=mode.value,
            customers=looked_at,
            last_customer_id=top,
            auto_threshold=auto_threshold,
            review_threshold=review_threshold,
            created_by=actor.id,
            started_at=began,
        )
        session.add(dedupe_run)
        session.flush()
        pairs = _store_pairs(session, scored, dedupe_run.id)
        dedupe_run.candidates = len(scored)
        run_id = dedupe_run.id
    merged = 0
    if auto_merge:
        progress.stage("merging")
        merged = _auto_merge(session, [p for p in pairs if p[2] >= auto_threshold], actor)
    with write_transaction(session):
        # Read again: the merges let go of every loaded object (expunge_all), and figures
        # set on a detached run would never be written (nor would its finish, which the
        # next incremental run starts from).
        found_run = session.get(DedupeRun, run_id, populate_existing=True)
        if found_run is None:  # pragma: no cover - stored above, never deleted
            raise RuntimeError(f"dedupe run {run_id} vanished")
        dedupe_run = found_run
        dedupe_run.auto_merged = merged
        dedupe_run.queued = (
            session.scalar(
                select(func.count())
                .select_from(DuplicatePair)
                .where(
                    DuplicatePair.run_id == dedupe_run.id,
                    DuplicatePair.status == PairStatus.pending.value,
                )
            )
            or 0
        )
        dedupe_run.finished_at = clock.now()
        dedupe_run.seconds = time.perf_counter() - started
        record(
            session,
            actor=actor,
            action="dedupe.run",
            target_type="dedupe_run",
            target_id=dedupe_run.id,
            after={
                "mode": mode.value,
                "customers": looked_at,
                "candidates": len(scored),
                "auto_merged": merged,
                "queued": dedupe_run.queued,
            },
        )
    return dedupe_run


def _store_pairs(
    session: Session, scored: Sequence[linkage.ScoredPair], run_id: int
) -> list[tuple[int, int, float, int]]:
    """Insert new pairs, refresh pending ones; decided pairs keep their decision.

    Returns ``(left, right, probability, pair id)`` of the pairs still pending.
    """
    existing = {
        (left, right): (pid, status)
        for pid, left, right, status in session.execute(
            select(
                DuplicatePair.id,
                DuplicatePair.left_id,
                DuplicatePair.right_id,
                DuplicatePair.status,
            )
        )
    }
    now = clock.now()
    fresh = []
    for pair in scored:
        known = existing.get((pair.left, pair.right))
        if known is None:
            fresh.append(
                {
                    "left_id": pair.left,
                    "right_id": pair.right,
                    "probability": pair.probability,
                    "weight": pair.weight,
                    "rule": _rule(pair).value,
                    "agreed": ",".join(pair.agreed),
                    "status": PairStatus.pending.value,
                    "run_id": run_id,
                    "created_at": now,
                }
            )
        elif known[1] == PairStatus.pending.value:
            session.execute(
                update(DuplicatePair)
                .where(DuplicatePair.id == known[0])
                .values(
                    probability=pair.probability,
                    weight=pair.weight,
                    agreed=",".join(pair.agreed),
                    run_id=run_id,
                )
            )
    for lo in range(0, len(fresh), 5000):
        session.execute(insert(DuplicatePair), fresh[lo : lo + 5000])
    rows = session.execute(
        select(
            DuplicatePair.left_id,
            DuplicatePair.right_id,
            DuplicatePair.probability,
            DuplicatePair.id,
        ).where(DuplicatePair.run_id == run_id, DuplicatePair.status == PairStatus.pending.value)
    ).all()
    return [(int(a), int(b), float(p), int(i)) for a, b, p, i in rows]


def _auto_merge(session: Session, pairs: list[tuple[int, int, float, int]], actor: Actor) -> int:
    """Merge the sure pairs, strongest first; chains (A~B, B~C) end in one survivor."""
    survivor_of: dict[int, int] = {}

    def root(cid: int) -> int:
        while cid in survivor_of:
            cid = survivor_of[cid]
        return cid

    merged = 0
    pairs = sorted(pairs, key=lambda p: -p[2])
    for lo in range(0, len(pairs), MERGES_PER_TRANSACTION):
        with write_transaction(session):
            for left, right, _probability, pair_id in pairs[lo : lo + MERGES_PER_TRANSACTION]:
                a, b = root(left), root(right)
                if a == b:
                    _decide(session, pair_id, PairStatus.merged, actor)
                    continue
                survivor_id, duplicate_id = min(a, b), max(a, b)
                done = _merge(
                    session,
                    survivor_id=survivor_id,
                    duplicate_id=duplicate_id,
                    fields=None,
                    actor=actor,
                    pair_id=pair_id,
                    automatic=True,
                )
                if done is None:
                    _decide(session, pair_id, PairStatus.obsolete, actor)
                    continue
                survivor_of[duplicate_id] = survivor_id
                merged += 1
        session.expunge_all()
    return merged


# --------------------------------------------------------------------------- incremental


def _candidate_ids(session: Session, new: Any) -> set[int]:
    """Existing customers sharing a blocking key with the new records, found by index."""
    ids: set[int] = set()
    phones = {p for plist in new.column("phones").to_pylist() if plist for p in plist}
    for lo_phones in _chunks(sorted(phones)):
        ids.update(
            session.scalars(
                select(CustomerPhone.customer_id).where(CustomerPhone.phone_bidx.in_(lo_phones))
            )
        )
    for column, attr in (
        ("email", Customer.email_bidx),
        ("id_number", Customer.id_number_bidx),
        ("credit_code", Customer.credit_code_bidx),
    ):
        values = sorted({v for v in new.column(column).to_pylist() if v})
        for part in _chunks(values):
            ids.update(session.scalars(select(Customer.id).where(attr.in_(part))))
    for core in {v for v in new.column("name_core").to_pylist() if v}:
        tokens = query_tokens(core)
        if not tokens:
            continue
        stmt = select(SearchToken.customer_id).where(SearchToken.token == tokens[0])
        for token in tokens[1:3]:
            stmt = stmt.where(
                SearchToken.customer_id.in_(
                    select(SearchToken.customer_id).where(SearchToken.token == token)
                )
            )
        ids.update(session.scalars(stmt.limit(2000)))
    for city, building in {
        (c, b)
        for c, b in zip(
            new.column("city").to_pylist(), new.column("building").to_pylist(), strict=True
        )
        if c and b
    }:
        ids.update(
            session.scalars(
                select(CustomerAddress.customer_id)
                .where(CustomerAddress.city == city, CustomerAddress.detail.like(f"{building}%"))
                .limit(2000)
            )
        )
    return ids


def _chunks(values: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for lo in range(0, len(values), size):
        yield values[lo : lo + size]


def _score_new(
    session: Session, new_ids: list[int], keep_from: float, progress: RunProgress
) -> tuple[list[linkage.ScoredPair], int]:
    new = features.load_features(session, new_ids)
    base_ids = _candidate_ids(session, new) - set(new_ids)
    base = features.load_features(session, base_ids)
    progress.stage("scoring")
    return linkage.score_between(base, new, keep_from=keep_from), new.num_rows


@dataclass(frozen=True)
class Candidate:
    """An existing customer a record about to be created probably duplicates."""

    customer_id: int
    name: str
    probability: float
    agreed: tuple[str, ...]


def likely_duplicates(
    session: Session,
    *,
    name: str,
    kind: str,
    phones: Sequence[str] = (),
    email: str | None = None,
    id_number: str | None = None,
    credit_code: str | None = None,
    birthday: str | None = None,
    address: tuple[str | None, str | None, str | None, str | None] | None = None,
    threshold: float = REVIEW_THRESHOLD,
    limit: int = 5,
) -> list[Candidate]:
    """Existing active customers a new record (already normalised values) probably is."""
    new = features.record_table(
        name=name,
        kind=kind,
        phones=phones,
        email=email,
        id_number=id_number,
        credit_code=credit_code,
        birthday=birthday,
        address=address,
    )
    base_ids = _candidate_ids(session, new)
    if not base_ids:
        return []
    base = features.load_features(session, base_ids)
    scored = linkage.score_between(base, new, keep_from=threshold)
    best: dict[int, linkage.ScoredPair] = {}
    for pair in scored:
        other = pair.right if pair.left == features.NEW_RECORD_ID else pair.left
        if other != features.NEW_RECORD_ID:
            best[other] = pair
    names = {
        cid: name
        for cid, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(list(best)))
        )
    }
    out = [
        Candidate(cid, names.get(cid, ""), p.probability, p.agreed)
        for cid, p in best.items()
        if cid in names
    ]
    out.sort(key=lambda c: -c.probability)
    return out[:limit]


# --------------------------------------------------------------------------- merge / undo


def _decide(session: Session, pair_id: int, status: PairStatus, actor: Actor) -> None:
    session.execute(
        update(DuplicatePair)
        .where(DuplicatePair.id == pair_id)
        .values(status=status.value, decided_by=actor.id, decided_at=clock.now())
    )


def _merge(
    session: Session,
    *,
    survivor_id: int,
    duplicate_id: int,
    fields: Iterable[str] | None,
    actor: Actor,
    pair_id: int | None,
    automatic: bool,
) -> CustomerMerge | None:
    """Fold the duplicate into the survivor inside the caller's transaction.

    Returns None when either record is no longer an active customer.
    """
    records = merging.read_pair(session, survivor_id, duplicate_id)
    survivor, duplicate = records.get(survivor_id), records.get(duplicate_id)
    active = CustomerStatus.active.value
    if survivor is None or duplicate is None:
        return None
    if survivor["status"] != active or duplicate["status"] != active:
        return None
    rows = merging.merge_rows(session, survivor, duplicate, fields)
    moved = rows.moved
    for name, (move, _restore) in _MOVERS.items():
        moved[name] = move(session, duplicate_id, survivor_id)
    merge = CustomerMerge(
        survivor_id=survivor_id,
        merged_id=duplicate_id,
        pair_id=pair_id,
        automatic=automatic,
        fields=rows.changes,
        moved=moved,
        merged_status=rows.prior_status,
        created_by=actor.id,
        created_at=clock.now(),
    )
    session.add(merge)
    session.flush()
    if pair_id is not None:
        _decide(session, pair_id, PairStatus.merged, actor)
    counts = {table: len(ids) for table, ids in moved.items()}
    record(
        session,
        actor=actor,
        action="customer.merged",
        target_type="customer",
        target_id=survivor_id,
        before=rows.audit_before,
        after={
            **rows.audit_after,
            "merged_id": duplicate_id,
            "merge_id": merge.id,
            "moved": counts,
        },
    )
    record(
        session,
        actor=actor,
        action="customer.merged_into",
        target_type="customer",
        target_id=duplicate_id,
        before={"status": rows.prior_status},
        after={
            "status": CustomerStatus.merged.value,
            "survivor_id": survivor_id,
            "merge_id": merge.id,
        },
    )
    return merge


def merge_customers(
    session: Session,
    *,
    survivor_id: int,
    duplicate_id: int,
    fields: Iterable[str] | None,
    actor: Actor,
    pair_id: int | None = None,
) -> CustomerMerge:
    """Merge two customers as a person decided; ``fields`` are taken from the duplicate."""
    if survivor_id == duplicate_id:
        raise ValidationFailed(
            [FieldError(("survivor_id",), "same_customer", "A customer cannot merge with itself")]
        )
    unknown = sorted(set(fields or ()) - set(merging.MERGEABLE))
    if unknown:
        raise ValidationFailed(
            [
                FieldError(
                    ("fields",),
                    "merge_field_unknown",
                    "Not a field that can be merged: {field}",
                    {"field": unknown[0]},
                )
            ]
        )
    with write_transaction(session):
        merge = _merge(
            session,
            survivor_id=survivor_id,
            duplicate_id=duplicate_id,
            fields=fields,
            actor=actor,
            pair_id=pair_id,
            automatic=False,
        )
        if merge is None:
            if len(merging.read_pair(session, survivor_id, duplicate_id)) < 2:
                raise NotFound("customer not found")
            raise Conflict("merge_not_active", field="survivor_id")
    # Rows changed under the ORM's feet (Core statements): loaded customers must re-read.
    session.expire_all()
    return merge


def merge_pair(
    session: Session,
    *,
    pair_id: int,
    survivor_id: int,
    fields: Iterable[str] | None,
    actor: Actor,
) -> CustomerMerge:
    """Merge a queued pair; ``survivor_id`` is one of the two."""
    pair = session.get(DuplicatePair, pair_id)
    if pair is None:
        raise NotFound("duplicate pair not found", pair_id=pair_id)
    if pair.status != PairStatus.pending.value:
        raise Conflict("pair_decided", field="pair_id")
    if survivor_id not in (pair.left_id, pair.right_id):
        raise ValidationFailed(
            [FieldError(("survivor_id",), "survivor_not_in_pair", "Keep one of the two records")]
        )
    duplicate_id = pair.right_id if survivor_id == pair.left_id else pair.left_id
    return merge_customers(
        session,
        survivor_id=survivor_id,
        duplicate_id=duplicate_id,
        fields=fields,
        actor=actor,
        pair_id=pair_id,
    )


def mark_distinct(session: Session, *, pair_id: int, actor: Actor) -> DuplicatePair:
    """A person says the two records are different customers: never suggested again."""
    with write_transaction(session):
        pair = session.get(DuplicatePair, pair_id)
        if pair is None:
            raise NotFound("duplicate pair not found", pair_id=pair_id)
        if pair.status != PairStatus.pending.value:
            raise Conflict("pair_decided", field="pair_id")
        _decide(session, pair_id, PairStatus.distinct, actor)
        record(
            session,
            actor=actor,
            action="dedupe.distinct",
            target_type="duplicate_pair",
            target_id=pair_id,
            after={"left_id": pair.left_id, "right_id": pair.right_id},
        )
        session.refresh(pair)
    return pair


@dataclass
class UndoResult:
    """What an undo restored, and the survivor's columns it left because edited since."""

    merge: CustomerMerge
    kept_columns: list[str] = field(default_factory=list)


def undo_merge(session: Session, *, merge_id: int, actor: Actor) -> UndoResult:
    """Put both records back as they were before the merge; the pair is marked distinct."""
    with write_transaction(session):
        merge = session.get(CustomerMerge, merge_id)
        if merge is None:
            raise NotFound("merge not found", merge_id=merge_id)
        if merge.undone_at is not None:
            raise Conflict("merge_undone", field="merge_id")
        # The survivor merged into a third record since: its rows have moved on, so that
        # later merge is undone first (each undo then finds its rows where it left them).
        survivor_status = session.scalar(
            select(Customer.status).where(Customer.id == merge.survivor_id)
        )
        if survivor_status == CustomerStatus.merged.value:
            raise Conflict("merge_chained", field="merge_id")
        kept = merging.unmerge_rows(
            session,
            merge.survivor_id,
            merge.merged_id,
            merge.fields,
            merge.moved,
            merge.merged_status,
        )
        for name, (_move, restore) in _MOVERS.items():
            restore(session, list(merge.moved.get(name, [])), merge.survivor_id, merge.merged_id)
        merge.undone_at = clock.now()
        merge.undone_by = actor.id
        if merge.pair_id is not None:
            _decide(session, merge.pair_id, PairStatus.distinct, actor)
        restored = {
            column.removesuffix("_enc"): merging.masked(
                column.removesuffix("_enc"),
                values[0],
                session=session,
                customer_id=merge.survivor_id,
            )
            for column, values in merge.fields.items()
            if column not in kept and not column.endswith("_bidx")
        }
        record(
            session,
            actor=actor,
            action="customer.merge_undone",
            target_type="customer",
            target_id=merge.survivor_id,
            after={**restored, "merged_id": merge.merged_id, "merge_id": merge.id, "kept": kept},
        )
        record(
            session,
            actor=actor,
            action="customer.unmerged",
            target_type="customer",
            target_id=merge.merged_id,
            before={"status": CustomerStatus.merged.value},
            after={"status": merge.merged_status, "merge_id": merge.id},
        )
    session.expire_all()
    return UndoResult(merge, kept)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class PairRow:
    """A queued pair as the list shows it."""

    id: int
    left_id: int
    left_name: str
    right_id: int
    right_name: str
    probability: float
    rule: str
    agreed: tuple[str, ...]
    status: str


def _pair_rows(session: Session, *where: Any, limit: int = 1, offset: int = 0) -> list[PairRow]:
    """Pairs with both customers' names, most probable first (one statement)."""
    left = select(Customer.name).where(Customer.id == DuplicatePair.left_id).scalar_subquery()
    right = select(Customer.name).where(Customer.id == DuplicatePair.right_id).scalar_subquery()
    rows = session.execute(
        select(DuplicatePair, left, right)
        .where(*where)
        .order_by(DuplicatePair.probability.desc(), DuplicatePair.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        PairRow(
            p.id,
            p.left_id,
            ln or "",
            p.right_id,
            rn or "",
            p.probability,
            p.rule,
            tuple(a for a in p.agreed.split(",") if a),
            p.status,
        )
        for p, ln, rn in rows
    ]


def list_pairs(
    session: Session, *, status: PairStatus = PairStatus.pending, limit: int = 50, offset: int = 0
) -> tuple[list[PairRow], int]:
    """Pairs in one status, most probable first, and how many there are."""
    in_status = DuplicatePair.status == status.value
    total = session.scalar(select(func.count()).select_from(DuplicatePair).where(in_status))
    return _pair_rows(session, in_status, limit=limit, offset=offset), int(total or 0)


def get_pair(session: Session, pair_id: int) -> PairRow:
    """One pair as the queue shows it, or NotFound."""
    found = _pair_rows(session, DuplicatePair.id == pair_id)
    if not found:
        raise NotFound("duplicate pair not found", pair_id=pair_id)
    return found[0]


def pair_detail(
    session: Session, *, pair_id: int, viewer: User
) -> tuple[PairRow, CustomerRead, CustomerRead]:
    """A pair with both records in full (identifiers masked as the viewer sees them)."""
    pair = get_pair(session, pair_id)
    return (
        pair,
        read_customer(session, customer_id=pair.left_id, viewer=viewer),
        read_customer(session, customer_id=pair.right_id, viewer=viewer),
    )


def likely_duplicates_of(
    session: Session, customer_in: CustomerCreate, *, limit: int = 5
) -> list[Candidate]:
    """Existing customers a validated new record probably duplicates (nothing is saved)."""
    address = None
    if customer_in.addresses:
        parts = address_values(0, customer_in.addresses[0])
        address = (parts["province"], parts["city"], parts["district"], parts["detail"])
    return likely_duplicates(
        session,
        name=customer_in.name,
        kind=customer_in.kind.value,
        phones=customer_in.phones or [],
        email=customer_in.email,
        id_number=customer_in.id_number,
        credit_code=customer_in.credit_code,
        birthday=customer_in.birthday.isoformat() if customer_in.birthday else None,
        address=address,
        limit=limit,
    )


def merges_of(session: Session, customer_id: int) -> list[CustomerMerge]:
    """Merges this customer took part in (as survivor or as the merged record), newest first."""
    return list(
        session.scalars(
            select(CustomerMerge)
            .where(
                or_(
                    CustomerMerge.survivor_id == customer_id,
                    CustomerMerge.merged_id == customer_id,
                )
            )
            .order_by(CustomerMerge.id.desc())
        )
    )


def survivors_of(session: Session, ids: list[int]) -> dict[int, int]:
    """For each merged customer among ``ids``, the record it lives on in now (chains
    followed: A merged into B, then B into C, gives A -> C). Others are left out."""
    edges: dict[int, int] = {}
    queried: set[int] = set()
    frontier = sorted(set(ids))
    while frontier:
        queried.update(frontier)
        for part in _chunks(frontier):
            for merged, survivor in session.execute(
                select(CustomerMerge.merged_id, CustomerMerge.survivor_id).where(
                    CustomerMerge.merged_id.in_(part), CustomerMerge.undone_at.is_(None)
                )
            ):
                edges[merged] = survivor
        frontier = sorted(set(edges.values()) - queried)
    out: dict[int, int] = {}
    for origin in set(ids) & edges.keys():
        target = edges[origin]
        while target in edges:  # a merged record is never a survivor again: no cycles
            target = edges[target]
        out[origin] = target
    return out


def get_merge(session: Session, merge_id: int) -> CustomerMerge:
    """One merge, or NotFound."""
    merge = session.get(CustomerMerge, merge_id)
    if merge is None:
        raise NotFound("merge not found", merge_id=merge_id)
    return merge


def pending_count(session: Session) -> int:
    """Pairs waiting for review (the quality report shows it)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(DuplicatePair)
            .where(DuplicatePair.status == PairStatus.pending.value)
        )
        or 0
    )


def recent_runs(session: Session, limit: int = 10) -> list[DedupeRun]:
    """The latest scoring runs."""
    return list(session.scalars(select(DedupeRun).order_by(DedupeRun.id.desc()).limit(limit)))
