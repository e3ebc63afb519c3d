"""One de-duplication run at a time per database, across processes and machines.

Two runs at once would score the same newcomers and race to insert the same pairs and to
merge the same records. A run holds a lock from its first read to its last merge, taken as
the other long periodic jobs take theirs (``backup.jobs``): on PostgreSQL a session
advisory lock on a connection of its own (workers on any machine; released by the server
when a killed process's connection drops); on SQLite, whose processes share one machine, a
lock on a file beside the database file (released by the kernel when a process dies).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

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
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK})
                got = True
            else:
                got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK}))
            # The lock belongs to the connection, not to this transaction.
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
                    conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield True
        return
    with Path(f"{database}.dedupe-lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
