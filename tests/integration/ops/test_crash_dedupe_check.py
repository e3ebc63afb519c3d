"""kill -9 during the duplicate check that follows ``guanxi import customers``, then the same
import run again, on SQLite and PostgreSQL.

The import itself is complete when its check starts, so a re-run of the file finds nothing
to import; it must still run the check the killed run owed (the job recorded it as due),
and a check that finished must not run again. Asserted: every merge of the killed check
whole; after the re-run, each duplicate pair stored once and merged (each planted
duplicate into its original, none else), the report's figures exact; the audit chain
verifies. (Small, unlike test_crash_jobs.py: no twin database, a few hundred customers.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.dedupe.models import CustomerMerge, DedupeRun, DuplicatePair
from guanxi.imports.enums import ImportKind
from guanxi.imports.models import ImportJob
from guanxi.imports.service import check_pending, run_import
from tests.integration.ops.test_crash_jobs import (
    _chain_ok,
    _complete,
    _customers_csv,
    _kill_midway,
    _merge_outcome,
    _merges_whole,
    _people,
)

BASE = 300
DUPLICATES = 200  # two transactions of a hundred merges: the kill lands between them
NEWCOMERS = ["诸葛明", "司马光华", "欧阳秀英", "上官丽", "慕容杰"]


def _seed(engine: Engine, tmp_path: Path) -> None:
    """``BASE`` people imported (no check), then the first ``DUPLICATES`` of them entered
    again by agents under other customer numbers: unscored duplicates in the base."""
    people = _people(BASE, seed=12)
    path = _customers_csv(tmp_path / "base.csv", [(f"A{i:06d}", *p) for i, p in enumerate(people)])
    bot = Actor.system("test")
    with Session(engine) as session:
        assert run_import(session, kind=ImportKind.customers, path=path, actor=bot).imported == BASE
        for i, (name, phone, address) in enumerate(people[:DUPLICATES]):
            create_customer(
                session,
                customer_in=CustomerCreate(
                    name=name,
                    external_id=f"B{i:06d}",
                    phones=[phone],
                    addresses=[{"line": address}],
                ),
                actor=bot,
            )


def _jobs(session: Session) -> list[tuple[str, int, bool]]:
    rows = session.execute(
        select(ImportJob.status, ImportJob.imported, ImportJob.dedupe_pending).order_by(
            ImportJob.id
        )
    )
    return [(status, imported, pending) for status, imported, pending in rows]


def test_kill_during_the_check_after_an_import(committed_engine: Engine, tmp_path: Path) -> None:
    crashed = committed_engine
    _seed(crashed, tmp_path)
    path = _customers_csv(
        tmp_path / "new.csv",
        [
            (f"N{i:03d}", name, f"150{i:08d}", f"浙江省台州市椒江区东海大道{i + 1}号")
            for i, name in enumerate(NEWCOMERS)
        ],
    )
    args = ("import", "customers", str(path), "--json")
    target = random.Random().randrange(1, DUPLICATES - 100)

    def merges(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(CustomerMerge)) or 0

    _kill_midway(crashed, tmp_path / "a", args, merges, target)
    with Session(crashed) as session:
        done = _merges_whole(session)
        assert 0 < done < DUPLICATES, f"killed at target {target}"
        assert done % 100 == 0
        # The import is complete; its check is still due; the killed run never finished.
        assert _jobs(session) == [("finished", BASE, False), ("finished", len(NEWCOMERS), True)]
        runs = session.execute(select(DedupeRun.finished_at)).all()
        assert [tuple(r) for r in runs] == [(None,)]
    _chain_ok(crashed)

    everyone = BASE + DUPLICATES + len(NEWCOMERS)
    again = json.loads(_complete(crashed, tmp_path / "a", *args))
    assert (again["imported"], again["unchanged"], again["rejected"]) == (0, len(NEWCOMERS), 0)
    # Every active customer: no check ever finished, so none has been scored for good.
    assert again["duplicates"] == {
        "checked": everyone - done,
        "auto_merged": DUPLICATES - done,
        "queued": 0,
    }

    with Session(crashed) as session:
        assert _merges_whole(session) == DUPLICATES
        outcome = _merge_outcome(session)
        assert outcome["merges"] == [(f"A{i:06d}", f"B{i:06d}") for i in range(DUPLICATES)]
        # Each pair stored once (the re-run refreshed the killed run's pending pairs).
        assert outcome["pairs"] == [("merged", DUPLICATES)]
        stored = session.execute(select(DuplicatePair.left_id, DuplicatePair.right_id)).all()
        assert len(set(stored)) == len(stored) == DUPLICATES
        statuses = sorted((ext, status) for ext, _name, status, _p, _a in outcome["customers"])
        assert statuses == sorted(
            [(f"A{i:06d}", "active") for i in range(BASE)]
            + [(f"B{i:06d}", "merged") for i in range(DUPLICATES)]
            + [(f"N{i:03d}", "active") for i in range(len(NEWCOMERS))]
        )
        assert _jobs(session) == [
            ("finished", BASE, False),
            ("finished", len(NEWCOMERS), False),
            ("finished", 0, False),
        ]

    # The check finished: nothing is due, so the next run of an import (which asks just
    # this, tests/integration/imports/test_dedupe_pending.py) does not run it again.
    with Session(crashed) as session:
        assert check_pending(session, Actor.system("test")) is None
        finished = session.scalars(
            select(DedupeRun.finished_at.is_not(None)).order_by(DedupeRun.id)
        ).all()
        assert finished == [False, True]
    _chain_ok(crashed)
