"""The worker's nightly backup: off unless configured, once per local day after the hour
(also across a second worker), the newest N kept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from guanxi.audit.models import AuditEntry
from guanxi.backup.jobs import SCHEDULE, backup_nightly
from guanxi.backup.service import list_backups
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.worker import JOBS
from tests.conftest import settings_for

# 01:30 and 03:00 in Asia/Shanghai on 26 and 27 November.
BEFORE = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)
AFTER = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
NEXT_DAY = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)


def test_registered_every_ten_minutes() -> None:
    assert [(n, every) for n, _job, every in JOBS if n == "backup_nightly"] == [
        ("backup_nightly", 600)
    ]


def test_nightly_backup(committed_engine: Engine, tmp_path: Path) -> None:
    url = committed_engine.url.render_as_string(hide_password=False)
    off = settings_for(url, tmp_path / "data")
    with clock.frozen(AFTER):
        assert backup_nightly(committed_engine, off) == {"ran": 0}
    settings = off.model_copy(
        update={"backup_hour": 2, "backup_dir": tmp_path / "nightly", "backup_keep": 2}
    )
    with clock.frozen(BEFORE):
        assert backup_nightly(committed_engine, settings) == {"ran": 0}
    assert list_backups(tmp_path / "nightly") == []

    with clock.frozen(AFTER):
        first = backup_nightly(committed_engine, settings)
    assert first["ran"] == 1
    assert list_backups(tmp_path / "nightly") == [Path(first["path"])]
    # Later the same day, or a second worker at the same moment: nothing more.
    outcomes: list[dict[str, object]] = []

    def again() -> None:
        outcomes.append(backup_nightly(committed_engine, settings))

    with clock.frozen(LATER):
        threads = [threading.Thread(target=again) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [o["ran"] for o in outcomes] == [0, 0]
    assert list_backups(tmp_path / "nightly") == [Path(first["path"])]

    # The next day two workers at the same moment: exactly one backs up (the other finds
    # the lock taken, or today's backup done).
    outcomes.clear()
    with clock.frozen(NEXT_DAY):
        threads = [threading.Thread(target=again) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(o["ran"] for o in outcomes) == [0, 1]  # type: ignore[type-var]
    second = next(o for o in outcomes if o["ran"] == 1)
    assert second == {"ran": 1, "path": second["path"], "pruned": 0}
    with clock.frozen(NEXT_DAY.replace(day=27)):
        third = backup_nightly(committed_engine, settings)
    assert third == {"ran": 1, "path": third["path"], "pruned": 1}
    assert list_backups(tmp_path / "nightly") == [Path(str(second["path"])), Path(third["path"])]

    with make_sessionmaker(committed_engine)() as session:
        made = session.scalars(
            select(AuditEntry.target_id)
            .where(AuditEntry.action == "backup.created", AuditEntry.actor_name == SCHEDULE)
            .order_by(AuditEntry.id)
        ).all()
    assert made == [Path(str(r["path"])).name for r in (first, second, third)]
