"""Locks that keep a long job to one process at a time per database, across processes and
machines, held over many transactions (the transaction-scoped ``serialize_writers`` does
not fit a job that commits as it goes).

On PostgreSQL: a session advisory lock on a connection of its own (workers on any machine;
the server releases it when a killed process's connection drops). On SQLite, whose
processes share one machine: an exclusive ``flock`` on a lock file (the kernel releases it
when a process dies).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


@contextmanager
def job_lock(engine: Engine, *, key: int, lock_file: Path | None, wait: bool) -> Iterator[bool]:
    """Hold the job lock ``key`` (PostgreSQL) or ``lock_file`` (SQLite) while the block runs.

    ``wait``: block until the lock is free (yields True); otherwise yield False at once when
    another process holds it. ``lock_file`` None (an in-memory SQLite database: a single
    process) needs no lock and yields True.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                got = True
            else:
                got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            # The lock belongs to the connection, not to this transaction.
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    if lock_file is None:
        yield True
        return
    with lock_file.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
