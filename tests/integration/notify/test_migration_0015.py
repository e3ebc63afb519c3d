"""Migration 0015 moves the e-mail outbox into the one outbox: queued, sent and failed mails
keep their ids, keys, states and times, and new rows get later ids; downgrading brings the
mails back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.core.migrate import alembic_config, upgrade
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import queue_email

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@pytest.fixture
def at_0014(committed_engine: Engine) -> Engine:
    """A database at revision 0014 (before this migration), with two mails queued."""
    # The committed engine arrives at head: step back to before the one outbox.
    _downgrade(committed_engine, "0014")
    with committed_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox_email (id, key, to_enc, subject, body, status, attempts, "
                "next_attempt_at, last_error, created_at, sent_at) VALUES "
                "(7, 'old:1', 'enc-1', '已解决', '正文', 'sent', 1, :t, NULL, :t, :t), "
                "(9, 'old:2', 'enc-2', '待发', '正文2', 'failed', 6, :t, 'boom', :t, NULL)"
            ),
            {"t": T0.replace(tzinfo=None) if committed_engine.dialect.name == "sqlite" else T0},
        )
    return committed_engine


def test_upgrade_copies_the_mails_and_downgrade_brings_them_back(at_0014: Engine) -> None:
    upgrade(at_0014)
    with Session(at_0014) as s:
        rows = s.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.key,
                OutboxMessage.channel,
                OutboxMessage.category,
                OutboxMessage.to_enc,
                OutboxMessage.status,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
                OutboxMessage.delivery,
                OutboxMessage.created_at,
                OutboxMessage.sent_at,
            ).order_by(OutboxMessage.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (7, "old:1", "email", "transactional", "enc-1", "sent", 1, None, "unknown", T0, T0),
            (
                9,
                "old:2",
                "email",
                "transactional",
                "enc-2",
                "failed",
                6,
                "boom",
                "unknown",
                T0,
                None,
            ),
        ]
        with write_transaction(s):
            assert queue_email(s, key="new:1", to="a@b.cn", subject="s", body="b")
        new_id = s.scalar(select(OutboxMessage.id).where(OutboxMessage.key == "new:1"))
        assert new_id is not None
        assert new_id > 9
    _downgrade(at_0014, "0014")
    with at_0014.connect() as conn:
        back: list[Any] = conn.execute(
            text("SELECT id, key, status, attempts FROM outbox_email ORDER BY id")
        ).all()
    assert [tuple(r) for r in back] == [
        (7, "old:1", "sent", 1),
        (9, "old:2", "failed", 6),
        (new_id, "new:1", "pending", 0),
    ]
    upgrade(at_0014)
    with at_0014.begin() as conn:
        conn.execute(insert(OutboxMessage.__table__).values(
            key="after", channel="email", category="transactional", subject="", body="",
            status="pending", attempts=0, next_attempt_at=T0, delivery="unknown", created_at=T0,
        ))  # fmt: skip
