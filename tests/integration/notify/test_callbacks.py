"""The SMS providers' callbacks: delivery reports set the delivery state; a TD reply
withdraws consent (audited, source sms_reply) and a queued marketing text is then
cancelled at send while a transactional one still goes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, grant_many, is_allowed
from guanxi.customers.models import CustomerConsentEvent
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from guanxi.notify.sender import send_due
from guanxi.notify.sms.local import FileSms

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
TOKEN = "cb-token-123"  # noqa: S105 - a test value


@pytest.fixture
def hooks(app: Any, client: Any) -> Any:
    """The client of an app whose callbacks are on (token configured)."""
    app.state.settings = app.state.settings.model_copy(update={"sms_callback_token": TOKEN})
    return client


def _queue(db: Session, key: str, customer_id: int, category: Category, **kw: Any) -> None:
    with clock.frozen(NOON), write_transaction(db):
        queue_messages(
            db,
            [
                Outbound(
                    key=key,
                    channel=Channel.sms,
                    category=category,
                    customer_id=customer_id,
                    template="care_greeting" if category is Category.marketing else "survey_invite",
                    params={"name": "张先生", "company": "关系速递", "festival": "春节"}
                    if category is Category.marketing
                    else {"days": "7", "link": "https://g.cn/v/1"},
                    **kw,
                )
            ],
        )


def _mark_sent(db: Session, key: str, provider_id: str) -> None:
    with write_transaction(db):
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == key)
            .values(status="sent", attempts=1, sent_at=NOON, provider_id=provider_id)
        )


def _row(db: Session, key: str) -> OutboxMessage:
    db.expire_all()
    row = db.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
    assert row is not None
    return row


def test_delivery_reports(hooks: Any, db: Session, make_customer: Any) -> None:
    c = make_customer(phones=["13912345678"])
    for key, pid in (("a", "biz-1"), ("b", "biz-2"), ("c", None), ("t", "sid-9")):
        _queue(db, key, c.id, Category.service)
        _mark_sent(db, key, pid or "")
    report = [
        {"phone_number": "13912345678", "success": True, "biz_id": "biz-1", "out_id": "a",
         "err_code": "DELIVERED", "err_msg": "用户接收成功", "report_time": "2026-03-02 12:00:05"},
        {"phone_number": "13912345678", "success": False, "biz_id": "biz-2", "out_id": "b",
         "err_code": "MK:0001", "report_time": "2026-03-02 12:00:09"},
        # Matched by our key (OutId) alone.
        {"phone_number": "13912345678", "success": "true", "biz_id": "", "out_id": "c",
         "report_time": "2026-03-02 12:01:00"},
        {"phone_number": "13912345678", "success": True, "biz_id": "nobody", "out_id": "zz"},
    ]  # fmt: skip
    resp = hooks.post(f"/api/v1/public/sms/aliyun/{TOKEN}/report", json=report)
    assert (resp.status_code, resp.json()) == (200, {"code": 0, "msg": "成功"})
    a, b, c_ = _row(db, "a"), _row(db, "b"), _row(db, "c")
    assert (a.delivery, a.delivered_at) == ("delivered", datetime(2026, 3, 2, 4, 0, 5, tzinfo=UTC))
    assert (b.delivery, b.delivered_at, b.last_error) == (
        "undelivered",
        None,
        "undelivered: MK:0001",
    )
    assert (c_.delivery, c_.delivered_at) == ("delivered", datetime(2026, 3, 2, 4, 1, tzinfo=UTC))
    status = [
        {
            "user_receive_time": "2026-03-02 12:02:03",
            "nationcode": "86",
            "mobile": "13912345678",
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": "sid-9",
        }
    ]
    resp = hooks.post(f"/api/v1/public/sms/tencent/{TOKEN}/status", json=status)
    assert (resp.status_code, resp.json()) == (200, {"result": 0, "errmsg": "OK"})
    t = _row(db, "t")
    assert (t.delivery, t.delivered_at) == ("delivered", datetime(2026, 3, 2, 4, 2, 3, tzinfo=UTC))


def test_a_wrong_or_missing_token_changes_nothing(
    app: Any, client: Any, db: Session, make_customer: Any
) -> None:
    c = make_customer(phones=["13912345678"])
    _queue(db, "a", c.id, Category.service)
    _mark_sent(db, "a", "biz-1")
    report = [{"success": True, "biz_id": "biz-1", "out_id": "a"}]
    # Callbacks off (no token configured): every token is unknown.
    assert client.post("/api/v1/public/sms/aliyun/x/report", json=report).status_code == 404
    app.state.settings = app.state.settings.model_copy(update={"sms_callback_token": TOKEN})
    assert (
        client.post("/api/v1/public/sms/aliyun/cb-token-124/report", json=report).status_code == 404
    )
    assert (
        client.post(
            "/api/v1/public/sms/tencent/x/reply", json={"mobile": "1", "text": "TD"}
        ).status_code
        == 404
    )
    assert _row(db, "a").delivery == "unknown"


def test_td_withdraws_consent_and_the_queued_marketing_text_is_cancelled(
    hooks: Any,
    db: Session,
    session_factory: sessionmaker[Session],
    make_customer: Any,
    tmp_path: Path,
) -> None:
    # Two customers share the number (a family phone); a third has another.
    a = make_customer(name="甲", phones=["13912345678"])
    b = make_customer(name="乙", phones=["13700001111"], contacts=None)
    shared = make_customer(
        name="丙", kind="enterprise", contacts=[{"name": "王", "phone": "13912345678"}]
    )
    with write_transaction(db):
        grant_many(db, [a.id, b.id, shared.id], [Purpose.marketing_sms], source="import", at=NOON)
    _queue(db, "greet:a", a.id, Category.marketing)
    _queue(db, "survey:a", a.id, Category.service)
    _queue(db, "ticket:a", a.id, Category.transactional)
    _queue(db, "greet:b", b.id, Category.marketing)

    reply = [{"phone_number": "13912345678", "send_time": "2026-03-02 12:30:00", "content": "ＴＤ",
              "sign_name": "关系客服", "dest_code": "1234", "sequence_id": 1}]  # fmt: skip
    resp = hooks.post(f"/api/v1/public/sms/aliyun/{TOKEN}/reply", json=reply)
    assert resp.status_code == 200
    assert [is_allowed(db, a.id, p) for p in (Purpose.marketing_sms, Purpose.survey)] == [
        False,
        False,
    ]
    assert is_allowed(db, shared.id, Purpose.marketing_sms) is False
    assert is_allowed(db, b.id, Purpose.marketing_sms) is True
    events = db.scalars(
        select(CustomerConsentEvent).where(CustomerConsentEvent.source == "sms_reply")
    ).all()
    assert sorted((e.customer_id, e.purpose, e.granted, e.actor_name) for e in events) == sorted(
        [
            (a.id, "marketing_sms", False, "sms_reply"),
            (a.id, "survey", False, "sms_reply"),
            (shared.id, "marketing_sms", False, "sms_reply"),
            (shared.id, "survey", False, "sms_reply"),
        ]
    )
    assert db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "customer.consent_withdrawn", AuditEntry.target_id == str(a.id)
        )
    )

    out = tmp_path / "sms.jsonl"
    with clock.frozen(NOON):
        figures = send_due(session_factory, sms=FileSms(out, default_sign="关系客服")).figures()
    assert (figures["sent"], figures["cancelled"]) == (2, 2)
    assert (_row(db, "greet:a").status, _row(db, "greet:a").last_error) == (
        "cancelled",
        "consent withdrawn",
    )
    assert (_row(db, "survey:a").status, _row(db, "survey:a").last_error) == (
        "cancelled",
        "consent withdrawn",
    )
    assert _row(db, "ticket:a").status == "sent"
    assert _row(db, "greet:b").status == "sent"
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["out_id"] for line in lines) == ["greet:b", "ticket:a"]
    # A marketing text carries the opt-out line.
    [greeting] = [line for line in lines if line["out_id"] == "greet:b"]
    assert greeting["text"] == "【关系客服】张先生您好，关系速递祝您春节快乐，阖家幸福！回TD退订"


def test_tencent_reply_and_ordinary_replies(hooks: Any, db: Session, make_customer: Any) -> None:
    a = make_customer(phones=["13912345678"])
    with write_transaction(db):
        grant_many(db, [a.id], [Purpose.marketing_sms], source="import", at=NOON)
    thanks = {"extend": "", "mobile": "13912345678", "nationcode": "86", "sign": "关系客服",
              "text": "谢谢", "time": 1772424000}  # fmt: skip
    assert hooks.post(f"/api/v1/public/sms/tencent/{TOKEN}/reply", json=thanks).status_code == 200
    assert is_allowed(db, a.id, Purpose.marketing_sms) is True
    stop = {**thanks, "text": " 退订 "}
    resp = hooks.post(f"/api/v1/public/sms/tencent/{TOKEN}/reply", json=stop)
    assert (resp.status_code, resp.json()) == (200, {"result": 0, "errmsg": "OK"})
    assert is_allowed(db, a.id, Purpose.marketing_sms) is False
