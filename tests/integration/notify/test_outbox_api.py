"""The administrators' view of the outbox: masked addresses, attempts and errors; retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxEmail
from guanxi.notify.outbox import queue_email

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _queue(db: Session, key: str, to: str, **values: Any) -> int:
    with clock.frozen(T0), write_transaction(db):
        queue_email(db, key=key, to=to, subject=f"主题 {key}", body="正文")
        if values:
            db.execute(update(OutboxEmail).where(OutboxEmail.key == key).values(**values))
    row_id = db.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key))
    assert row_id is not None
    return row_id


def test_admin_lists_open_and_failed_mails_masked(client: Any, login: Any, db: Session) -> None:
    pending = _queue(db, "k:p", "zhang.san@example.com")
    failed = _queue(
        db,
        "k:f",
        "li.si@example.com",
        status="failed",
        attempts=6,
        last_error="ConnectionRefusedError: [Errno 111] Connection refused",
    )
    _queue(db, "k:s", "wang.wu@example.com", status="sent", attempts=1, sent_at=T0)
    _, headers = login("admin")

    resp = client.get("/api/v1/outbox", headers=headers)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["next_before"] is None
    assert [(i["id"], i["to"], i["status"], i["attempts"]) for i in page["items"]] == [
        (failed, "l***@example.com", "failed", 6),
        (pending, "z***@example.com", "pending", 0),
    ]
    assert page["items"][0]["last_error"] == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert page["items"][0]["subject"] == "主题 k:f"
    assert "example.com" not in page["items"][0]["last_error"]

    sent = client.get("/api/v1/outbox?status=sent", headers=headers).json()["items"]
    assert [(i["key"], i["to"]) for i in sent] == [("k:s", "w***@example.com")]
    first = client.get("/api/v1/outbox?limit=1", headers=headers).json()
    assert ([i["id"] for i in first["items"]], first["next_before"]) == ([failed], failed)
    second = client.get(f"/api/v1/outbox?limit=1&before={failed}", headers=headers).json()
    assert [i["id"] for i in second["items"]] == [pending]


def test_supervisors_and_auditors_see_only_administrators_change(
    client: Any, login: Any, db: Session
) -> None:
    failed = _queue(db, "k:f", "li.si@example.com", status="failed", attempts=6)
    for role in ("manager", "auditor"):
        _, headers = login(role)
        listed = client.get("/api/v1/outbox", headers=headers)
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()["items"]] == [failed]
        assert client.post(f"/api/v1/outbox/{failed}/retry", headers=headers).status_code == 403
        assert client.post(f"/api/v1/outbox/{failed}/cancel", headers=headers).status_code == 403
    for role in ("agent",):
        _, headers = login(role)
        assert client.get("/api/v1/outbox", headers=headers).status_code == 403
        assert client.post(f"/api/v1/outbox/{failed}/retry", headers=headers).status_code == 403
    assert client.get("/api/v1/outbox").status_code == 401
    row = db.get_one(OutboxEmail, failed)
    db.refresh(row)
    assert (row.status, row.attempts) == ("failed", 6)


def test_retry_a_failed_mail(client: Any, login: Any, db: Session) -> None:
    failed = _queue(db, "k:f", "li.si@example.com", status="failed", attempts=6, last_error="boom")
    admin, headers = login("admin")
    later = T0 + timedelta(days=1)
    with clock.frozen(later):
        resp = client.post(f"/api/v1/outbox/{failed}/retry", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["attempts"], body["last_error"]) == ("pending", 0, "boom")
    row = db.get_one(OutboxEmail, failed)
    db.refresh(row)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, later)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "outbox.retried"))
    assert entry is not None
    assert (entry.actor_id, entry.target_id) == (admin.id, str(failed))
    assert (entry.before, entry.after) == (
        {"status": "failed", "attempts": 6},
        {"status": "pending", "attempts": 0},
    )


def test_retry_refusals_are_translated(client: Any, login: Any, db: Session) -> None:
    sent = _queue(db, "k:s", "wang.wu@example.com", status="sent", attempts=1, sent_at=T0)
    busy = _queue(
        db,
        "k:b",
        "zhao.liu@example.com",
        status="sending",
        attempts=1,
        next_attempt_at=T0 + timedelta(minutes=10),
    )
    _, headers = login("admin")
    with clock.frozen(T0):
        en = client.post(
            f"/api/v1/outbox/{sent}/retry", headers={**headers, "Accept-Language": "en"}
        )
        zh = client.post(
            f"/api/v1/outbox/{busy}/retry", headers={**headers, "Accept-Language": "zh-CN"}
        )
        missing = client.post("/api/v1/outbox/999999/retry", headers=headers)
    assert en.status_code == 409
    assert [(e["field"], e["message"]) for e in en.json()["errors"]] == [
        ("id", "This e-mail has already been sent")
    ]
    assert zh.status_code == 409
    assert [(e["field"], e["message"]) for e in zh.json()["errors"]] == [
        ("id", "这封邮件正在发送，请稍后再看")
    ]
    assert missing.status_code == 404
    rows = {r.id: (r.status, r.attempts) for r in db.scalars(select(OutboxEmail))}
    assert rows == {sent: ("sent", 1), busy: ("sending", 1)}
