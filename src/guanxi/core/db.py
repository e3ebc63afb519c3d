"""Database engine, declarative base and the one way services open a write transaction."""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Dialect,
    Engine,
    Integer,
    MetaData,
    Result,
    Select,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Guanxi table; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, sqlite_mmap_bytes: int = 1 << 30, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGINs.

    ``sqlite_mmap_bytes``: how much of the file SQLite reads through memory mapping. The
    server's reads gain from it; batch commands (imports over millions of rows) pass 0,
    because mapped pages count as the process's memory and grow with the file.
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine, sqlite_mmap_bytes)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _tune_sqlite(engine: Engine, mmap_bytes: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to issue
        # (SQLAlchemy's documented recipe); writes then start with BEGIN IMMEDIATE and never
        # fail half-way on a lock upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: every request opens a transaction, and the statement
        # machinery of ``exec_driver_sql`` (events, cursor wrapping) cost more than SQLite's
        # BEGIN itself. An error still surfaces as the driver's sqlite3 exception.
        conn.connection.driver_connection.execute(f"BEGIN {mode}")


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE / DELETE / INSERT touched (``Session.execute`` is typed as a plain
    ``Result``; DML returns a ``CursorResult``)."""
    return cast(CursorResult[Any], result).rowcount


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, typed as a Table (for Core insert / update statements)."""
    return cast(Table, model.__table__)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


class ReadConnections:
    """Sessions for the reads that run on the event loop (SQLite), kept open between
    requests with their connections.

    A session that checks a connection out of the pool, begins, rolls back and checks it in
    again costs about 100 µs, more than the reads of a short JSON route; a closed session
    is reusable (SQLAlchemy documents it), and one kept on its own open connection costs
    about a third of that. Each session, and so its connection, belongs to one request from
    :meth:`open` to :meth:`release` (concurrent requests never share one). At most ``keep``
    idle ones are held back from the pool, so the pool keeps room for everything else; one
    whose connection was left inside a transaction, invalidated, or given execution options
    (a write's ``BEGIN IMMEDIATE`` sticks to the connection object) goes back to the pool
    instead of being kept.
    """

    def __init__(self, engine: Engine, *, keep: int = 4) -> None:
        self._engine = engine
        self._keep = keep
        # list.pop / list.append are atomic: safe without a lock from any thread.
        self._idle: list[Session] = []
        # The sessions this made (only those are kept; a test's own is just closed).
        self._made: weakref.WeakSet[Session] = weakref.WeakSet()

    def open(self, factory: Callable[..., Session]) -> Session:
        """A session made by ``factory`` (the app's sessionmaker) on a connection of its
        own, kept or fresh from the pool. A factory bound to anything but this engine (a
        test's outer transaction, a probe) is simply called."""
        if getattr(factory, "kw", {}).get("bind") is not self._engine:
            return factory()
        try:
            return self._idle.pop()
        except IndexError:
            session = factory(bind=self._engine.connect())
            self._made.add(session)
            return session

    def release(self, session: Session) -> None:
        """Close ``session`` (rolling back what it left open, forgetting its objects) and
        keep it with its connection, or return the connection to the pool."""
        conn = session.bind
        session.close()
        if session not in self._made or not isinstance(conn, Connection):
            return
        # Per-transaction caches live in ``info``: a kept session starts empty-handed.
        session.info.clear()
        if (
            conn.closed
            or conn.invalidated
            or conn.in_transaction()
            or conn.get_execution_options()
            or len(self._idle) >= self._keep
        ):
            conn.close()
            return
        self._idle.append(session)

    def idle(self) -> int:
        """How many sessions are kept right now."""
        return len(self._idle)

    def dispose(self) -> None:
        """Return every kept connection to the pool."""
        while self._idle:
            conn = self._idle.pop().bind
            if isinstance(conn, Connection):
                conn.close()


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """Run a service's writes as one transaction: all of it commits, or none of it.

    A read transaction left open by the caller (for example the authentication lookup) is
    ended first, so on SQLite the write transaction starts with ``BEGIN IMMEDIATE`` and on
    PostgreSQL with a fresh snapshot. Only service functions call this.
    """
    if session.in_transaction():
        session.commit()
    with session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


def align_sequences(session: Session, tables: Sequence[str] | None = None) -> None:
    """PostgreSQL: move each table's ``id`` sequence past the rows written with explicit
    ids (COPY and bulk loads of the demo do not advance it), so the next row inserted
    through a service gets a fresh id. ``tables``: every table with an integer ``id``
    primary key by default. Nothing to do on SQLite (its ids follow the maximum)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    names = tables or [
        t.name
        for t in Base.metadata.sorted_tables
        if "id" in t.c
        and t.c.id.primary_key
        and t.c.id.autoincrement in (True, "auto")
        and isinstance(t.c.id.type, Integer)
    ]
    with write_transaction(session):
        for name in names:
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                    f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {name}), 1))"
                )
            )


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` primary keys for rows about to be inserted in bulk, inside a write
    transaction.

    Lets a bulk insert run as one plain ``executemany`` (SQLite cannot return generated ids
    from one, and SQLAlchemy then inserts row by row). SQLite: the transaction holds the
    database's write lock, so the ids after the current maximum are ours. PostgreSQL: taken
    from the table's sequence.
    """
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        seq = text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "  # noqa: S608
            "FROM generate_series(1, :n)"
        )
        return [int(v) for v in session.scalars(seq, {"n": count})]
    top = session.scalar(text(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}"))  # noqa: S608
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + count))


def serialize_writers(session: Session, lock_id: int) -> None:
    """Serialise writers of a shared sequence (e.g. the audit chain) within the transaction.

    SQLite already serialises writers through BEGIN IMMEDIATE; PostgreSQL takes a
    transaction-scoped advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})


def is_unique_violation(exc: IntegrityError) -> bool:
    """Whether a database error is a unique-key clash (SQLite or PostgreSQL wording)."""
    text_ = str(exc.orig).lower()
    return "unique" in text_ or "duplicate key" in text_


_HOT_CONNECTION = "guanxi.hot_connection"


def _driver_connection(session: Session) -> tuple[Dialect, Any]:
    """The dialect and driver connection of the session's current transaction.

    ``Session.connection()`` walks the transaction's state machine on every call; a request
    running ten hot selects asks once per transaction and keeps the answer in
    ``session.info``, keyed by the (root) transaction object itself: a commit, rollback or
    close ends that transaction, so the next call asks the session again.
    """
    cached = session.info.get(_HOT_CONNECTION)
    if cached is not None:
        tx = session.get_transaction()
        if tx is not None and cached[0] is tx and tx.is_active and session.is_active:
            return cached[1], cached[2]
    conn = session.connection()
    dbapi_conn = conn.connection.dbapi_connection
    session.info[_HOT_CONNECTION] = (session.get_transaction(), conn.dialect, dbapi_conn)
    return conn.dialect, dbapi_conn


# (SQL, positional parameter order or None, bound literals, (column index, result
# processor) of the columns whose type converts what the driver returns).
_Plan = tuple[str, tuple[str, ...] | None, dict[str, Any], list[tuple[int, Callable[[Any], Any]]]]


class HotSelect:
    """A read-only Core select compiled once per dialect and run on the driver's cursor.

    For the few reads on every request's path (the 360 view, the token lookup):
    ``Connection.execute`` spends about 40 µs of Python per statement on events, parameter
    construction and result set-up, more than SQLite spends answering a primary-key
    lookup. The statement is still written with SQLAlchemy; only the execution is direct.
    Column types' result processors (e.g. :class:`~guanxi.core.types.UTCDateTime`) still
    apply, so rows read the same as through ``Connection.execute``.
    """

    # Set by the benchmark's bare twin to record what runs (core/bare.py); None otherwise.
    trace: Callable[[str, Any], None] | None = None

    def __init__(self, stmt: Select[*tuple[Any, ...]]) -> None:
        self.stmt = stmt
        # Unlabelled expressions (count(), coalesce()) get positional names; rename=True.
        keys = [c.key or f"_{i}" for i, c in enumerate(stmt.selected_columns)]
        self.Row: Any = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            if compiled.post_compile_params:
                # IN (...) lists are rendered per call; that is Connection.execute's job.
                raise ValueError("HotSelect takes no expanding (IN list) parameters")
            order = tuple(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
            processors = [
                c.type.dialect_impl(dialect).result_processor(dialect, None)
                for c in self.stmt.selected_columns
            ]
            # Only the converting columns are visited per row (a wide row has a few).
            converters: list[tuple[int, Callable[[Any], Any]]] = [
                (i, p) for i, p in enumerate(processors) if p is not None
            ]
            # Literal values inside the statement (coalesce(sum(x), 0)) travel as parameters.
            defaults = {
                name: bind.effective_value
                for bind, name in compiled.bind_names.items()
                if not bind.required
            }
            plan = (compiled.string, order, defaults, converters)
            self._plans[dialect.name] = plan
        return plan

    def all(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples with the select's column keys."""
        dialect, dbapi_conn = _driver_connection(session)
        sql, order, defaults, converters = self._plan(dialect)
        merged = {**defaults, **params}
        bound: Any = tuple(merged[name] for name in order) if order is not None else merged
        if HotSelect.trace is not None:
            HotSelect.trace(sql, bound)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(sql, bound)
            raw = cursor.fetchall()
        finally:
            cursor.close()
        make = self.Row._make
        if not converters:
            return [make(r) for r in raw]
        rows = []
        for r in raw:
            values = list(r)
            for i, convert in converters:
                values[i] = convert(values[i])
            rows.append(make(values))
        return rows

    def first(self, session: Session, params: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        rows = self.all(session, params)
        return rows[0] if rows else None
