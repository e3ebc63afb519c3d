"""The worker's periodic de-duplication (``dedupe_incremental``).

Customers arrive by other paths than an import (the API, the forms, the self-service
page); this job scores those added or changed since the last finished run, every
``GUANXI_DEDUPE_INTERVAL_MINUTES`` (off when unset), so they do not wait for someone to
run a check by hand. One worker at a time (the run's lock, ``dedupe.lock``); with nothing
new it records nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from guanxi.audit.service import Actor
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker

log = logging.getLogger("guanxi.dedupe")

# The actor of scheduled runs (the run list and the audit log name it).
SCHEDULE = "dedupe-schedule"


def dedupe_incremental(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Score the customers added or changed since the last finished run, once the
    configured interval has passed since it; ``ran`` 0 when not due, busy or nothing new."""
    if settings.dedupe_interval_minutes is None:
        return {"ran": 0}
    # Imported here: the linkage library loads only when a worker runs the job.
    from guanxi.dedupe.service import run_incremental_if_needed

    with make_sessionmaker(engine)() as session:
        done = run_incremental_if_needed(
            session,
            actor=Actor.system(SCHEDULE),
            every=timedelta(minutes=settings.dedupe_interval_minutes),
            now=clock.now(),
            settings=settings,
        )
        if done.run is None:
            return {"ran": 0, done.outcome: 1}
        figures = {
            "ran": 1,
            "run_id": done.run.id,
            "customers": done.run.customers,
            "auto_merged": done.run.auto_merged,
            "queued": done.run.queued,
        }
    log.info("incremental de-duplication: %s", figures)
    return figures
