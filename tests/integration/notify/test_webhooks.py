"""Signed webhooks to a real local receiver that checks the signature: delivered once,
retried on 5xx, the endpoint switched off on 410, idempotent emits, admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxMessage, WebhookEndpoint
from guanxi.notify.outbox import BACKOFF
from guanxi.notify.sender import send_due
from guanxi.notify.webhooks import emit
from tests.integration.notify import fakes

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[fakes.FakeServer]:
    with fakes.serve("webhook") as server:
        yield server


def _create(client: Any, headers: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/webhooks", json={"name": "ERP", "url": url, "events": events}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _emit(db: Session, event: str, payload: dict[str, Any]) -> int:
    with clock.frozen(NOON), write_transaction(db):
        return emit(db, event, payload)


def _rows(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_signed_delivery_retry_and_gone(
    client: Any,
    login: Any,
    db: Session,
    session_factory: sessionmaker[Session],
    receiver: fakes.FakeServer,
) -> None:
    _, headers = login("admin")
    endpoint = _create(client, headers, receiver.url, ["survey.detractor", "loyalty.tier_changed"])
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["active"] is True
    receiver.set_webhook_secret(endpoint["secret"])
    # The secret is shown once: listing never shows it.
    listed = client.get("/api/v1/webhooks", headers=headers).json()
    assert [e["secret"] for e in listed] == [None]

    assert _emit(db, "survey.detractor", {"answer_id": 7, "score": 2}) == 1
    assert _emit(db, "survey.detractor", {"answer_id": 7, "score": 2}) == 0  # same again
    assert _emit(db, "care.run_finished", {"rule_id": 1}) == 0  # not subscribed
    [row] = _rows(db)
    assert (row.channel, row.category, row.template) == (
        "webhook",
        "transactional",
        "survey.detractor",
    )

    receiver.recorder.script.append((503, {"error": "busy"}))
    with clock.frozen(NOON):
        assert send_due(session_factory).figures()["retrying"] == 1
    [row] = _rows(db)
    assert (row.status, row.last_error, row.next_attempt_at) == (
        "pending",
        "HTTP 503",
        NOON + BACKOFF[0],
    )
    with clock.frozen(NOON + BACKOFF[0]):
        assert send_due(session_factory).figures()["sent"] == 1
    [got] = receiver.recorder.accepted
    assert got["event"] == "survey.detractor"
    assert got["delivery"] == row.key
    assert got["body"]["data"] == {"answer_id": 7, "score": 2}
    assert (got["body"]["event"], got["body"]["id"]) == ("survey.detractor", row.key)
    assert receiver.recorder.rejected_signatures == 0

    # The receiver is gone: 410 switches the endpoint off; what waits is cancelled.
    _emit(db, "loyalty.tier_changed", {"customer_id": 1, "tier": "gold"})
    _emit(db, "loyalty.tier_changed", {"customer_id": 2, "tier": "gold"})
    receiver.recorder.script.append((410, {"error": "gone"}))
    with clock.frozen(NOON + timedelta(hours=1)):
        figures = send_due(session_factory, limit=1).figures()
        assert figures["failed"] == 1
        assert send_due(session_factory).figures()["cancelled"] == 1
    statuses = [(r.status, r.last_error) for r in _rows(db)]
    assert statuses == [
        ("sent", "HTTP 503"),
        ("failed", "HTTP 410: the receiver is gone; endpoint switched off"),
        ("cancelled", "webhook endpoint switched off"),
    ]
    stored = db.get_one(WebhookEndpoint, endpoint["id"])
    db.refresh(stored)
    assert (stored.active, stored.disabled_reason) == (False, "the receiver answered 410 Gone")
    assert (
        db.scalar(
            select(AuditEntry.actor_name).where(AuditEntry.action == "notify.webhook_disabled")
        )
        == "outbox"
    )
    # Switched off, nothing more is queued for it.
    assert _emit(db, "loyalty.tier_changed", {"customer_id": 3}) == 0
    deliveries = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=headers).json()
    assert [d["status"] for d in deliveries] == ["cancelled", "failed", "sent"]


def test_a_rotated_secret_signs_the_next_delivery(
    client: Any,
    login: Any,
    db: Session,
    session_factory: sessionmaker[Session],
    receiver: fakes.FakeServer,
) -> None:
    _, headers = login("admin")
    endpoint = _create(client, headers, receiver.url, ["*"])
    _emit(db, "care.run_finished", {"run": 1})
    rotated = client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate", headers=headers).json()
    assert rotated["secret"] != endpoint["secret"]
    receiver.set_webhook_secret(endpoint["secret"])  # the receiver still has the old one
    with clock.frozen(NOON):
        assert send_due(session_factory).figures()["retrying"] == 1
    assert receiver.recorder.rejected_signatures == 1
    receiver.set_webhook_secret(rotated["secret"])
    with clock.frozen(NOON + BACKOFF[0]):
        assert send_due(session_factory).figures()["sent"] == 1


def test_bad_endpoints_and_who_may_manage(client: Any, login: Any, db: Session) -> None:
    _, headers = login("admin")
    resp = client.post(
        "/api/v1/webhooks",
        json={"url": "ftp://x", "events": ["nope.event"]},
        headers={**headers, "Accept-Language": "en"},
    )
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("url", "Give an http:// or https:// address"),
        ("events", "Unknown event: nope.event"),
    ]
    empty = client.post(
        "/api/v1/webhooks", json={"url": "https://x.cn/h", "events": []}, headers=headers
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "events"
    for role in ("manager", "agent"):
        _, other = login(role)
        assert client.get("/api/v1/webhooks", headers=other).status_code == 403
        assert (
            client.post(
                "/api/v1/webhooks", json={"url": "https://x.cn/h", "events": ["*"]}, headers=other
            ).status_code
            == 403
        )
    assert db.scalar(select(WebhookEndpoint.id)) is None


def test_a_withdrawn_consent_is_announced(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    from guanxi.audit.service import Actor
    from guanxi.customers.consent import Purpose, record_consent

    _, headers = login("admin")
    _create(client, headers, "https://crm-b.example.cn/hooks", ["consent.withdrawn"])
    c = make_customer()
    with clock.frozen(NOON), write_transaction(db):
        for granted in (True, False):
            record_consent(
                db,
                customer_id=c.id,
                purpose=Purpose.marketing_sms,
                granted=granted,
                source="agent",
                actor=Actor.system("test"),
            )
    [row] = _rows(db)
    body = json.loads(row.body)
    assert (row.template, body["event"]) == ("consent.withdrawn", "consent.withdrawn")
    assert body["data"] == {
        "customer_id": c.id,
        "purpose": "marketing_sms",
        "source": "agent",
        "at": "2026-03-02T04:00:00+00:00",
    }
