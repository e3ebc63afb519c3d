"""Queuing in bulk on both databases: ``queue_bulk`` stores what ``queue_messages`` stores,
and both stay idempotent by key, count exactly the rows added and write all of a batch or
none of it — on PostgreSQL also through the COPY path of large batches (500 rows and more:
straight into the outbox, or through a staging table once a key exists already)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify import outbox
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import (
    ADDRESS_FIELD,
    BulkItem,
    Category,
    Channel,
    Outbound,
    queue_bulk,
    queue_messages,
)
from guanxi.security.crypto import cipher

LATE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai: quiet hours
MORNING = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, when they end
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
MANY = 700  # above outbox._COPY_MIN: PostgreSQL copies


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def _stored(db: Session, prefix: str) -> dict[str, dict[str, Any]]:
    """Every stored column but the id, by key without its prefix."""
    db.expire_all()
    rows = db.scalars(select(OutboxMessage).where(OutboxMessage.key.startswith(prefix)))
    return {
        r.key.removeprefix(prefix): {
            "channel": r.channel,
            "category": r.category,
            "customer_id": r.customer_id,
            "to_enc": r.to_enc,
            "template": r.template,
            "params": r.params,
            "subject": r.subject,
            "body": r.body,
            "source": r.source,
            "status": r.status,
            "attempts": r.attempts,
            "delivery": r.delivery,
            "next_attempt_at": r.next_attempt_at,
            "created_at": r.created_at,
        }
        for r in rows
    }


def _sms_items(prefix: str, customers: list[int], n: int) -> list[BulkItem]:
    return [
        (
            f"{prefix}{i}",
            customers[i % len(customers)],
            {"name": f"客户{i % 7}", "festival": "国庆节", "company": "关系速递"},
            "",
            f"客户{i % 7}，关系速递祝您国庆节快乐！",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [3, MANY])
def test_bulk_stores_exactly_what_queue_messages_stores(
    db: Session, make_customer: Any, n: int
) -> None:
    people = [make_customer(name="甲").id, make_customer(name="乙").id]
    items = _sms_items("", people, n)
    mails: list[BulkItem] = [
        (k, cid, {}, f"主题\r\n{k}", f"正文{k}") for k, cid, _p, _s, _b in items
    ]
    with clock.frozen(LATE), write_transaction(db):
        added = queue_bulk(
            db,
            [(f"bulk:sms:{k}", cid, p, s, b) for k, cid, p, s, b in items],
            channel=Channel.sms,
            category=Category.marketing,
            template="care_greeting",
            source="care:1:festival",
        )
        added += queue_bulk(
            db,
            ((f"bulk:mail:{k}", cid, p, s, b) for k, cid, p, s, b in mails),
            channel=Channel.email,
            category=Category.marketing,
            source="care:1:festival",
        )
        added += queue_messages(
            db,
            [
                Outbound(
                    key=f"each:sms:{k}",
                    channel=Channel.sms,
                    category=Category.marketing,
                    customer_id=cid,
                    template="care_greeting",
                    params=p,
                    subject=s,
                    body=b,
                    source="care:1:festival",
                )
                for k, cid, p, s, b in items
            ]
            + [
                Outbound(
                    key=f"each:mail:{k}",
                    channel=Channel.email,
                    category=Category.marketing,
                    customer_id=cid,
                    subject=s,
                    body=b,
                    source="care:1:festival",
                )
                for k, cid, _p, s, b in mails
            ],
        )
    assert added == 4 * n
    bulk, each = _stored(db, "bulk:"), _stored(db, "each:")
    assert len(bulk) == 2 * n
    assert bulk == each
    first = bulk["sms:1"]
    assert first["customer_id"] == people[1]
    assert json.loads(first["params"]) == {
        "company": "关系速递",
        "festival": "国庆节",
        "name": "客户1",
    }
    # Keys sorted, as the gateways' signatures and the tests of the SMS templates expect.
    assert first["params"] == '{"company": "关系速递", "festival": "国庆节", "name": "客户1"}'
    assert (first["status"], first["attempts"], first["delivery"]) == ("pending", 0, "unknown")
    # Marketing SMS wait for the end of the quiet hours; e-mails do not.
    assert first["next_attempt_at"] == MORNING
    assert bulk["mail:1"]["next_attempt_at"] == LATE
    assert bulk["mail:1"]["created_at"] == LATE
    assert bulk["mail:1"]["subject"] == "主题 1"
    assert bulk["mail:1"]["params"] is None


def test_existing_keys_are_skipped_and_only_new_rows_counted(
    db: Session, make_customer: Any
) -> None:
    people = [make_customer().id]
    items = _sms_items("k:", people, MANY)

    def bulk(batch: list[BulkItem]) -> int:
        return queue_bulk(
            db, batch, channel=Channel.sms, category=Category.marketing, template="care_greeting"
        )

    with clock.frozen(NOON), write_transaction(db):
        assert bulk(items[:500]) == 500
    changed = [(k, cid, p, s, "改过的正文") for k, cid, p, s, _b in items]
    with clock.frozen(NOON), write_transaction(db):
        # 500 keys exist (the direct COPY meets them), 200 are new.
        assert bulk(changed) == MANY - 500
        assert bulk(changed) == 0
    stored = _stored(db, "k:")
    assert len(stored) == MANY
    assert stored["0"]["body"] == "客户0，关系速递祝您国庆节快乐！"  # kept, not replaced
    assert stored["600"]["body"] == "改过的正文"


def test_a_key_repeated_within_a_batch_keeps_its_first_message(
    db: Session, make_customer: Any
) -> None:
    cid = make_customer().id
    items: list[BulkItem] = [(f"r:{i % 600}", cid, {}, f"第{i}封", "正文") for i in range(MANY)]
    with clock.frozen(NOON), write_transaction(db):
        added = queue_bulk(db, items, channel=Channel.email, category=Category.service)
    assert added == 600
    stored = _stored(db, "r:")
    assert len(stored) == 600
    assert stored["5"]["subject"] == "第5封"  # not 第605封
    assert stored["99"]["subject"] == "第99封"
    assert stored["100"]["subject"] == "第100封"


def test_fresh_keys_take_the_direct_copy_on_postgresql(
    db: Session, make_customer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    staged = outbox._stage_pg

    def spy(conn: Any, rows: list[tuple[Any, ...]]) -> int:
        calls.append(len(rows))
        return staged(conn, rows)

    monkeypatch.setattr(outbox, "_stage_pg", spy)
    items = _sms_items("d:", [make_customer().id], MANY)
    with clock.frozen(NOON), write_transaction(db):
        assert (
            queue_bulk(
                db, items, channel=Channel.sms, category=Category.service, template="survey_invite"
            )
            == MANY
        )
        assert (
            queue_bulk(
                db, items, channel=Channel.sms, category=Category.service, template="survey_invite"
            )
            == 0
        )
    # No staging for new keys; the second batch (all of them queued already) is staged.
    assert calls == ([MANY] if db.get_bind().dialect.name == "postgresql" else [])


def _failing(items: list[BulkItem], bad: BulkItem) -> Iterator[BulkItem]:
    yield from items
    yield bad


@pytest.mark.parametrize(
    ("bad", "error"),
    [(("", 1, {}, "", "x"), "key"), (("ok:last", None, {}, "", "x"), "customer")],
)
def test_a_bad_item_late_in_a_streamed_batch_writes_nothing_of_it(
    db: Session, make_customer: Any, bad: Any, error: str
) -> None:
    cid = make_customer().id
    items = _sms_items("s:", [cid], MANY)
    with clock.frozen(NOON), write_transaction(db):
        queue_messages(
            db,
            [Outbound(key="before", channel=Channel.email, category=Category.service, to="a@b.cn")],
        )
        # The first 700 rows are on their way into the outbox when the last one fails.
        with pytest.raises(ValueError, match=error):
            queue_bulk(
                db,
                _failing(items, bad),
                channel=Channel.sms,
                category=Category.marketing,
                template="care_greeting",
            )
        # The caller's transaction goes on: what it wrote before stays, and it can queue.
        assert _count(db) == 1
        assert queue_bulk(
            db, items[:2], channel=Channel.sms, category=Category.marketing, template="t"
        ) == 2  # fmt: skip
    assert sorted(_stored(db, "")) == ["before", "s:0", "s:1"]


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ({"channel": Channel.sms, "category": Category.marketing}, "template"),
        ({"channel": Channel.webhook, "category": Category.transactional}, "webhook"),
        ({"channel": Channel.email, "category": Category.service, "source": "s" * 121}, "source"),
        (
            {"channel": Channel.sms, "category": Category.service, "template": "t" * 41},
            "template",
        ),
    ],
)
def test_what_a_bulk_shares_is_checked_before_anything_is_written(
    db: Session, make_customer: Any, kind: dict[str, Any], error: str
) -> None:
    cid = make_customer().id
    with pytest.raises(ValueError, match=error), write_transaction(db):
        queue_bulk(db, [("k", cid, {}, "", "x")] * MANY, **kind)
    assert _count(db) == 0


def test_an_empty_bulk_adds_nothing(db: Session) -> None:
    assert queue_bulk(db, [], channel=Channel.sms, category=Category.marketing) == 0
    assert queue_bulk(db, iter([]), channel=Channel.webhook, category=Category.service) == 0


def test_a_large_batch_of_explicit_addresses_is_copied_encrypted(db: Session) -> None:
    messages = [
        Outbound(
            key=f"user-mail:{i}",
            channel=Channel.email,
            category=Category.transactional,
            to=f"User{i}@Example.cn",
            subject=f"工单 {i}",
            body="您好",
        )
        for i in range(MANY)
    ]
    with clock.frozen(NOON), write_transaction(db):
        assert queue_messages(db, messages) == MANY
        assert queue_messages(db, messages[-10:] + messages[:495]) == 0
    stored = _stored(db, "user-mail:")
    assert len(stored) == MANY
    assert stored["42"]["customer_id"] is None
    assert cipher().decrypt(ADDRESS_FIELD, stored["42"]["to_enc"]) == "User42@Example.cn"
    assert stored["42"]["next_attempt_at"] == NOON


def test_a_rolled_back_transaction_leaves_no_copied_rows(db: Session, make_customer: Any) -> None:
    items = _sms_items("gone:", [make_customer().id], MANY)
    seen: list[int] = []

    def change_of_mind() -> None:
        with write_transaction(db):
            queue_bulk(db, items, channel=Channel.sms, category=Category.marketing, template="t")
            seen.append(_count(db))
            raise RuntimeError("the caller changes its mind")

    with pytest.raises(RuntimeError):
        change_of_mind()
    assert seen == [MANY]
    assert _count(db) == 0
    # The same keys queue again afterwards (nothing of the first try is left anywhere).
    with clock.frozen(NOON + timedelta(hours=1)), write_transaction(db):
        assert (
            queue_bulk(db, items, channel=Channel.sms, category=Category.marketing, template="t")
            == MANY
        )
