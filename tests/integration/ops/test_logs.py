"""Structured logs: one JSON access line per request with the route template and request
id, stdlib loggers through the same pipeline, exceptions without their messages, and the
redaction of anything shaped like personal data."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from guanxi.config import Environment, Settings
from guanxi.core import logs


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 13912345678 now", "call [phone] now"),
        ("+86 139 1234 5678", "[phone]"),
        ("86-13912345678;", "[phone];"),
        ("139-1234-5678", "[phone]"),
        ("mail zsf@example.cn.", "mail [email]."),
        ("id 11010519491231002X ok", "id [id-number] ok"),
        ("uscc 91350100M000100Y43", "uscc [uscc]"),
        # Not personal data: longer digit runs, request ids, waybills, times.
        ("order 139123456789012", "order 139123456789012"),
        ("rid 0f1e2d3c4b5a69788796a5b4c3d2e1f0", "rid 0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
        ("waybill SF7700012345", "waybill SF7700012345"),
        ("2026-11-26T10:15:20.123456Z", "2026-11-26T10:15:20.123456Z"),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert logs.redact(text) == expected


def test_redaction_reaches_nested_values() -> None:
    event = {"event": "x", "who": {"phones": ["13912345678"], "n": 3}, "e": ("a@b.cn",)}
    assert logs.redact_processor(None, "info", event) == {
        "event": "x",
        "who": {"phones": ["[phone]"], "n": 3},
        "e": ["[email]"],
    }


def test_one_access_line_per_request(
    captured_logs: io.StringIO, client: Any, login: Any, make_customer: Any
) -> None:
    user, headers = login("agent")
    customer = make_customer(name="日志客户")
    captured_logs.truncate(0)
    captured_logs.seek(0)
    resp = client.get(
        f"/api/v1/customers/{customer.id}?q=13912345678",
        headers={**headers, "X-Request-ID": "req-access-1"},
    )
    assert resp.status_code == 200
    access = [line for line in _lines(captured_logs) if line["logger"] == "guanxi.access"]
    assert len(access) == 1
    line = access[0]
    assert set(line) == {
        "event",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "user_id",
        "level",
        "logger",
        "timestamp",
    }
    keys = ("event", "request_id", "method", "route", "status", "user_id")
    assert {k: line[k] for k in keys} == {
        "event": "request",
        "request_id": "req-access-1",
        "method": "GET",
        "route": "/api/v1/customers/{customer_id}",
        "status": 200,
        "user_id": user.id,
    }
    assert line["level"] == "info"
    assert line["duration_ms"] >= 0
    assert line["timestamp"].endswith("Z")
    assert "13912345678" not in captured_logs.getvalue()
    # Anonymous: no user id.
    client.get("/login?next=/customers", headers={"X-Request-ID": "req-access-2"})
    anon = [line for line in _lines(captured_logs) if line.get("request_id") == "req-access-2"]
    assert [(a["route"], a["status"], a["user_id"]) for a in anon] == [("/login", 200, None)]


def test_a_crash_is_logged_with_its_request_id_type_and_frames_only(
    captured_logs: io.StringIO, app: Any
) -> None:
    @app.get("/test-crash-log")
    def crash() -> None:
        raise RuntimeError("secret value 张三丰 13912345678")

    with TestClient(app) as c:
        resp = c.get("/test-crash-log", headers={"X-Request-ID": "req-crash"})
    assert resp.status_code == 500
    lines = [line for line in _lines(captured_logs) if line.get("request_id") == "req-crash"]
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("guanxi.web", "unhandled RuntimeError"),
        ("guanxi.access", "request"),
    ]
    crash_line = lines[0]
    assert crash_line["level"] == "error"
    assert crash_line["exception"] == "builtins.RuntimeError"
    assert crash_line["stack"][-1].endswith(" crash")
    assert "张三丰" not in captured_logs.getvalue()
    assert "secret value" not in captured_logs.getvalue()
    assert lines[1]["status"] == 500


def test_stdlib_loggers_share_the_pipeline(captured_logs: io.StringIO) -> None:
    from guanxi.core.context import request_id

    token = request_id.set("req-stdlib")
    try:
        logging.getLogger("guanxi.worker").info("sent to %s", "a@b.cn")
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    finally:
        request_id.reset(token)
    lines = _lines(captured_logs)
    assert [(x["logger"], x["event"], x["request_id"]) for x in lines] == [
        ("guanxi.worker", "sent to [email]", "req-stdlib"),
        ("uvicorn.error", "Started server process [42]", "req-stdlib"),
    ]


def test_noisy_loggers_stay_quiet_at_debug(captured_logs: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    # SQLAlchemy's engine logs statements with their parameters at INFO; httpx each URL.
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    uvicorn_access = logging.getLogger("uvicorn.access")
    assert uvicorn_access.propagate is False
    assert uvicorn_access.handlers == []
    assert logging.getLogger("guanxi").isEnabledFor(logging.DEBUG)


def test_console_format_in_development(log_settings: Settings) -> None:
    log_settings.log_format = "auto"
    log_settings.env = Environment.development
    assert logs.wants_json(log_settings) is False
    log_settings.env = Environment.production
    assert logs.wants_json(log_settings) is True
    log_settings.log_format = "console"
    assert logs.wants_json(log_settings) is False
    buffer = io.StringIO()
    handler = logs.make_handler(json_lines=False, stream=buffer)
    record = logging.LogRecord("guanxi.x", logging.WARNING, __file__, 1, "to %s", ("a@b.cn",), None)
    handler.handle(record)
    text = buffer.getvalue()
    assert "to [email]" in text
    assert "warning" in text
    assert not text.startswith("{")
