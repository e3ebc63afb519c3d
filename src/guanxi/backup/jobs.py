"""The worker's nightly backup (``GUANXI_BACKUP_HOUR``), with retention of the newest
``GUANXI_BACKUP_KEEP`` in ``GUANXI_BACKUP_DIR``.

Once per local day: the ``backup.created`` audit entries written by this job are the
record of what ran, so a restart, a second run or a second worker the same day does not
back up again. While it works the job holds a lock (PostgreSQL: an advisory lock; SQLite:
a file lock in the backup folder), so two workers reaching the same moment do not both
take one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.backup.service import create_backup
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.core.locks import job_lock

log = logging.getLogger("guanxi.backup")

# The actor of scheduled backups: what marks a day's backup as done.
SCHEDULE = "backup-schedule"
_LOCK = 0x6775_626B


@contextmanager
def _exclusive(engine: Engine, folder: Path) -> Iterator[bool]:
    """Whether this process may back up now, decided without waiting (False: another
    worker is at it): on PostgreSQL a session advisory lock (workers on any machine); on
    SQLite, whose workers share one machine, a lock on a file in the backup folder."""
    if engine.dialect.name != "postgresql":
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with job_lock(engine, key=_LOCK, lock_file=folder / ".lock", wait=False) as got:
        yield got


def backup_nightly(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Take today's backup once the configured local hour has come (nothing when
    ``backup_hour`` is unset or today's backup exists)."""
    if settings.backup_hour is None:
        return {"ran": 0}
    now = clock.now().astimezone(ZoneInfo(settings.timezone))
    due = now.replace(hour=settings.backup_hour, minute=0, second=0, microsecond=0)
    if now < due:
        return {"ran": 0}
    folder = settings.backup_dir or Path(settings.data_dir) / "backups"
    with _exclusive(engine, folder) as mine:
        if not mine:
            return {"ran": 0, "busy": 1}
        with make_sessionmaker(engine)() as session:
            last = session.scalar(
                select(func.max(AuditEntry.occurred_at)).where(
                    AuditEntry.action == "backup.created", AuditEntry.actor_name == SCHEDULE
                )
            )
        if last is not None and last >= due:
            return {"ran": 0}
        result = create_backup(
            settings,
            to=settings.backup_dir,
            keep=settings.backup_keep,
            actor=Actor.system(SCHEDULE),
        )
    manifest = result.manifest
    log.info(
        "backup written: %s (%d rows, %d files, %.1fs; %d old removed)",
        result.path,
        sum(manifest.tables.values()),
        len(manifest.files) - 1,
        result.seconds,
        len(result.pruned),
    )
    return {"ran": 1, "path": str(result.path), "pruned": len(result.pruned)}
