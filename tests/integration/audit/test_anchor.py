"""Audit anchors outside the database: ``guanxi audit anchor`` appends the chain's head,
``guanxi audit verify`` checks the chain and every anchor. Tampering by altering,
deleting or inserting a row, by cutting the tail, or by rewriting the chain from a row on
with fresh hashes is each detected with its message and exit code 1 (both databases)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from guanxi.audit.anchor import ANCHOR_FILE, anchor_dir, read_anchors, write_anchor
from guanxi.audit.models import AuditEntry
from guanxi.audit.service import GENESIS, Actor, ChainProblem, _digest, record
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core.db import make_sessionmaker
from guanxi.security import crypto
from guanxi.worker import JOBS, audit_anchor
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY, settings_for

LINK = "link broken: a row before it was removed, inserted or altered"


@pytest.fixture
def anchors_at(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The CLI pointed at the committed database, anchors in their own directory; six
    audit entries (ids 1-6) and one anchor of them."""
    directory = tmp_path / "anchors"
    monkeypatch.setenv(
        "GUANXI_DATABASE_URL", committed_engine.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GUANXI_AUDIT_ANCHOR_DIR", str(directory))
    monkeypatch.setenv("GUANXI_FIELD_KEYS", json.dumps({"t1": TEST_FIELD_KEY}))
    monkeypatch.setenv("GUANXI_ACTIVE_FIELD_KEY", "t1")
    monkeypatch.setenv("GUANXI_BLIND_INDEX_KEY", TEST_BLIND_KEY)
    monkeypatch.setattr(crypto, "_cipher", crypto.cipher())
    get_settings.cache_clear()
    with make_sessionmaker(committed_engine)() as session, session.begin():
        for n in range(6):
            record(
                session,
                actor=Actor(3, "agent_li"),
                action="customer.updated",
                target_type="customer",
                target_id=n,
                after={"tier": n},
            )
    anchored = CliRunner().invoke(app, ["audit", "anchor"])
    assert anchored.exit_code == 0, anchored.output
    assert "anchored entry 6 (6 entries)" in anchored.output
    yield directory
    get_settings.cache_clear()


def _verify() -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["audit", "verify"])
    return result.exit_code, [line for line in result.output.splitlines() if line]


def _anchored_at(directory: Path) -> str:
    anchors, problems = read_anchors(directory)
    assert problems == []
    return anchors[0].at.isoformat()


def _first_time(engine: Engine) -> datetime:
    with make_sessionmaker(engine)() as session:
        at = session.scalar(select(AuditEntry.occurred_at).where(AuditEntry.id == 1))
    assert at is not None
    return at


def test_an_untouched_chain_and_its_anchor_verify(anchors_at: Path) -> None:
    lines = (anchors_at / ANCHOR_FILE).read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["entry_id"] == 6
    assert json.loads(lines[0])["count"] == 6
    assert _verify() == (0, ["audit chain intact: 6 entries, 1 anchors"])


def test_an_altered_row(anchors_at: Path, committed_engine: Engine) -> None:
    with committed_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor_name = 'someone' WHERE id = 3"))
    assert _verify() == (
        1,
        ["entry 3: content altered", "audit chain BROKEN: 1 problem(s) in 6 entries"],
    )


def test_a_deleted_row(anchors_at: Path, committed_engine: Engine) -> None:
    with committed_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    at = _anchored_at(anchors_at)
    assert _verify() == (
        1,
        [
            f"entry 4: {LINK}",
            f"entry 6: anchor of {at}: 5 entries up to the anchored entry, 6 anchored "
            "(entries were removed or inserted before it)",
            "audit chain BROKEN: 2 problem(s) in 5 entries",
        ],
    )


def test_an_inserted_row(anchors_at: Path, committed_engine: Engine) -> None:
    """A forged first entry, correctly hashed from the genesis: the old first entry's link
    breaks and the anchor counts one entry fewer."""
    forged = AuditEntry(
        id=0,
        occurred_at=_first_time(committed_engine),
        actor_id=1,
        actor_name="intruder",
        action="customer.revealed",
        target_type="customer",
        target_id="1",
        before=None,
        after=None,
        request_id=None,
        prev_hash=GENESIS,
    )
    forged.hash = _digest(GENESIS, forged)
    with make_sessionmaker(committed_engine)() as session, session.begin():
        session.add(forged)
    at = _anchored_at(anchors_at)
    assert _verify() == (
        1,
        [
            f"entry 1: {LINK}",
            f"entry 6: anchor of {at}: 7 entries up to the anchored entry, 6 anchored "
            "(entries were removed or inserted before it)",
            "audit chain BROKEN: 2 problem(s) in 7 entries",
        ],
    )


def test_a_truncated_tail(anchors_at: Path, committed_engine: Engine) -> None:
    """Cutting the last rows leaves a chain that links perfectly: only the anchor sees it."""
    with committed_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id >= 5"))
    at = _anchored_at(anchors_at)
    assert _verify() == (
        1,
        [
            f"entry 6: anchor of {at}: the anchored entry is missing "
            "(the log was truncated or rewritten)",
            f"entry 6: anchor of {at}: 4 entries up to the anchored entry, 6 anchored "
            "(entries were removed or inserted before it)",
            "audit chain BROKEN: 2 problem(s) in 4 entries",
        ],
    )


def test_a_chain_rewritten_after_an_alteration(anchors_at: Path, committed_engine: Engine) -> None:
    """Row 3 altered and every hash from it on recomputed: the chain alone is intact, the
    anchored head's hash is not the one anchored."""
    with make_sessionmaker(committed_engine)() as session, session.begin():
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        prev = rows[1].hash
        for entry in rows[2:]:
            if entry.id == 3:
                entry.after = {"tier": 99}
            entry.prev_hash = prev
            entry.hash = prev = _digest(prev, entry)
    at = _anchored_at(anchors_at)
    assert _verify() == (
        1,
        [
            f"entry 6: anchor of {at}: the anchored entry's hash differs (the chain was rewritten)",
            "audit chain BROKEN: 1 problem(s) in 6 entries",
        ],
    )


def test_later_entries_and_anchors_verify_and_a_bad_line_is_reported(
    anchors_at: Path, committed_engine: Engine
) -> None:
    with make_sessionmaker(committed_engine)() as session:
        with session.begin():
            record(session, actor=Actor.system("t"), action="x", target_type="x", target_id=1)
        head = write_anchor(session, anchors_at)
    assert head is not None
    assert (head.entry_id, head.count) == (7, 7)
    assert _verify() == (0, ["audit chain intact: 7 entries, 2 anchors"])
    with (anchors_at / ANCHOR_FILE).open("a") as fh:
        fh.write("{not json\n")
    assert read_anchors(anchors_at)[1] == [ChainProblem(0, "anchor file line 3 is unreadable")]
    assert _verify() == (
        1,
        [
            "entry 0: anchor file line 3 is unreadable",
            "audit chain BROKEN: 1 problem(s) in 7 entries",
        ],
    )


def test_the_worker_anchors_hourly(committed_engine: Engine, tmp_path: Path) -> None:
    assert [(n, every) for n, _job, every in JOBS if n == "audit_anchor"] == [
        ("audit_anchor", 3600)
    ]
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    assert anchor_dir(settings) == tmp_path / "audit-anchors"
    assert audit_anchor(committed_engine, settings) == {"entry_id": None}
    assert not (tmp_path / "audit-anchors" / ANCHOR_FILE).exists()
    with make_sessionmaker(committed_engine)() as session, session.begin():
        for n in range(3):
            record(session, actor=Actor.system("t"), action="x", target_type="x", target_id=n)
    assert audit_anchor(committed_engine, settings) == {"entry_id": 3, "count": 3}
    anchors, problems = read_anchors(tmp_path / "audit-anchors")
    assert problems == []
    with make_sessionmaker(committed_engine)() as session:
        last = session.scalar(select(AuditEntry.hash).where(AuditEntry.id == 3))
    assert [(a.entry_id, a.hash, a.count) for a in anchors] == [(3, last, 3)]
