"""queue_messages: idempotent by key, bulk, validated before anything is written, quiet
hours applied when queuing; sent_counts for frequency caps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import (
    ADDRESS_FIELD,
    Category,
    Channel,
    Outbound,
    queue_messages,
    sent_counts,
)
from guanxi.security.crypto import cipher

# 22:30 in Shanghai
LATE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
MORNING = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def _sms(key: str, customer_id: int, category: Category = Category.service, **kw: Any) -> Outbound:
    return Outbound(
        key=key,
        channel=Channel.sms,
        category=category,
        customer_id=customer_id,
        template="survey_invite",
        params={"name": "张先生", "link": "https://g.cn/v/1"},
        body="张先生您好……",
        **kw,
    )


def _rows(db: Session) -> dict[str, OutboxMessage]:
    db.expire_all()
    return {r.key: r for r in db.scalars(select(OutboxMessage))}


def test_queue_is_idempotent_by_key_and_stores_what_was_given(
    db: Session, make_customer: Any
) -> None:
    c = make_customer(phones=["13912345678"])
    with clock.frozen(NOON), write_transaction(db):
        added = queue_messages(
            db,
            [
                _sms("survey:1:c", c.id, source="survey:1"),
                Outbound(
                    key="mail:1",
                    channel=Channel.email,
                    category=Category.transactional,
                    to="Li.Si@example.cn",
                    subject="已解决\r\n",
                    body="正文",
                ),
                _sms("survey:1:c", c.id),  # the same key again in the batch
            ],
        )
    assert added == 2
    with clock.frozen(NOON + timedelta(minutes=5)), write_transaction(db):
        again = queue_messages(db, [_sms("survey:1:c", c.id), _sms("survey:2:c", c.id)])
    assert again == 1
    rows = _rows(db)
    assert sorted(rows) == ["mail:1", "survey:1:c", "survey:2:c"]
    sms = rows["survey:1:c"]
    assert (sms.channel, sms.category, sms.customer_id, sms.to_enc, sms.template) == (
        "sms",
        "service",
        c.id,
        None,
        "survey_invite",
    )
    assert json.loads(sms.params or "") == {"link": "https://g.cn/v/1", "name": "张先生"}
    assert (sms.status, sms.attempts, sms.delivery, sms.source) == (
        "pending",
        0,
        "unknown",
        "survey:1",
    )
    assert (sms.created_at, sms.next_attempt_at) == (NOON, NOON)
    mail = rows["mail:1"]
    assert mail.subject == "已解决"
    assert mail.to_enc is not None
    assert "example" not in mail.to_enc
    assert cipher().decrypt(ADDRESS_FIELD, mail.to_enc) == "Li.Si@example.cn"
    assert rows["survey:2:c"].created_at == NOON + timedelta(minutes=5)


def test_bulk_queue_in_chunks(db: Session, make_customer: Any) -> None:
    c = make_customer()
    messages = [
        Outbound(
            key=f"care:9:{n}",
            channel=Channel.sms,
            category=Category.marketing,
            customer_id=c.id,
            template="care_greeting",
            params={"name": "客户", "greeting": "新春快乐"},
            source="care:9",
        )
        for n in range(4500)
    ]
    with clock.frozen(NOON), write_transaction(db):
        assert queue_messages(db, messages) == 4500
        assert queue_messages(db, messages) == 0
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 4500


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (Outbound(key="", channel=Channel.email, category=Category.service, to="a@b.cn"), "key"),
        (
            Outbound(key="k" * 121, channel=Channel.email, category=Category.service, to="a@b.cn"),
            "key",
        ),
        (
            Outbound(key="k", channel=Channel.email, category=Category.service),
            "customer or an address",
        ),
        (
            Outbound(key="k", channel=Channel.email, category=Category.marketing, to="a@b.cn"),
            "marketing",
        ),
        (
            Outbound(key="k", channel=Channel.sms, category=Category.service, to="13912345678"),
            "template",
        ),
        (
            Outbound(
                key="k", channel=Channel.sms, category=Category.service, to="12", template="t"
            ),
            "not a phone number",
        ),
        (
            Outbound(
                key="k", channel=Channel.email, category=Category.service, to="a@b.cn\r\nBcc: x"
            ),
            "not an e-mail address",
        ),
        (Outbound(key="k", channel=Channel.webhook, category=Category.transactional), "endpoint"),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_written(
    db: Session, message: Outbound, error: str
) -> None:
    good = Outbound(key="ok", channel=Channel.email, category=Category.service, to="a@b.cn")
    with pytest.raises(ValueError, match=error), write_transaction(db):
        queue_messages(db, [good, message])
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_quiet_hours_push_service_and_marketing_sms_to_the_morning(
    db: Session, make_customer: Any
) -> None:
    c = make_customer(phones=["13912345678"])
    with clock.frozen(LATE), write_transaction(db):
        queue_messages(
            db,
            [
                _sms("service", c.id),
                _sms("marketing", c.id, Category.marketing),
                _sms("transactional", c.id, Category.transactional),
                Outbound(
                    key="mail", channel=Channel.email, category=Category.marketing, customer_id=c.id
                ),
                # Asked for 07:00 local: still quiet, so 08:00.
                _sms("early", c.id, not_before=MORNING - timedelta(hours=1)),
                # Asked for 10:00 local tomorrow: outside, kept.
                _sms("later", c.id, not_before=MORNING + timedelta(hours=2)),
            ],
        )
    due = {k: r.next_attempt_at for k, r in _rows(db).items()}
    assert due == {
        "service": MORNING,
        "marketing": MORNING,
        "transactional": LATE,
        "mail": LATE,
        "early": MORNING,
        "later": MORNING + timedelta(hours=2),
    }


def test_sent_counts_for_caps(db: Session, make_customer: Any) -> None:
    a, b, c = make_customer(name="甲"), make_customer(name="乙"), make_customer(name="丙")
    since = NOON - timedelta(days=7)
    rows = [
        ("care:1:a:old", a.id, "care:1", NOON - timedelta(days=8), "sent"),
        ("care:1:a", a.id, "care:1", NOON - timedelta(days=1), "sent"),
        ("care:2:a", a.id, "care:2", NOON, "pending"),
        ("care:2:a:x", a.id, "care:2", NOON, "cancelled"),
        ("care:3:a", a.id, "care:3", NOON, "failed"),
        ("survey:5:a", a.id, "survey:5", NOON, "sent"),
        ("care:1:b", b.id, "care:1", NOON, "sending"),
        ("careless:b", b.id, "careless", NOON, "sent"),
        ("survey:5:c", c.id, "survey:5", NOON, "sent"),
    ]
    for key, cid, source, at, status in rows:
        with clock.frozen(at), write_transaction(db):
            queue_messages(
                db,
                [Outbound(key=key, channel=Channel.email, category=Category.marketing,
                          customer_id=cid, source=source)],
            )  # fmt: skip
            db.execute(update(OutboxMessage).where(OutboxMessage.key == key).values(status=status))
    assert sent_counts(db, customer_ids=None, source_prefix="care:", since=since) == {
        a.id: 2,
        b.id: 1,
    }
    assert sent_counts(db, customer_ids=[a.id, c.id], source_prefix="care:", since=since) == {
        a.id: 2
    }
    assert sent_counts(db, customer_ids=[c.id], source_prefix="survey:", since=since) == {c.id: 1}
    assert sent_counts(db, customer_ids=[], source_prefix="care:", since=since) == {}
    # A prefix's wildcard characters are literal.
    assert sent_counts(db, customer_ids=None, source_prefix="care_", since=since) == {}
