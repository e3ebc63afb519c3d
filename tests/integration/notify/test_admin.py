"""Administration of the channels: quiet hours applied at send and edited (audited), the
SMS template registry, the outbox's filters, counts, cancel; the admin pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from guanxi.notify.sender import send_due
from guanxi.notify.sms.local import FileSms

EVENING = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
LATE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 22:30
MORNING = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00


def _sms(key: str, customer_id: int, category: Category, source: str = "survey:1") -> Outbound:
    return Outbound(
        key=key,
        channel=Channel.sms,
        category=category,
        customer_id=customer_id,
        template="survey_invite",
        params={"name": "张", "link": "L"},
        source=source,
    )


def _row(db: Session, key: str) -> OutboxMessage:
    db.expire_all()
    row = db.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
    assert row is not None
    return row


def test_quiet_hours_at_send(
    db: Session, session_factory: sessionmaker[Session], make_customer: Any, tmp_path: Path
) -> None:
    c = make_customer(phones=["13912345678"])
    with clock.frozen(EVENING), write_transaction(db):
        queue_messages(db, [_sms("invite", c.id, Category.service)])
    with clock.frozen(LATE), write_transaction(db):
        queue_messages(db, [_sms("ticket", c.id, Category.transactional)])
    gateway = FileSms(tmp_path / "sms.jsonl", default_sign="关系")
    # The worker was down in the evening; at 22:30 the invitation must wait for 08:00.
    with clock.frozen(LATE):
        figures = send_due(session_factory, sms=gateway).figures()
    assert (figures["sent"], figures["deferred"]) == (1, 1)
    invite = _row(db, "invite")
    assert (invite.status, invite.attempts, invite.next_attempt_at) == ("pending", 0, MORNING)
    assert _row(db, "ticket").status == "sent"
    with clock.frozen(MORNING - timedelta(minutes=1)):
        assert send_due(session_factory, sms=gateway).figures()["sent"] == 0
    with clock.frozen(MORNING):
        assert send_due(session_factory, sms=gateway).figures()["sent"] == 1


def test_quiet_hours_api(client: Any, login: Any, db: Session) -> None:
    admin, headers = login("admin")
    assert client.get("/api/v1/notify/quiet-hours", headers=headers).json() == {
        "start": "21:00:00",
        "end": "08:00:00",
        "timezone": "Asia/Shanghai",
    }
    resp = client.put(
        "/api/v1/notify/quiet-hours", json={"start": "22:00", "end": "07:30"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["start"] == "22:00:00"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "notify.quiet_hours_saved"))
    assert entry is not None
    assert (entry.actor_id, entry.after) == (
        admin.id,
        {"start": "22:00:00", "end": "07:30:00", "timezone": "Asia/Shanghai"},
    )
    bad = client.put(
        "/api/v1/notify/quiet-hours",
        json={"start": "25:00", "end": "07:00", "timezone": "Mars/Base"},
        headers={**headers, "Accept-Language": "en"},
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["start"]
    _, manager = login("manager")
    assert client.get("/api/v1/notify/quiet-hours", headers=manager).status_code == 200
    assert (
        client.put(
            "/api/v1/notify/quiet-hours", json={"start": "20:00", "end": "08:00"}, headers=manager
        ).status_code
        == 403
    )
    assert client.get("/api/v1/notify/quiet-hours", headers=headers).json()["start"] == "22:00:00"


def test_sms_template_registry_api(client: Any, login: Any, db: Session) -> None:
    _, headers = login("admin")
    listed = client.get("/api/v1/notify/sms-templates", headers=headers).json()
    assert [t["code"] for t in listed] == [
        "care_birthday", "care_greeting", "care_thanks", "care_winback",
        "coupon_issued", "loyalty_tier", "survey_invite", "survey_reminder",
    ]  # fmt: skip
    assert all(t["builtin"] and not t["stored"] for t in listed)
    body = {
        "name": "满意度邀请",
        "category": "service",
        "aliyun_template": "SMS_900001",
        "tencent_template": "1900001",
        "text_zh": "{name}您好，请评价：{link}",
        "text_en": "Hi {name}, rate us: {link}",
        "param_order": ["name", "link"],
    }
    saved = client.put("/api/v1/notify/sms-templates/survey_invite", json=body, headers=headers)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["aliyun_template"], saved.json()["stored"]) == ("SMS_900001", True)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "notify.sms_template_saved"))
    assert entry is not None
    assert entry.after is not None
    assert entry.after["aliyun_template"] == "SMS_900001"
    mismatch = client.put(
        "/api/v1/notify/sms-templates/survey_invite",
        json={**body, "text_en": "Hi {name}", "param_order": ["link"]},
        headers={**headers, "Accept-Language": "en"},
    )
    assert mismatch.status_code == 422
    assert [(e["field"], e["message"]) for e in mismatch.json()["errors"]] == [
        ("text_en", "The English text must use the same placeholders as the Chinese"),
        ("param_order", "List each placeholder of the text once, in the provider template's order"),
    ]
    assert (
        client.put("/api/v1/notify/sms-templates/Bad-Code", json=body, headers=headers).status_code
        == 422
    )
    _, auditor = login("auditor")
    assert client.get("/api/v1/notify/sms-templates", headers=auditor).status_code == 200
    assert (
        client.put("/api/v1/notify/sms-templates/x_y", json=body, headers=auditor).status_code
        == 403
    )


def test_outbox_filters_counts_and_cancel(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    c = make_customer(phones=["13912345678"])
    with clock.frozen(EVENING), write_transaction(db):
        queue_messages(
            db,
            [
                _sms("s1", c.id, Category.service, "survey:1"),
                _sms("s2", c.id, Category.marketing, "care:4"),
                Outbound(key="m1", channel=Channel.email, category=Category.transactional,
                         to="a@b.cn", subject="工单已解决"),
            ],
        )  # fmt: skip
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == "s1")
            .values(status="sent", delivery="delivered", provider_id="biz-1")
        )
    _, headers = login("admin")

    def keys(query: str) -> list[str]:
        resp = client.get(f"/api/v1/outbox?{query}", headers=headers)
        assert resp.status_code == 200, resp.text
        return [i["key"] for i in resp.json()["items"]]

    assert keys("") == ["m1", "s2"]
    assert keys("status=sent&status=pending&channel=sms") == ["s2", "s1"]
    assert keys("status=sent&delivery=delivered") == ["s1"]
    assert keys("status=pending&source=care:") == ["s2"]
    counts = client.get("/api/v1/outbox/counts", headers=headers).json()["counts"]
    assert counts["sms"] == {"pending": 1, "sending": 0, "sent": 1, "failed": 0, "cancelled": 0}
    assert counts["email"]["pending"] == 1
    assert counts["webhook"]["pending"] == 0

    s2 = _row(db, "s2").id
    resp = client.post(f"/api/v1/outbox/{s2}/cancel", headers=headers)
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled"
    assert _row(db, "s2").last_error == "cancelled by an administrator"
    again = client.post(f"/api/v1/outbox/{s2}/cancel", headers={**headers, "Accept-Language": "en"})
    assert again.status_code == 409
    assert again.json()["errors"][0]["message"] == (
        "Only a message waiting to be sent can be cancelled (cancelled)"
    )
    retry = client.post(f"/api/v1/outbox/{s2}/retry", headers={**headers, "Accept-Language": "en"})
    assert retry.status_code == 409
    assert retry.json()["errors"][0]["message"] == "A cancelled message cannot be sent again"
    assert db.scalar(
        select(AuditEntry.target_id).where(AuditEntry.action == "outbox.cancelled")
    ) == str(s2)


def test_admin_pages(client: Any, login: Any, db: Session, make_customer: Any) -> None:
    c = make_customer(phones=["13912345678"])
    with clock.frozen(EVENING), write_transaction(db):
        queue_messages(db, [_sms("p1", c.id, Category.service)])
    _, admin = login("admin")
    page = client.get("/admin/outbox", headers={**admin, "Accept-Language": "en"})
    assert page.status_code == 200
    assert 'id="outbox-counts"' in page.text
    assert 'id="m-' in page.text
    assert "/admin/outbox/" in page.text
    assert ">Cancel<" in page.text
    assert 'action="/admin/outbox/quiet-hours"' in page.text
    pid = _row(db, "p1").id
    cancelled = client.post(f"/admin/outbox/{pid}/cancel", headers=admin, follow_redirects=False)
    assert (cancelled.status_code, cancelled.headers["location"]) == (303, "/admin/outbox")
    assert _row(db, "p1").status == "cancelled"
    quiet = client.post(
        "/admin/outbox/quiet-hours",
        data={"start": "nonsense", "end": "08:00", "timezone": "Asia/Shanghai"},
        headers={**admin, "Accept-Language": "en"},
    )
    assert quiet.status_code == 200
    assert 'role="alert"' in quiet.text
    templates = client.get("/admin/sms-templates?edit=care_birthday", headers=admin)
    assert templates.status_code == 200
    assert 'id="t-care_birthday"' in templates.text
    assert 'action="/admin/sms-templates/care_birthday"' in templates.text
    hooks = client.post(
        "/admin/webhooks",
        data={"name": "ERP", "url": "https://erp.example.cn/h", "events": ["survey.answered"]},
        headers=admin,
    )
    assert hooks.status_code == 200
    assert 'id="webhook-secret">whsec_' in hooks.text
    _, auditor = login("auditor")
    seen = client.get("/admin/outbox", headers={**auditor, "Accept-Language": "en"})
    assert seen.status_code == 200
    assert ">Cancel<" not in seen.text
    assert client.get("/admin/webhooks", headers=auditor).status_code == 403
    _, agent = login("agent")
    assert client.get("/admin/outbox", headers=agent).status_code == 403
