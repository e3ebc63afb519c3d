"""SMS through gateways shaped like Aliyun Dysmsapi and Tencent Cloud SMS, against local
fakes that check the signatures as the real services do: accepted once each, transient
errors retried with back-off, permanent ones failed at once, two senders never send one
message twice; the file gateway writes masked lines."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import BACKOFF, Category, Channel, Outbound, queue_messages
from guanxi.notify.sender import send_due
from guanxi.notify.sms.aliyun import AliyunSms
from guanxi.notify.sms.local import FileSms
from guanxi.notify.sms.templates import save_template
from guanxi.notify.sms.tencent import TencentSms
from tests.integration.notify import fakes

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.fixture
def aliyun_fake() -> Iterator[fakes.FakeServer]:
    with fakes.serve("aliyun") as server:
        yield server


@pytest.fixture
def tencent_fake() -> Iterator[fakes.FakeServer]:
    with fakes.serve("tencent") as server:
        yield server


def aliyun(server: fakes.FakeServer, secret: str = fakes.ALIYUN_SECRET) -> AliyunSms:
    return AliyunSms(
        access_key_id=fakes.ALIYUN_KEY_ID,
        access_key_secret=secret,
        default_sign="关系客服",
        endpoint=server.url,
        timeout=5,
    )


def tencent(server: fakes.FakeServer) -> TencentSms:
    return TencentSms(
        secret_id=fakes.TENCENT_ID,
        secret_key=fakes.TENCENT_KEY,
        app_id=fakes.TENCENT_APP,
        default_sign="关系客服",
        endpoint=server.url,
        timeout=5,
    )


def _customer(sm: Callable[[], Session], phone: str, name: str = "张先生", **kw: Any) -> int:
    with sm() as s:
        return create_customer(
            s, customer_in=CustomerCreate(name=name, phones=[phone], **kw), actor=Actor.system("t")
        ).id


def _register_provider_ids(sm: Callable[[], Session]) -> None:
    """The administrator enters the approved template ids of both providers."""
    with sm() as s:
        save_template(
            s,
            code="survey_invite",
            values={
                "name": "Survey invitation",
                "category": "service",
                "sign": "",
                "aliyun_template": "SMS_900001",
                "tencent_template": "1900001",
                "text_zh": "您好，请在{days}天内评价本次服务：{link}",
                "text_en": "Hello, please rate our service within {days} days: {link}",
                "param_order": ["days", "link"],
                "active": True,
            },
            actor=Actor.system("test"),
        )


def _queue(sm: Callable[[], Session], keys_customers: list[tuple[str, int]], **kw: Any) -> None:
    with sm() as s, write_transaction(s):
        queue_messages(
            s,
            [
                Outbound(
                    key=key,
                    channel=Channel.sms,
                    category=kw.get("category", Category.service),
                    customer_id=cid,
                    template=kw.get("template", "survey_invite"),
                    params={"days": "7", "link": f"https://g.cn/v/{key}"},
                    source="survey:1",
                )
                for key, cid in keys_customers
            ],
        )


def _row(sm: Callable[[], Session], key: str) -> OutboxMessage:
    with sm() as s:
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
        assert row is not None
        return row


def test_aliyun_transient_error_is_retried_and_each_text_accepted_once(
    session_factory: sessionmaker[Session], aliyun_fake: fakes.FakeServer
) -> None:
    sm = session_factory
    _register_provider_ids(sm)
    a = _customer(sm, "13912345678")
    b = _customer(sm, "+86 137-0000-1111", name="李女士")
    with clock.frozen(NOON):
        _queue(sm, [("inv:a", a), ("inv:b", b)])
    aliyun_fake.recorder.script.append(
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发流控 13912345678"})
    )
    gateway = aliyun(aliyun_fake)
    with clock.frozen(NOON):
        first = send_due(sm, sms=gateway).figures()
    assert (first["sent"], first["retrying"], first["failed"]) == (1, 1, 0)
    throttled = _row(sm, "inv:a")
    assert (throttled.status, throttled.attempts) == ("pending", 1)
    assert throttled.next_attempt_at == NOON + BACKOFF[0]
    # The provider quoted the number; our record does not.
    assert throttled.last_error == (
        "TransientSmsError: isv.BUSINESS_LIMIT_CONTROL: 触发流控 <number>"
    )
    with clock.frozen(NOON + BACKOFF[0]):
        assert send_due(sm, sms=gateway).figures()["sent"] == 1
        assert send_due(sm, sms=gateway).figures()["sent"] == 0
    accepted = aliyun_fake.recorder.accepted
    assert Counter(a["out_id"] for a in accepted) == Counter({"inv:a": 1, "inv:b": 1})
    by_key = {a["out_id"]: a for a in accepted}
    assert by_key["inv:a"]["phone"] == "13912345678"
    assert by_key["inv:b"]["phone"] == "13700001111"
    assert by_key["inv:a"]["template"] == "SMS_900001"
    assert by_key["inv:a"]["sign"] == "关系客服"
    assert by_key["inv:a"]["params"] == {"days": "7", "link": "https://g.cn/v/inv:a"}
    row = _row(sm, "inv:a")
    assert (row.status, row.attempts, row.provider_id) == ("sent", 2, by_key["inv:a"]["biz_id"])
    assert row.sent_at == NOON + BACKOFF[0]
    assert aliyun_fake.recorder.rejected_signatures == 0


def test_aliyun_permanent_error_fails_at_once(
    session_factory: sessionmaker[Session], aliyun_fake: fakes.FakeServer
) -> None:
    sm = session_factory
    _register_provider_ids(sm)
    a = _customer(sm, "13912345678")
    with clock.frozen(NOON):
        _queue(sm, [("inv:bad", a)])
    aliyun_fake.recorder.script.append(
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})
    )
    with clock.frozen(NOON):
        assert send_due(sm, sms=aliyun(aliyun_fake)).figures()["failed"] == 1
    row = _row(sm, "inv:bad")
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        1,
        "PermanentSmsError: isv.MOBILE_NUMBER_ILLEGAL: 非法手机号",
    )
    with clock.frozen(NOON + timedelta(days=1)):
        assert send_due(sm, sms=aliyun(aliyun_fake)).figures()["sent"] == 0
    assert aliyun_fake.recorder.accepted == []


def test_a_wrong_secret_is_refused_by_the_fake_and_retried(
    session_factory: sessionmaker[Session], aliyun_fake: fakes.FakeServer
) -> None:
    sm = session_factory
    _register_provider_ids(sm)
    a = _customer(sm, "13912345678")
    with clock.frozen(NOON):
        _queue(sm, [("inv:key", a)])
        assert send_due(sm, sms=aliyun(aliyun_fake, secret="wrong")).figures()["retrying"] == 1
    assert aliyun_fake.recorder.rejected_signatures == 1
    assert _row(sm, "inv:key").last_error == (
        "TransientSmsError: SignatureDoesNotMatch: bad signature"
    )


def test_tencent_sends_parameters_in_template_order(
    session_factory: sessionmaker[Session], tencent_fake: fakes.FakeServer
) -> None:
    sm = session_factory
    _register_provider_ids(sm)
    a = _customer(sm, "13912345678")
    b = _customer(sm, "13700001111")
    c = _customer(sm, "13600002222")
    with clock.frozen(NOON):
        _queue(sm, [("t:a", a), ("t:b", b), ("t:c", c)])
    tencent_fake.recorder.script.append(
        (200, {"Response": {"SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
                                                "Message": "too often"}]}})
    )  # fmt: skip
    tencent_fake.recorder.script.append(
        (200, {"Response": {"Error": {"Code": "InvalidParameterValue.IncorrectPhoneNumber",
                                      "Message": "bad number"}}})
    )  # fmt: skip
    gateway = tencent(tencent_fake)
    with clock.frozen(NOON):
        figures = send_due(sm, sms=gateway).figures()
    assert (figures["sent"], figures["retrying"], figures["failed"]) == (1, 1, 1)
    assert (_row(sm, "t:a").status, _row(sm, "t:b").status, _row(sm, "t:c").status) == (
        "pending",
        "failed",
        "sent",
    )
    [accepted] = tencent_fake.recorder.accepted
    assert accepted == {
        "phone": "+8613600002222",
        "app": fakes.TENCENT_APP,
        "sign": "关系客服",
        "template": "1900001",
        "params": ["7", "https://g.cn/v/t:c"],
        "out_id": "t:c",
        "serial": "serial-0001",
    }
    assert _row(sm, "t:c").provider_id == "serial-0001"
    assert tencent_fake.recorder.rejected_signatures == 0


def test_a_template_without_the_providers_id_or_unknown_fails_without_calling(
    session_factory: sessionmaker[Session], aliyun_fake: fakes.FakeServer
) -> None:
    sm = session_factory
    a = _customer(sm, "13912345678")
    with clock.frozen(NOON):
        _queue(sm, [("no-id", a)])  # survey_invite built in: no Aliyun id yet
        _queue(sm, [("unknown", a)], template="no_such_template")
        assert send_due(sm, sms=aliyun(aliyun_fake)).figures()["failed"] == 2
    assert _row(sm, "no-id").last_error == "template survey_invite has no aliyun template id"
    assert _row(sm, "unknown").last_error == "template missing: no_such_template"
    assert aliyun_fake.recorder.accepted == []


def test_a_customer_without_a_mobile_is_cancelled(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sm = session_factory
    landline = _customer(sm, "0571-88881234")
    with clock.frozen(NOON):
        _queue(sm, [("landline", landline)])
        figures = send_due(sm, sms=FileSms(tmp_path / "sms.jsonl", default_sign="关系")).figures()
    assert figures["cancelled"] == 1
    row = _row(sm, "landline")
    assert (row.status, row.attempts, row.last_error) == ("cancelled", 0, "no mobile number")


def test_the_file_gateway_writes_one_masked_line_per_text(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sm = session_factory
    a = _customer(sm, "13912345678", language="en")
    with clock.frozen(NOON):
        _queue(sm, [("file:a", a)])
        send_due(sm, sms=FileSms(tmp_path / "sms" / "out.jsonl", default_sign="关系客服"))
    [line] = (tmp_path / "sms" / "out.jsonl").read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["phone"] == "139****5678"
    assert entry["out_id"] == "file:a"
    assert entry["template"] == "survey_invite"
    # The customer reads English: the built-in English text, filled in.
    assert entry["text"] == (
        "【关系客服】Hello, thank you for choosing us. Please rate our service within 7 days: "
        "https://g.cn/v/file:a"
    )
    assert _row(sm, "file:a").provider_id == entry["id"]


def test_two_concurrent_senders_send_each_text_once(
    committed_engine: Engine, aliyun_fake: fakes.FakeServer
) -> None:
    sm = make_sessionmaker(committed_engine)
    _register_provider_ids(sm)
    ids = [_customer(sm, f"1391234{n:04d}", name=f"客户{n}") for n in range(24)]
    # At noon: outside the quiet hours whatever the wall clock says.
    with clock.frozen(NOON):
        _queue(sm, [(f"c:{n}", cid) for n, cid in enumerate(ids)])
    aliyun_fake.recorder.delay = 0.01
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def gated() -> Callable[[], Session]:
        calls = 0

        def factory() -> Session:
            nonlocal calls
            calls += 1
            if calls == 2:  # both have read the same due list
                barrier.wait(timeout=30)
            return sm()

        return factory

    def worker() -> None:
        try:
            results.append(send_due(gated(), sms=aliyun(aliyun_fake), now=NOON).figures())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(r["sent"] for r in results) == 24
    assert sum(r["skipped"] for r in results) == 24
    assert Counter(a["out_id"] for a in aliyun_fake.recorder.accepted) == Counter(
        {f"c:{n}": 1 for n in range(24)}
    )
    with sm() as s:
        assert Counter(s.scalars(select(OutboxMessage.status))) == Counter({"sent": 24})
