"""The worker's outbox job: ``guanxi worker --once`` sends what is due, and a second run
sends nothing more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.notify.models import OutboxEmail
from guanxi.notify.outbox import Category, Channel, Outbound, queue_email, queue_messages
from guanxi.worker import JOBS
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY
from tests.integration.notify.smtp import SmtpServer


def test_the_outbox_job_runs_every_30_seconds() -> None:
    assert [(name, every) for name, _job, every in JOBS if name == "outbox"] == [("outbox", 30)]


def test_worker_once_sends_and_a_second_run_sends_nothing(
    committed_engine: Engine,
    smtp_server: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guanxi.cli import app
    from guanxi.config import get_settings

    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        customer = create_customer(
            s,
            customer_in=CustomerCreate(name="钱九", phones=["13912345678"]),
            actor=Actor.system("t"),
        )
    with sm() as s, write_transaction(s):
        queue_email(
            s, key="resolution:88", to="qian.jiu@example.com", subject="您的投诉已解决", body="谢谢"
        )
        # A text through the embedded gateway (a file under the data directory).
        queue_messages(
            s,
            [
                Outbound(
                    key="survey:88",
                    channel=Channel.sms,
                    category=Category.transactional,
                    customer_id=customer.id,
                    template="survey_invite",
                    params={"days": "7", "link": "https://g.cn/v/88"},
                )
            ],
        )
    for name, value in {
        "GUANXI_DATABASE_URL": committed_engine.url.render_as_string(hide_password=False),
        "GUANXI_ENV": "test",
        "GUANXI_DATA_DIR": str(tmp_path),
        "GUANXI_FIELD_KEYS": json.dumps({"t1": TEST_FIELD_KEY}),
        "GUANXI_ACTIVE_FIELD_KEY": "t1",
        "GUANXI_BLIND_INDEX_KEY": TEST_BLIND_KEY,
        "GUANXI_SECRET_KEY": "test-secret",
        "GUANXI_SMTP_HOST": "127.0.0.1",
        "GUANXI_SMTP_PORT": str(smtp_server.port),
        "GUANXI_MAIL_FROM": "desk@guanxi.test",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    outcomes: list[Any] = []
    try:
        for _ in range(2):
            out = CliRunner().invoke(app, ["worker", "--once"])
            assert out.exit_code == 0, out.output
            outcomes.append(json.loads(out.stdout.strip().splitlines()[-1])["outbox"])
    finally:
        get_settings.cache_clear()
    nothing = {
        "sent": 0,
        "retrying": 0,
        "failed": 0,
        "skipped": 0,
        "waiting": 0,
        "cancelled": 0,
        "deferred": 0,
    }
    assert outcomes == [{**nothing, "sent": 2}, nothing]
    [line] = (tmp_path / "sms" / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["out_id"] == "survey:88"
    assert json.loads(line)["phone"] == "139****5678"
    [got] = smtp_server.messages
    assert (got.rcpt_tos, got.message["Subject"]) == (["qian.jiu@example.com"], "您的投诉已解决")
    with sm() as s:
        assert list(s.scalars(select(OutboxEmail.status))) == ["sent", "sent"]
