"""Readiness checks: the database answers, its schema is at the packaged migrations' head,
and the data directory can be written.

Liveness (``/healthz``) checks nothing here: a process that answers is alive, and a
database outage must not make the orchestrator restart every app server at once.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from guanxi.core.migrate import alembic_config


@dataclass
class Readiness:
    """The outcome of each check (``ok`` or what is wrong); ready when all are ``ok``."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(outcome == "ok" for outcome in self.checks.values())


def database_ok(session: Session) -> bool:
    """Run ``SELECT 1``; True when the database answered."""
    return session.execute(text("SELECT 1")).scalar() == 1


@cache
def migration_heads() -> frozenset[str]:
    """The head revisions of the packaged migrations (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def schema_heads(session: Session) -> frozenset[str]:
    """The revisions the database's schema is at (empty before the first migration)."""
    return frozenset(MigrationContext.configure(session.connection()).get_current_heads())


def data_dir_writable(data_dir: Path) -> bool:
    """True when a file can be created (and removed) in ``data_dir``."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".ready-", dir=data_dir)
        os.close(fd)
        os.unlink(name)
    except OSError:
        return False
    return True


def readiness(session: Session, data_dir: Path) -> Readiness:
    """Every readiness check; a failing one names what is wrong, never raises."""
    result = Readiness()
    try:
        result.checks["database"] = "ok" if database_ok(session) else "no answer"
        heads = schema_heads(session)
        if heads == migration_heads():
            result.checks["migrations"] = "ok"
        else:
            result.checks["migrations"] = "not at head (run guanxi db upgrade)"
    except SQLAlchemyError as exc:
        # The type only: a driver's message may name the host and user.
        result.checks["database"] = f"unavailable ({type(exc).__name__})"
        result.checks["migrations"] = "unknown"
    result.checks["data_dir"] = "ok" if data_dir_writable(data_dir) else "not writable"
    return result
