"""Database engine, declarative base and the one way services open a write transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text
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


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGINs."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
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
        cur.execute("PRAGMA mmap_size=1073741824")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


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
