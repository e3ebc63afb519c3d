"""Online rotation of the field-encryption key (``guanxi keys rotate``) and the per-key
census of stored values (``guanxi keys status``).

The operator adds a new key to ``GUANXI_FIELD_KEYS``, makes it ``GUANXI_ACTIVE_FIELD_KEY``
and restarts the app servers one by one (new writes then use it); rotation re-encrypts
every value still under another key. It runs beside the live application: each batch is
read in one short transaction and written in another, and every write is a
compare-and-set (``… WHERE id = :id AND col = :old``), so a value the application changed
in between is left as the application wrote it, never overwritten with the older
plaintext. Nothing is remembered between runs: a run selects the values whose key-id
prefix is not the active one, walking each table by primary key, so a stopped run is
resumed by running it again and a finished one finds nothing to do.

The encrypted columns are found in the metadata (every column named ``*_enc``); their
associated data (the field name bound into each ciphertext, see :mod:`guanxi.security.crypto`)
is the column name without ``_enc`` unless :data:`FIELD_OF` says otherwise. JSON columns that
carry encrypted values (the merge undo record) are listed in :data:`JSON_COLUMNS`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, Table, bindparam, cast, func, select, update
from sqlalchemy import Text as SqlText
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core.db import Base, make_sessionmaker, write_transaction
from guanxi.security.crypto import FieldCipher, cipher

# The field name bound into the ciphertext where it is not the column's name minus
# ``_enc`` (the writers name the field, not the column: a receiver's phone is a "phone").
FIELD_OF: dict[str, str] = {
    "shipment.receiver_phone_enc": "phone",
    "ticket.contact_email_enc": "email",
    "opportunity.contact_name_enc": "lead_name",
    "opportunity.contact_company_enc": "lead_company",
    "opportunity.contact_phone_enc": "lead_phone",
    "opportunity.contact_email_enc": "lead_email",
    "outbox_message.to_enc": "outbox_to",
    "webhook_endpoint.secret_enc": "webhook_secret",
}

# Encrypted columns not named ``*_enc`` (table.column -> field), taken when the table has
# them: the second factor's secret is sealed with the same cipher (security/totp.py).
OTHER_COLUMNS: dict[str, str] = {"app_user.totp_secret": "app_user.totp_secret"}

# JSON columns holding ``{"<field>_enc": [before, after], ...}`` among other keys: the
# merge record keeps the survivor's and the duplicate's sealed values to undo a merge.
JSON_COLUMNS: tuple[tuple[str, str], ...] = (("customer_merge", "fields"),)

DEFAULT_BATCH = 2000
# PostgreSQL reads this many batches' worth of rows at a time — more rows than a page of
# the widest table holds — and writes them spread over their pages (spread_over_pages).
PAGE_WINDOW = 32
# Rows that lost compare-and-sets to concurrent writers are checked again (a server
# still on the old key may have written them), a bounded number of times.
MAX_PASSES = 5


class RotationError(Exception):
    """A stored value cannot be decrypted with the configured keys (unknown key id or a
    value that is not what its column should hold): rotation stops before writing it."""


@dataclass(frozen=True)
class EncryptedColumn:
    """A text column of ``<key id>$<b64>`` values and the field name bound into them."""

    table: str
    column: str
    field: str

    @property
    def name(self) -> str:
        """``table.column``, as reports and ``--column`` name it."""
        return f"{self.table}.{self.column}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Every ``*_enc`` column of the loaded models (and those of :data:`OTHER_COLUMNS`
    present), in table order."""
    found = []
    for table in Base.metadata.sorted_tables:
        for col in table.c:
            name = f"{table.name}.{col.name}"
            if col.name.endswith("_enc"):
                found.append(
                    EncryptedColumn(table.name, col.name, FIELD_OF.get(name, col.name[:-4]))
                )
            elif name in OTHER_COLUMNS:
                found.append(EncryptedColumn(table.name, col.name, OTHER_COLUMNS[name]))
    return found


def active_key_id(c: FieldCipher) -> str:
    """The id of the key ``c`` encrypts with (read off a fresh ciphertext: the cipher keeps
    it private, and this is what every writer will stamp on new values)."""
    return c.key_id_of(c.encrypt("keys", ""))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _key_id_expr(session: Session, col: Any) -> Any:
    """SQL for the key id of a stored value (the text before ``$``)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(col, "$", 1)
    return func.substr(col, 1, func.instr(col, "$") - 1)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class ColumnStatus:
    """How many stored values of one column use each key id."""

    column: str
    counts: dict[str, int]


def key_status(session: Session) -> list[ColumnStatus]:
    """Per encrypted column (and JSON column with encrypted values), the number of stored
    values under each key id; a full read of those columns (run it when it is quiet)."""
    out = []
    for enc in encrypted_columns():
        col = _table(enc.table).c[enc.column]
        kid = _key_id_expr(session, col)
        rows = session.execute(
            select(kid, func.count()).where(col.is_not(None)).group_by(kid).order_by(kid)
        ).all()
        out.append(ColumnStatus(enc.name, {str(k): int(n) for k, n in rows}))
    for table_name, column in JSON_COLUMNS:
        counts: Counter[str] = Counter()
        for _id, value in _json_rows(session, table_name, column, after=0, limit=None):
            for stored, _field in _sealed_values(value):
                counts[stored.partition("$")[0]] += 1
        out.append(ColumnStatus(f"{table_name}.{column}", dict(sorted(counts.items()))))
    session.rollback()
    return out


def retired_values(statuses: Sequence[ColumnStatus], active: str) -> int:
    """How many values in ``statuses`` are under a key other than ``active``."""
    return sum(n for s in statuses for kid, n in s.counts.items() if kid != active)


# --------------------------------------------------------------------------- rotation


@dataclass
class RotationResult:
    """What one run did: values re-encrypted per column, compare-and-sets lost to a
    concurrent write (that row keeps the application's newer value), time taken."""

    active: str
    rotated: dict[str, int] = field(default_factory=dict)
    concurrent: int = 0
    batches: int = 0
    seconds: float = 0.0
    # Time spent per column (benchmarks; not part of the audit entry).
    column_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Values re-encrypted in all columns."""
        return sum(self.rotated.values())

    def figures(self) -> dict[str, Any]:
        """The run as JSON-able figures (the audit entry and the CLI's report)."""
        return {
            "active_key": self.active,
            "rotated": self.total,
            "columns": {k: v for k, v in self.rotated.items() if v},
            "concurrent_writes": self.concurrent,
            "batches": self.batches,
            "seconds": round(self.seconds, 1),
        }


Progress = Callable[[int, int], None]


def pending(session: Session, *, active: str, columns: Sequence[str] | None = None) -> int:
    """How many values of the encrypted columns are not under ``active`` (for a progress
    bar; JSON columns are not counted, they are few)."""
    prefix = f"{active}$"
    total = 0
    for enc in _selected(columns):
        col = _table(enc.table).c[enc.column]
        total += int(
            session.scalar(
                select(func.count()).where(
                    col.is_not(None), func.substr(col, 1, len(prefix)) != prefix
                )
            )
            or 0
        )
    session.rollback()
    return total


def _selected(columns: Sequence[str] | None) -> list[EncryptedColumn]:
    every = encrypted_columns()
    if columns is None:
        return every
    unknown = set(columns) - {e.name for e in every} - {f"{t}.{c}" for t, c in JSON_COLUMNS}
    if unknown:
        raise ValueError(f"not an encrypted column: {', '.join(sorted(unknown))}")
    return [e for e in every if e.name in columns]


def select_batch(
    session: Session,
    enc: EncryptedColumn,
    *,
    active: str,
    after: int,
    limit: int,
    until: int | None = None,
) -> list[tuple[int, str]]:
    """The next ``limit`` (id, stored value) of ``enc`` after id ``after`` (up to and
    including ``until``, if given) whose key is not ``active``: a walk of the primary key,
    so each run reads every row once."""
    rows = _select_after(session, enc, active, after, limit, until, "")
    return [(int(i), str(v)) for i, v in rows]


def select_page_window(
    session: Session,
    enc: EncryptedColumn,
    *,
    active: str,
    after: int,
    limit: int,
    until: int | None = None,
) -> list[tuple[int, int, str]]:
    """As :func:`select_batch`, with the number of the table page each row lies on
    (PostgreSQL's ``ctid``), as (id, page, stored value)."""
    rows = _select_after(
        session, enc, active, after, limit, until, "(ctid::text::point)[0]::bigint, "
    )
    return [(int(i), int(page), str(v)) for i, page, v in rows]


def _select_after(
    session: Session,
    enc: EncryptedColumn,
    active: str,
    after: int,
    limit: int,
    until: int | None,
    extra: str,
) -> Sequence[Any]:
    prefix = f"{active}$"
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    tbl, col = f'"{enc.table}"', f'"{enc.column}"'
    upper, params = "", (after, prefix)  # type: tuple[str, tuple[Any, ...]]
    if until is not None:
        upper, params = f"AND id <= {mark} ", (after, prefix, until)
    # Straight to the driver (a third of a batch's time went to building result rows);
    # names and ``extra`` come from the code, not from input.
    rows = conn.exec_driver_sql(
        f"SELECT id, {extra}{col} FROM {tbl} WHERE id > {mark} AND {col} IS NOT NULL "  # noqa: S608
        f"AND substr({col}, 1, {len(prefix)}) <> {mark} {upper}ORDER BY id LIMIT {int(limit)}",
        params,
    ).fetchall()
    # End the read transaction: the writes come in their own, short, one.
    session.rollback()
    return rows


def spread_over_pages(
    rows: Sequence[tuple[int, int, str]], batch: int
) -> list[list[tuple[int, str]]]:
    """Cut a window of (id, page, value) rows into transactions of at most ``batch`` rows
    that each take as few rows of one page as the window allows: the first row of every
    page, then the second of every page, and so on (small ranks merged, a rank larger than
    ``batch`` cut in equal parts). Every row comes out exactly once.

    Why: an UPDATE that finds room on its row's page is a HOT update — no new entry in any
    of the table's indexes, which is most of its cost. A full page has no room, but once
    the transaction that replaced one of its rows has committed, PostgreSQL reclaims that
    old version on the next visit, and the next row of the page fits. Measured on 1,000,000
    customers' shipments: 83 % HOT updates and 1.9x the values per second of id order."""
    ranks: list[list[tuple[int, str]]] = []
    seen: dict[int, int] = {}
    for row_id, page, value in rows:
        rank = seen.get(page, 0)
        seen[page] = rank + 1
        if rank == len(ranks):
            ranks.append([])
        ranks[rank].append((row_id, value))
    out: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for rank_rows in ranks:
        if current and len(current) + len(rank_rows) > batch:
            out.append(current)
            current = []
        if len(rank_rows) > batch:
            pieces = -(-len(rank_rows) // batch)
            size = -(-len(rank_rows) // pieces)
            out.extend(rank_rows[i : i + size] for i in range(0, len(rank_rows), size))
        else:
            current.extend(rank_rows)
    if current:
        out.append(current)
    return out


def _reencrypt(c: FieldCipher, fieldname: str, where: str, row_id: int, stored: str) -> str:
    try:
        return c.encrypt(fieldname, c.decrypt(fieldname, stored))
    except (InvalidTag, KeyError, ValueError) as exc:
        kid = stored.partition("$")[0]
        raise RotationError(
            f"{where} id {row_id}: the stored value does not decrypt with key {kid!r}"
            f" (field {fieldname!r}); is that key still configured?"
        ) from exc


def apply_batch(
    session: Session, enc: EncryptedColumn, rows: Sequence[tuple[int, str]], c: FieldCipher
) -> tuple[int, int]:
    """Re-encrypt ``rows`` of ``enc`` with the active key in one transaction, each row
    only if it still holds the value read (compare-and-set). Returns (written, lost to a
    concurrent write)."""
    if not rows:
        return 0, 0
    fresh = [(i, old, _reencrypt(c, enc.field, enc.name, i, old)) for i, old in rows]
    tbl, col = f'"{enc.table}"', f'"{enc.column}"'
    with write_transaction(session):
        conn = session.connection()
        # One statement per batch, its row count exact (unlike an executemany's), straight
        # to the driver (SQLAlchemy would build a cache key over thousands of parameters).
        # Table and column names come from the metadata, not from input.
        if conn.dialect.name == "postgresql":
            # Three array parameters: a VALUES list of thousands of parameters costs
            # PostgreSQL ten times more to parse and plan.
            sql = (
                f"UPDATE {tbl} SET {col} = v.new "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, old, new) "
                f"WHERE {tbl}.id = v.id AND {tbl}.{col} = v.old"
            )
            params: tuple[Any, ...] = tuple(list(x) for x in zip(*fresh, strict=True))
        else:
            # SQLite 3.33+: UPDATE … FROM a VALUES list (columns column1, column2, …).
            values = ", ".join(["(?, ?, ?)"] * len(fresh))
            sql = (
                f"UPDATE {tbl} SET {col} = v.column3 FROM (VALUES {values}) AS v "  # noqa: S608
                f"WHERE {tbl}.id = v.column1 AND {tbl}.{col} = v.column2"
            )
            params = tuple(x for row in fresh for x in row)
        written = conn.exec_driver_sql(sql, params).rowcount
    return int(written), len(fresh) - int(written)


@dataclass(frozen=True)
class _Stripe:
    """A contiguous id range ``(after, until]`` of one column: the unit a worker takes."""

    enc: EncryptedColumn
    after: int
    until: int | None


def _stripes(session: Session, enc: EncryptedColumn, workers: int, batch: int) -> list[_Stripe]:
    """``enc``'s id range cut into ``workers`` contiguous stripes of equal width (one
    stripe, open-ended, for a single worker or a table of fewer ids than a batch each)."""
    if workers <= 1:
        return [_Stripe(enc, 0, None)]
    table = _table(enc.table)
    low, high = session.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    session.rollback()
    if low is None or high - low < workers * batch:
        return [_Stripe(enc, 0, None)]
    width = (high - low + workers) // workers
    bounds = [low - 1 + k * width for k in range(workers)] + [high]
    # The last stripe stays open-ended: rows inserted meanwhile are old-key free anyway
    # (new writes use the active key), but a row written by a server not yet restarted
    # past today's maximum id is still found.
    return [
        _Stripe(enc, bounds[k], None if k == workers - 1 else bounds[k + 1]) for k in range(workers)
    ]


def _rotate_stripe(
    session: Session,
    stripe: _Stripe,
    c: FieldCipher,
    active: str,
    batch: int,
    result: RotationResult,
    tick: Callable[[int], None],
    lock: threading.Lock,
) -> None:
    enc = stripe.enc
    suspects: list[int] = []

    def apply(rows: list[tuple[int, str]]) -> None:
        written, missed = apply_batch(session, enc, rows, c)
        with lock:
            result.rotated[enc.name] = result.rotated.get(enc.name, 0) + written
            result.batches += 1
            result.concurrent += missed
        if missed:
            # Which rows lost is not reported; the batch's rows are checked again below.
            suspects.extend(i for i, _old in rows)

    after = stripe.after
    if session.get_bind().dialect.name == "postgresql":
        # A window of many pages, written a rank of rows per page at a time (HOT updates).
        while window := select_page_window(
            session, enc, active=active, after=after, limit=batch * PAGE_WINDOW, until=stripe.until
        ):
            for rows in spread_over_pages(window, batch):
                apply(rows)
                tick(len(rows))
            after = window[-1][0]
    else:
        while rows := select_batch(
            session, enc, active=active, after=after, limit=batch, until=stripe.until
        ):
            apply(rows)
            after = rows[-1][0]
            tick(len(rows))
    # A row changed between read and write holds what the application wrote: under the
    # active key normally, under the old one if a server not yet restarted wrote it. Those
    # rows are looked at again (a few times, as long as writers keep racing).
    for _pass in range(MAX_PASSES):
        if not suspects:
            return
        ids, suspects = suspects, []
        for start in range(0, len(ids), 500):
            if rows := select_ids(session, enc, active=active, ids=ids[start : start + 500]):
                apply(rows)


def select_ids(
    session: Session, enc: EncryptedColumn, *, active: str, ids: Sequence[int]
) -> list[tuple[int, str]]:
    """(id, stored value) of the rows ``ids`` of ``enc`` whose key is not ``active``."""
    table = _table(enc.table)
    col = table.c[enc.column]
    prefix = f"{active}$"
    rows = session.execute(
        select(table.c.id, col)
        .where(table.c.id.in_(ids), col.is_not(None), func.substr(col, 1, len(prefix)) != prefix)
        .order_by(table.c.id)
    ).all()
    session.rollback()
    return [(int(i), str(v)) for i, v in rows]


def _sealed_values(value: Any) -> Iterator[tuple[str, str]]:
    """(stored, field) of every encrypted value in a merge record's ``fields``."""
    if not isinstance(value, dict):
        return
    for key, pair in value.items():
        if key.endswith("_enc") and isinstance(pair, list):
            for stored in pair:
                if isinstance(stored, str) and "$" in stored:
                    yield stored, key[:-4]


def _json_rows(
    session: Session, table_name: str, column: str, *, after: int, limit: int | None
) -> list[tuple[int, Any]]:
    table = _table(table_name)
    stmt = select(table.c.id, table.c[column]).where(table.c.id > after).order_by(table.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(int(i), v) for i, v in session.execute(stmt).all()]


def _rotate_json(
    session: Session,
    table_name: str,
    column: str,
    c: FieldCipher,
    active: str,
    batch: int,
    result: RotationResult,
) -> None:
    """Re-encrypt the sealed values inside a JSON column, row by row with the JSON's text
    as the compare-and-set (these records are written once and rarely)."""
    name = f"{table_name}.{column}"
    table = _table(table_name)
    col = table.c[column]
    as_text = cast(col, SqlText)
    after = 0
    while True:
        rows = session.execute(
            select(table.c.id, as_text).where(table.c.id > after).order_by(table.c.id).limit(batch)
        ).all()
        session.rollback()
        if not rows:
            return
        after = int(rows[-1][0])
        changes = []
        for row_id, raw in rows:
            value = json.loads(raw) if raw else None
            stale = [s for s, _f in _sealed_values(value) if not s.startswith(f"{active}$")]
            if not stale:
                continue
            assert isinstance(value, dict)  # noqa: S101 - _sealed_values yielded from it
            new = {
                k: (
                    [
                        _reencrypt(c, k[:-4], name, row_id, s)
                        if isinstance(s, str) and "$" in s and not s.startswith(f"{active}$")
                        else s
                        for s in v
                    ]
                    if k.endswith("_enc") and isinstance(v, list)
                    else v
                )
                for k, v in value.items()
            }
            changes.append((int(row_id), raw, new))
        if not changes:
            continue
        stmt = (
            update(table)
            .where(table.c.id == bindparam("rid"), as_text == bindparam("old"))
            .values({column: bindparam("new", type_=col.type)})
        )
        written = 0
        with write_transaction(session):
            for row_id, raw, new in changes:
                written += session.execute(stmt, {"rid": row_id, "old": raw, "new": new}).rowcount  # type: ignore[attr-defined]
        result.rotated[name] = result.rotated.get(name, 0) + written
        result.concurrent += len(changes) - written
        result.batches += 1


def _rotate_parallel(
    session: Session,
    selected: Sequence[EncryptedColumn],
    c: FieldCipher,
    active: str,
    batch: int,
    result: RotationResult,
    tick: Callable[[int], None],
    lock: threading.Lock,
    workers: int,
) -> None:
    """Rotate the stripes of every column on ``workers`` threads; a column's seconds are
    from its first stripe's start to its last stripe's end. The first error (a value that
    does not decrypt) stops the others before their next batch and is raised."""
    stripes = [s for enc in selected for s in _stripes(session, enc, workers, batch)]
    bind = session.get_bind()
    # Each worker its own connection from the pool (a Connection is not shared by threads).
    factory = make_sessionmaker(bind if isinstance(bind, Engine) else bind.engine)
    spans: dict[str, list[float]] = {}
    failed = threading.Event()

    def run(stripe: _Stripe) -> None:
        if failed.is_set():
            return
        begun = time.perf_counter()
        try:
            with factory() as own:
                _rotate_stripe(own, stripe, c, active, batch, result, tick, lock)
        except BaseException:
            failed.set()
            raise
        with lock:
            span = spans.setdefault(stripe.enc.name, [begun, begun])
            span[0], span[1] = min(span[0], begun), max(span[1], time.perf_counter())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rotate") as pool:
        futures = [pool.submit(run, stripe) for stripe in stripes]
        for future in futures:
            future.result()
    for name, (begun, ended) in spans.items():
        result.column_seconds[name] = ended - begun


def rotate(
    session: Session,
    *,
    actor: Actor,
    field_cipher: FieldCipher | None = None,
    batch: int = DEFAULT_BATCH,
    columns: Sequence[str] | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> RotationResult:
    """Re-encrypt every stored value not under the active key with the active key, in
    batches of short transactions, while the application runs; audited as one entry.

    ``columns`` limits the run to some ``table.column`` names (default: all).
    ``workers`` > 1 cuts each column's id range into that many stripes rotated at once
    by as many threads, each with its own connection (PostgreSQL spends most of a batch
    updating the table's indexes in its own process, so a second worker uses the second
    core; on SQLite writers take turns and it gains little).
    ``progress(done, total)`` is called after each batch. Raises :class:`RotationError`
    (nothing of the failing batch written) when a value does not decrypt.
    """
    c = field_cipher or cipher()
    active = active_key_id(c)
    selected = _selected(columns)
    started = time.perf_counter()
    result = RotationResult(active=active)
    total = pending(session, active=active, columns=[e.name for e in selected])
    done = 0

    lock = threading.Lock()

    def tick(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if progress is not None:
                progress(min(done, total), total)

    if workers <= 1:
        for enc in selected:
            column_started = time.perf_counter()
            _rotate_stripe(session, _Stripe(enc, 0, None), c, active, batch, result, tick, lock)
            result.column_seconds[enc.name] = time.perf_counter() - column_started
    else:
        _rotate_parallel(session, selected, c, active, batch, result, tick, lock, workers)
    for table_name, column in JSON_COLUMNS:
        if columns is None or f"{table_name}.{column}" in columns:
            _rotate_json(session, table_name, column, c, active, batch, result)
    result.seconds = time.perf_counter() - started
    with write_transaction(session):
        record(
            session,
            actor=actor,
            action="keys.rotated",
            target_type="field_key",
            target_id=active,
            after=result.figures(),
        )
    return result
