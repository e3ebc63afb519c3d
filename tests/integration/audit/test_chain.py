"""The audit chain detects altered, removed and inserted rows."""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import GENESIS, Actor, _digest, record, record_many, verify


def _three(db: Session) -> list[AuditEntry]:
    actor = Actor(7, "agent_li")
    for n in range(3):
        record(
            db,
            actor=actor,
            action="customer.updated",
            target_type="customer",
            target_id=n,
            after={"n": n},
        )
    db.flush()
    return list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_chain_links_each_row_to_the_previous(db: Session) -> None:
    rows = _three(db)
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert verify(db) == (3, [])


def test_a_batch_continues_the_chain_entry_by_entry(db: Session) -> None:
    first = _three(db)
    added = record_many(
        db,
        actor=Actor(None, "pool"),
        action="customer.updated",
        target_type="customer",
        changes=[(10, {"owner_id": 7}, {"owner_id": None}), (11, None, {"owner_id": 8})],
    )
    assert added == 2
    assert record_many(db, actor=Actor(None, "pool"), action="x", target_type="y", changes=[]) == 0
    rows = list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(r.target_id, r.before, r.after, r.actor_name) for r in rows[3:]] == [
        ("10", {"owner_id": 7}, {"owner_id": None}, "pool"),
        ("11", None, {"owner_id": 8}, "pool"),
    ]
    assert [r.prev_hash for r in rows[3:]] == [first[-1].hash, rows[3].hash]
    assert all(_digest(r.prev_hash, r) == r.hash for r in rows)
    assert verify(db) == (5, [])


def test_altered_row_is_detected(db: Session) -> None:
    rows = _three(db)
    db.execute(
        update(AuditEntry).where(AuditEntry.id == rows[1].id).values(actor_name="someone_else")
    )
    count, problems = verify(db)
    assert count == 3
    assert [(p.entry_id, p.problem) for p in problems] == [(rows[1].id, "content altered")]


def test_removed_row_is_detected(db: Session) -> None:
    rows = _three(db)
    db.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": rows[1].id})
    count, problems = verify(db)
    assert count == 2
    assert [p.entry_id for p in problems] == [rows[2].id]
    assert problems[0].problem.startswith("link broken")


def test_inserted_row_is_detected(db: Session) -> None:
    """A forged row linked correctly to its predecessor still breaks its successor's link."""
    rows = _three(db)
    db.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": rows[1].id})
    db.expunge(rows[1])
    forged = AuditEntry(
        id=rows[1].id,
        occurred_at=rows[1].occurred_at,
        actor_id=1,
        actor_name="intruder",
        action="customer.updated",
        target_type="customer",
        target_id="1",
        before=None,
        after={"n": 1},
        request_id=None,
        prev_hash=rows[0].hash,
    )
    forged.hash = _digest(forged.prev_hash, forged)
    db.add(forged)
    db.flush()
    count, problems = verify(db)
    assert count == 3
    assert [p.entry_id for p in problems] == [rows[2].id]
    assert problems[0].problem.startswith("link broken")
