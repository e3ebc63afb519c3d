"""The e-mail outbox against a real SMTP server (aiosmtpd on 127.0.0.1): queued in the
change's transaction, sent once after commit, retried with back-off, given up on, never
sent twice by two workers, no address in errors."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.notify import outbox, sender
from guanxi.notify.mail import SmtpMailer
from guanxi.notify.models import Notification, OutboxEmail
from guanxi.notify.outbox import BACKOFF, LEASE, MAX_ATTEMPTS, queue_email, send_due
from guanxi.notify.service import notify
from guanxi.security.crypto import cipher
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.integration.notify.smtp import SENDER, SmtpServer, free_port, mailer_for

SUBJECT = "#7 催件：包裹三天未更新（杭州→北京）"
BODY = "客户张先生很着急，请在今天下班前回电。\n第二行：“引号”与表情符号 🚚"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _user(sm: Callable[[], Session], email: str | None) -> int:
    with sm() as s:
        user = create_user(
            s,
            user_in=UserCreate(
                username=f"u{uuid.uuid4().hex[:8]}",
                display_name="张三",
                role="agent",  # type: ignore[arg-type]
                password="longenough1",
                email=email,
            ),
            actor=Actor.system("test"),
        )
        return user.id


def _queue(sm: Callable[[], Session], key: str, to: str, subject: str = SUBJECT) -> bool:
    with sm() as s, write_transaction(s):
        return queue_email(s, key=key, to=to, subject=subject, body=BODY)


def _row(sm: Callable[[], Session], key: str) -> OutboxEmail:
    with sm() as s:
        row = s.scalar(select(OutboxEmail).where(OutboxEmail.key == key))
        assert row is not None
        return row


def _send(sm: Callable[[], Session], mailer: SmtpMailer | None, at: datetime) -> dict[str, int]:
    with clock.frozen(at):
        return send_due(sm, mailer=mailer).figures()


def _figures(**kw: int) -> dict[str, int]:
    return {
        "sent": 0,
        "retrying": 0,
        "failed": 0,
        "skipped": 0,
        "waiting": 0,
        "cancelled": 0,
        "deferred": 0,
        **kw,
    }


def test_notify_sends_after_commit_exactly_once(
    committed_engine: Engine, smtp_server: SmtpServer, mailer: SmtpMailer
) -> None:
    sm = make_sessionmaker(committed_engine)
    uid = _user(sm, "Zhang.San@Example.COM")
    with sm() as s, write_transaction(s):
        added = notify(
            s,
            user_ids=[uid],
            key="sla_breach:7:first_response",
            kind="sla_breach",
            subject=SUBJECT,
            body=BODY,
            link="/tickets/7",
        )
        assert added == 1
        # Not committed yet: another worker sees nothing to send.
        assert send_due(sm, mailer=mailer).figures() == _figures()
        assert smtp_server.messages == []

    assert send_due(sm, mailer=mailer).figures() == _figures(sent=1)
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["Zhang.San@example.com"]
    assert got.mail_from == "desk@guanxi.test"
    msg = got.message
    assert msg["To"] == "Zhang.San@example.com"
    assert msg["From"] == SENDER
    assert msg["Subject"] == SUBJECT
    # Text travels with CRLF line ends (SMTP's canonical form), base64 of UTF-8.
    assert msg.get_content() == f"{BODY}\n\nhttp://127.0.0.1:8000/tickets/7\n".replace("\n", "\r\n")
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "base64"
    row = _row(sm, f"sla_breach:7:first_response:{uid}")
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None

    # Twice more (the worker's next runs, or a second worker): nothing more goes out.
    assert send_due(sm, mailer=mailer).figures() == _figures()
    with sm() as s, write_transaction(s):
        notify(
            s,
            user_ids=[uid],
            key="sla_breach:7:first_response",
            kind="sla_breach",
            subject=SUBJECT,
        )
    assert send_due(sm, mailer=mailer).figures() == _figures()
    assert len(smtp_server.messages) == 1


def test_rolled_back_change_sends_nothing(
    committed_engine: Engine, smtp_server: SmtpServer, mailer: SmtpMailer
) -> None:
    sm = make_sessionmaker(committed_engine)
    uid = _user(sm, "li.si@example.com")

    def failing_change() -> None:
        with sm() as s, write_transaction(s):
            notify(s, user_ids=[uid], key="handover:9:2", kind="ticket_handover", subject="#9")
            raise RuntimeError("the change fails after notifying")

    with pytest.raises(RuntimeError):
        failing_change()
    assert send_due(sm, mailer=mailer).figures() == _figures()
    assert smtp_server.messages == []
    with sm() as s:
        assert s.scalar(select(OutboxEmail.id)) is None
        assert s.scalar(select(Notification.id)) is None


def test_link_uses_the_base_url(
    session_factory: sessionmaker[Session],
    db: Session,
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_BASE_URL", "https://crm.example.cn/")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        user = make_user("agent", email="wang.wu@example.com")
        notify(db, user_ids=[user.id], key="k:1", kind="sla_warning", subject="#1", link="/t/1")
        notify(db, user_ids=[user.id], key="k:2", kind="sla_warning", subject="#2 无正文")
    finally:
        get_settings.cache_clear()
    assert _row(session_factory, f"k:1:{user.id}").body == "https://crm.example.cn/t/1"
    # Neither body nor link: the subject stands in for the body.
    assert _row(session_factory, f"k:2:{user.id}").body == "#2 无正文"


def test_user_without_email_or_inactive_gets_in_app_only(
    session_factory: sessionmaker[Session], db: Session, make_user: Any
) -> None:
    with_mail = make_user("agent", email="a@example.com")
    without = make_user("agent")
    gone = make_user("agent", email="gone@example.com")
    with write_transaction(db):
        db.get_one(type(gone), gone.id).is_active = False
    added = notify(
        db,
        user_ids=[with_mail.id, without.id, gone.id],
        key="sla_warning:3:resolution",
        kind="sla_warning",
        subject="#3",
        link="/tickets/3",
    )
    assert added == 3
    assert sorted(db.scalars(select(Notification.user_id))) == sorted(
        [with_mail.id, without.id, gone.id]
    )
    rows = list(db.execute(select(OutboxEmail.key, OutboxEmail.to_enc)))
    assert [key for key, _ in rows] == [f"sla_warning:3:resolution:{with_mail.id}"]
    # Encrypted at rest: the address is not in the row in clear.
    assert "a@example.com" not in rows[0][1]
    assert cipher().decrypt(outbox.ADDRESS_FIELD, rows[0][1]) == "a@example.com"


def test_queue_email_is_idempotent_by_key(
    session_factory: sessionmaker[Session], db: Session
) -> None:
    with write_transaction(db):
        first = queue_email(db, key="resolution:42", to="c@example.com", subject="已解决", body="x")
        again = queue_email(db, key="resolution:42", to="d@example.com", subject="再次", body="y")
    assert (first, again) == (True, False)
    row = _row(session_factory, "resolution:42")
    assert (row.subject, row.body, row.status, row.attempts) == ("已解决", "x", "pending", 0)
    assert cipher().decrypt(outbox.ADDRESS_FIELD, row.to_enc) == "c@example.com"
    # A line break in a subject would end the header: it becomes a space.
    with write_transaction(db):
        assert queue_email(db, key="k:nl", to="c@example.com", subject="a\r\nBcc: x", body="")
        with pytest.raises(ValueError, match="not an e-mail address"):
            queue_email(db, key="k:bad", to="c@example.com\r\nBcc: x@y.z", subject="s", body="")
    assert _row(session_factory, "k:nl").subject == "a Bcc: x"


def test_server_down_then_back(
    session_factory: sessionmaker[Session], smtp_servers: Callable[[int], SmtpServer]
) -> None:
    port = free_port()  # nobody listens here yet
    mailer = mailer_for(port)
    with clock.frozen(T0):
        _queue(session_factory, "k:down", "zhao.liu@example.com")

    t1 = T0 + timedelta(seconds=5)
    assert _send(session_factory, mailer, t1) == _figures(retrying=1)
    row = _row(session_factory, "k:down")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == t1 + timedelta(minutes=1)
    assert row.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert row.sent_at is None

    # Not due before the back-off has passed.
    assert _send(session_factory, mailer, t1 + timedelta(seconds=59)) == _figures()
    server = smtp_servers(port)
    t2 = t1 + timedelta(minutes=1)
    assert _send(session_factory, mailer, t2) == _figures(sent=1)
    row = _row(session_factory, "k:down")
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, t2)
    [got] = server.messages
    assert got.rcpt_tos == ["zhao.liu@example.com"]
    assert got.message["Subject"] == SUBJECT


def test_gives_up_after_the_last_attempt(session_factory: sessionmaker[Session]) -> None:
    mailer = mailer_for(free_port())
    with clock.frozen(T0):
        _queue(session_factory, "k:never", "nobody@example.com")
    at = T0
    for attempt in range(1, MAX_ATTEMPTS):
        assert _send(session_factory, mailer, at) == _figures(retrying=1)
        row = _row(session_factory, "k:never")
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.next_attempt_at == at + BACKOFF[attempt - 1]
        at = row.next_attempt_at
    assert [b.total_seconds() for b in BACKOFF] == [60, 300, 1800, 7200, 21600]
    assert _send(session_factory, mailer, at) == _figures(failed=1)
    row = _row(session_factory, "k:never")
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert row.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert _send(session_factory, mailer, at + timedelta(days=30)) == _figures()


def test_refused_recipient_keeps_no_address_and_the_batch_goes_on(
    session_factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    mailer: SmtpMailer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_server.collector.refuse.add("ghost.user@example.com")
    with clock.frozen(T0):
        _queue(session_factory, "k:1", "ghost.user@example.com")
        _queue(session_factory, "k:2", "real.user@example.com")
    with caplog.at_level(logging.INFO, logger="guanxi.notify.outbox"):
        assert _send(session_factory, mailer, T0) == _figures(sent=1, retrying=1)
    refused = _row(session_factory, "k:1")
    assert (refused.status, refused.attempts) == ("pending", 1)
    assert refused.last_error == (
        "SMTPRecipientsRefused: 550 5.1.1 <<address>>: Recipient address rejected: User unknown"
    )
    assert _row(session_factory, "k:2").status == "sent"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["real.user@example.com"]]
    assert "@example.com" not in caplog.text
    assert f"outbox message {refused.id}: attempt 1 failed" in caplog.text


def test_a_crashed_workers_claim_is_taken_over_after_the_lease(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, mailer: SmtpMailer
) -> None:
    with clock.frozen(T0):
        _queue(session_factory, "k:crash", "sun.qi@example.com")
    # A worker claims the mail and dies before sending (its claim is all that is left).
    with clock.frozen(T0):
        claim = sender._claim(
            session_factory,
            _row(session_factory, "k:crash").id,
            sender._Batch(T0, None, None, None),
        )
    assert claim is not None
    row = _row(session_factory, "k:crash")
    assert (row.status, row.attempts, row.next_attempt_at) == ("sending", 1, T0 + LEASE)

    # Within the lease nobody else touches it.
    assert _send(session_factory, mailer, T0 + LEASE - timedelta(seconds=1)) == _figures()
    assert _send(session_factory, mailer, T0 + LEASE) == _figures(sent=1)
    row = _row(session_factory, "k:crash")
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_server.messages) == 1


def test_a_crash_during_the_last_attempt_gives_up(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, mailer: SmtpMailer
) -> None:
    with clock.frozen(T0):
        _queue(session_factory, "k:last", "zhou.ba@example.com")
    with session_factory() as s, write_transaction(s):
        s.execute(
            update(OutboxEmail)
            .where(OutboxEmail.key == "k:last")
            .values(status="sending", attempts=MAX_ATTEMPTS, next_attempt_at=T0 + LEASE)
        )
    assert _send(session_factory, mailer, T0 + LEASE) == _figures(failed=1)
    row = _row(session_factory, "k:last")
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert row.last_error == "the worker stopped during the last attempt"
    assert smtp_server.messages == []


def test_email_off_keeps_mails_pending_and_says_so_once(
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guanxi.config import Settings

    assert SmtpMailer.from_settings(Settings(smtp_host="")) is None
    monkeypatch.setattr(sender, "_disabled_logged", set())
    with clock.frozen(T0):
        _queue(session_factory, "k:off", "zhou.ba@example.com")
    with caplog.at_level(logging.WARNING, logger="guanxi.notify.outbox"):
        assert _send(session_factory, None, T0) == _figures(waiting=1)
        assert _send(session_factory, None, T0 + timedelta(minutes=1)) == _figures(waiting=1)
    assert caplog.text.count("e-mail is off") == 1
    row = _row(session_factory, "k:off")
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)


def test_two_concurrent_senders_never_send_one_mail_twice(
    committed_engine: Engine, smtp_server: SmtpServer, mailer: SmtpMailer
) -> None:
    sm = make_sessionmaker(committed_engine)
    count = 40
    for n in range(count):
        _queue(sm, f"k:{n}", f"user{n}@example.com", subject=f"第{n}封")
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def gated() -> Callable[[], Session]:
        # Both workers read the same due list before either claims anything.
        calls = 0

        def factory() -> Session:
            nonlocal calls
            calls += 1
            if calls == 2:
                barrier.wait(timeout=30)
            return sm()

        return factory

    def worker() -> None:
        try:
            results.append(send_due(gated(), mailer=mailer).figures())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(r["sent"] for r in results) == count
    assert sum(r["skipped"] for r in results) == count
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter(f"user{n}@example.com" for n in range(count))
    assert len({m.message["Message-ID"] for m in smtp_server.messages}) == count
    with sm() as s:
        assert Counter(s.scalars(select(OutboxEmail.status))) == Counter({"sent": count})
        assert set(s.scalars(select(OutboxEmail.attempts))) == {1}
