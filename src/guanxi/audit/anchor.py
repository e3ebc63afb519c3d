"""Anchors of the audit chain outside the database.

The hash chain shows a row altered, removed or inserted in the middle, but not a chain
rewritten from some row onwards with fresh hashes, nor a tail cut off: whoever can write
the table can do either consistently. An anchor is the chain's head — last entry id, its
hash, the number of entries up to it, the time — appended to a file the database's users
cannot reach (``GUANXI_AUDIT_ANCHOR_DIR``; by default ``data_dir/audit-anchors``) by the
worker every hour and by ``guanxi audit anchor``. ``guanxi audit verify`` then checks that
each anchored entry still exists with that hash and that the count up to it matches.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import ChainProblem
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker

log = logging.getLogger("guanxi.audit.anchor")

ANCHOR_FILE = "anchors.jsonl"


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment: its last entry, that entry's hash, the number of
    entries up to and including it."""

    entry_id: int
    hash: str
    count: int
    at: datetime

    def line(self) -> str:
        """The anchor as one JSON line of the anchor file."""
        return json.dumps(
            {"entry_id": self.entry_id, "hash": self.hash, "count": self.count,
             "at": self.at.isoformat()},
            separators=(",", ":"),
        )  # fmt: skip


def anchor_dir(settings: Settings) -> Path:
    """The anchor directory of ``settings``."""
    return settings.audit_anchor_dir or settings.data_dir / "audit-anchors"


def chain_head(session: Session) -> Anchor | None:
    """The current head of the chain (None while the log is empty)."""
    row = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    count = session.scalar(select(func.count()).where(AuditEntry.id <= row.id)) or 0
    return Anchor(int(row.id), str(row.hash), int(count), clock.now().replace(microsecond=0))


def write_anchor(session: Session, directory: Path, *, to_log: bool = False) -> Anchor | None:
    """Append the chain's head to the anchor file in ``directory`` (created if missing),
    flushed to disk; also to the log if ``to_log``. Nothing is written for an empty log."""
    head = chain_head(session)
    session.rollback()
    if head is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ANCHOR_FILE
    # Append-only by use: opened for appending, never rewritten; fsync so an anchor the
    # worker reported is on disk.
    with path.open("a", encoding="utf-8") as fh:
        fh.write(head.line() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    if to_log:
        log.info("audit anchor entry_id=%s hash=%s count=%s", head.entry_id, head.hash, head.count)
    return head


def read_anchors(directory: Path) -> tuple[list[Anchor], list[ChainProblem]]:
    """The anchors of ``directory``'s file (none if it does not exist yet) and a problem
    per unreadable line (entry id 0: it names no entry)."""
    path = directory / ANCHOR_FILE
    if not path.exists():
        return [], []
    anchors, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw: dict[str, Any] = json.loads(line)
            anchors.append(
                Anchor(
                    int(raw["entry_id"]),
                    str(raw["hash"]),
                    int(raw["count"]),
                    datetime.fromisoformat(raw["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            problems.append(ChainProblem(0, f"anchor file line {number} is unreadable"))
    return anchors, problems


def verify_anchors(session: Session, anchors: list[Anchor]) -> list[ChainProblem]:
    """Check each anchor against the log: the anchored entry exists with the anchored hash
    and the entries up to it are as many as anchored. The counts are taken between
    consecutive anchored ids, so the whole check reads the id index once."""
    problems: list[ChainProblem] = []
    by_id: dict[int, list[Anchor]] = {}
    for a in anchors:
        by_id.setdefault(a.entry_id, []).append(a)
    counted, last_id = 0, None
    for entry_id in sorted(by_id):
        # The first range has no lower bound: rows forged with id 0 or below count too.
        lower: list[ColumnElement[bool]] = [] if last_id is None else [AuditEntry.id > last_id]
        counted += (
            session.scalar(select(func.count()).where(*lower, AuditEntry.id <= entry_id)) or 0
        )
        last_id = entry_id
        stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.id == entry_id))
        for a in by_id[entry_id]:
            when = a.at.isoformat()
            if stored is None:
                problems.append(
                    ChainProblem(
                        entry_id,
                        f"anchor of {when}: the anchored entry is missing "
                        "(the log was truncated or rewritten)",
                    )
                )
            elif stored != a.hash:
                problems.append(
                    ChainProblem(
                        entry_id,
                        f"anchor of {when}: the anchored entry's hash differs "
                        "(the chain was rewritten)",
                    )
                )
            if counted != a.count:
                problems.append(
                    ChainProblem(
                        entry_id,
                        f"anchor of {when}: {counted} entries up to the anchored entry, "
                        f"{a.count} anchored (entries were removed or inserted before it)",
                    )
                )
    session.rollback()
    return problems


def anchor_job(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The worker's hourly anchor (also in the log, a second copy outside the database)."""
    with make_sessionmaker(engine)() as session:
        head = write_anchor(session, anchor_dir(settings), to_log=True)
    return {"entry_id": head.entry_id, "count": head.count} if head else {"entry_id": None}
