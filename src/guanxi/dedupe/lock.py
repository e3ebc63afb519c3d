"""One de-duplication run at a time per database, across processes and machines.

Two runs at once would score the same newcomers and race to insert the same pairs and to
merge the same records. A run holds a lock from its first read to its last merge, taken as
the other long periodic jobs take theirs (:func:`guanxi.core.locks.job_lock`): on
PostgreSQL a session advisory lock on a connection of its own, on SQLite a lock on a file
beside the database file; both are released when a killed process dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from guanxi.core.locks import job_lock

_LOCK = 0x6775_6464  # "gudd": the advisory lock id of de-duplication runs


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


@contextmanager
def exclusive(session: Session, *, wait: bool) -> Iterator[bool]:
    """Hold the de-duplication lock of ``session``'s database while the block runs.

    ``wait``: block until the lock is free (always yields True); otherwise yield False at
    once when another run holds it. An in-memory SQLite database has a single process and
    needs none.
    """
    engine = _engine_of(session)
    database = engine.url.database
    single = not database or database == ":memory:" or database.startswith("file:")
    lock_file = None if single else Path(f"{database}.dedupe-lock")
    with job_lock(engine, key=_LOCK, lock_file=lock_file, wait=wait) as got:
        yield got
