"""Marketing e-mail carries an unsubscribe link and the one-click headers; the public page
confirms and withdraws the consent; a later marketing mail is cancelled; a tampered link
gets a friendly refusal. Against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, grant_many, is_allowed
from guanxi.customers.models import CustomerConsentEvent
from guanxi.notify.mail import SmtpMailer
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from guanxi.notify.sender import send_due
from guanxi.notify.unsubscribe import make_token, unsubscribe_url
from tests.integration.notify.smtp import SmtpServer

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
EN = {"Accept-Language": "en"}


def _offer(db: Session, key: str, customer_id: int) -> None:
    with clock.frozen(NOON), write_transaction(db):
        queue_messages(
            db,
            [
                Outbound(
                    key=key,
                    channel=Channel.email,
                    category=Category.marketing,
                    customer_id=customer_id,
                    subject="老客户专享：运费八折",
                    body="尊敬的客户，感谢您一直以来的支持。",
                    source="care:3",
                )
            ],
        )


def test_the_link_in_a_marketing_mail_unsubscribes(
    app: Any,
    client: Any,
    db: Session,
    session_factory: sessionmaker[Session],
    make_customer: Any,
    smtp_server: SmtpServer,
    mailer: SmtpMailer,
) -> None:
    c = make_customer(email="wang.wu@example.cn")
    with write_transaction(db):
        grant_many(db, [c.id], [Purpose.marketing_email], source="web", at=NOON)
    _offer(db, "offer:1", c.id)
    with clock.frozen(NOON):
        assert send_due(session_factory, mailer=mailer).figures()["sent"] == 1
    [got] = smtp_server.messages
    msg = got.message
    url = unsubscribe_url(c.id, Purpose.marketing_email)
    assert url.startswith("http://127.0.0.1:8000/u/")
    assert msg["List-Unsubscribe"] == f"<{url}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_content().replace("\r\n", "\n")
    assert text == (
        f"尊敬的客户，感谢您一直以来的支持。\n\n——\n如不想再收到此类邮件，请点击退订：{url}\n"
    )
    path = re.sub(r"^https?://[^/]+", "", url)

    page = client.get(path, headers=EN)
    assert page.status_code == 200
    assert "Stop receiving messages for: Marketing by e-mail?" in page.text
    assert 'id="unsub-form"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    done = client.post(path, headers=EN)
    assert done.status_code == 200
    assert "We will not contact you again for: Marketing by e-mail." in done.text
    assert is_allowed(db, c.id, Purpose.marketing_email) is False
    [event] = db.scalars(select(CustomerConsentEvent)).all()[-1:]
    assert (event.purpose, event.granted, event.source, event.actor_name) == (
        "marketing_email",
        False,
        "email_link",
        "unsubscribe link",
    )
    # Again: nothing new is recorded; the page says it is done.
    again = client.get(path, headers=EN)
    assert "You are unsubscribed" in again.text
    assert client.post(path, headers=EN).status_code == 200
    assert (
        len(
            db.scalars(
                select(CustomerConsentEvent).where(CustomerConsentEvent.granted.is_(False))
            ).all()
        )
        == 1
    )

    _offer(db, "offer:2", c.id)
    with clock.frozen(NOON + timedelta(days=1)):
        assert send_due(session_factory, mailer=mailer).figures()["cancelled"] == 1
    row = db.scalar(select(OutboxMessage).where(OutboxMessage.key == "offer:2"))
    assert row is not None
    db.refresh(row)
    assert (row.status, row.last_error) == ("cancelled", "consent withdrawn")
    assert len(smtp_server.messages) == 1


def test_one_click_and_tampered_links(client: Any, db: Session, make_customer: Any) -> None:
    c = make_customer(email="li@example.cn", phones=["13912345678"])
    with write_transaction(db):
        grant_many(
            db, [c.id], [Purpose.marketing_sms, Purpose.marketing_email], source="web", at=NOON
        )
    token = make_token(c.id, Purpose.marketing_sms)
    # A mail client's RFC 8058 one-click POST.
    resp = client.post(
        f"/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200
    assert is_allowed(db, c.id, Purpose.marketing_sms) is False
    assert is_allowed(db, c.id, Purpose.marketing_email) is True

    other = make_token(c.id + 1, Purpose.marketing_email)
    tampered = [token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "garbage", other]
    for bad in tampered:
        page = client.get(f"/u/{bad}", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 404
        assert 'id="unsub-refused"' in page.text
        assert client.post(f"/u/{bad}", headers=EN).status_code == 404
    assert is_allowed(db, c.id, Purpose.marketing_email) is True
    english = client.get("/u/garbage?lang=en")
    assert "This link does not work" in english.text
