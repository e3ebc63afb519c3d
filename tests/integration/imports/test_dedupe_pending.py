"""The duplicate check after a customer import is due until it has finished: a check that
stops midway is run by the next run of the import, one that finished is not run again."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.customers.models import Customer
from guanxi.dedupe import service as dedupe_service
from guanxi.dedupe.models import CustomerMerge, DedupeRun, DuplicatePair
from guanxi.imports.enums import ImportKind
from guanxi.imports.models import ImportJob
from guanxi.imports.service import check_pending, run_import

ACTOR = Actor.system("test-import")


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _file(tmp_path: Path) -> Path:
    # The same person twice (traditional characters, the same mobile), and a stranger:
    # the import keeps both records, the check merges them.
    return _csv(
        tmp_path / "customers.csv",
        [
            ["客户名称", "手机"],
            ["张三丰", "13912345678"],
            ["張三豐", "139 1234 5678"],
            ["李四", "13812345678"],
        ],
    )


def _pending(db: Session) -> list[tuple[int, bool]]:
    rows = db.execute(select(ImportJob.id, ImportJob.dedupe_pending).order_by(ImportJob.id))
    return [(job_id, pending) for job_id, pending in rows]


def _count(db: Session, model: Any) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_the_check_is_due_until_it_finished_and_runs_once(db: Session, tmp_path: Path) -> None:
    base = run_import(
        db,
        kind=ImportKind.customers,
        path=_csv(tmp_path / "base.csv", [["客户名称", "手机"], ["张三丰", "13912345678"]]),
        actor=ACTOR,
    )
    path = _csv(
        tmp_path / "new.csv",
        [["客户名称", "手机"], ["李四", "13812345678"], ["王五", "13712345678"]],
    )
    report = run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR, dedupe=True)
    assert (report.imported, report.status) == (2, "finished")
    assert _pending(db) == [(base.job_id, False), (report.job_id, True)]

    # The base was never checked either (imported without): one run scores all three.
    assert check_pending(db, ACTOR) == {"checked": 3, "auto_merged": 0, "queued": 0}
    assert _pending(db) == [(base.job_id, False), (report.job_id, False)]
    assert _count(db, DedupeRun) == 1
    # Finished: neither asking again nor importing the file again runs it a second time.
    assert check_pending(db, ACTOR) is None
    again = run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR, dedupe=True)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)
    assert check_pending(db, ACTOR) is None
    assert _pending(db) == [(base.job_id, False), (report.job_id, False), (again.job_id, False)]
    assert _count(db, DedupeRun) == 1


def test_a_check_stopped_midway_runs_with_the_next_run_of_the_import(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path)
    first = run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR, dedupe=True)

    def crash(*_args: Any, **_kw: Any) -> int:
        raise RuntimeError("killed while merging")

    # The run stored its pairs, then died before merging: the import itself is complete.
    with monkeypatch.context() as patched:
        patched.setattr(dedupe_service, "_auto_merge", crash)
        with pytest.raises(RuntimeError, match="killed while merging"):
            check_pending(db, ACTOR)
    assert _pending(db) == [(first.job_id, True)]
    assert db.scalar(select(DedupeRun.finished_at)) is None
    assert _count(db, CustomerMerge) == 0

    # Re-running the import adds nothing, and runs the check the first run still owes.
    again = run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR, dedupe=True)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 3)
    assert check_pending(db, ACTOR) == {"checked": 3, "auto_merged": 1, "queued": 0}
    assert _pending(db) == [(first.job_id, False), (again.job_id, False)]
    pairs = db.execute(select(DuplicatePair.left_id, DuplicatePair.right_id, DuplicatePair.status))
    names = {cid: name for cid, name in db.execute(select(Customer.id, Customer.name))}
    assert [(names[a], names[b], s) for a, b, s in pairs] == [("张三丰", "張三豐", "merged")]
    assert _count(db, CustomerMerge) == 1
    assert check_pending(db, ACTOR) is None


def test_no_check_is_due_without_dedupe_or_for_a_dry_run(db: Session, tmp_path: Path) -> None:
    path = _file(tmp_path)
    dry = run_import(
        db, kind=ImportKind.customers, path=path, actor=ACTOR, dedupe=True, dry_run=True
    )
    assert dry.job_id is None
    off = run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR)
    assert off.imported == 3
    assert _pending(db) == [(off.job_id, False)]
    assert check_pending(db, ACTOR) is None
    assert _count(db, DedupeRun) == 0
