"""Retention through the JSON API, the pages, the CLI and the worker: permissions per role,
bad input answered 422 naming the field with nothing changed, the report page and its
CSV download, the daily job once per local day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.privacy import retention
from guanxi.privacy.retention_models import RetentionPolicy, RetentionRun
from guanxi.security.models import UserToken
from tests.conftest import PASSWORD, settings_for


def _web_login(client: Any, user: Any) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def _keep_days(db: Session, category: str) -> int:
    db.expire_all()
    query = select(RetentionPolicy.keep_days).where(RetentionPolicy.category == category)
    return int(db.scalar(query) or 0)


def _runs(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(RetentionRun)) or 0)


@pytest.mark.parametrize(
    ("role", "read", "manage"),
    [
        ("agent", 403, 403),
        ("sales", 403, 403),
        ("analyst", 403, 403),
        ("manager", 200, 403),
        ("auditor", 200, 403),
        ("privacy_officer", 200, 200),
        ("admin", 200, 200),
    ],
)
def test_permissions_per_role(
    client: Any, login: Any, db: Session, role: str, read: int, manage: int
) -> None:
    _user, headers = login(role)
    assert client.get("/api/v1/privacy/retention/policies", headers=headers).status_code == read
    assert client.get("/api/v1/privacy/retention/runs", headers=headers).status_code == read
    preview = client.post("/api/v1/privacy/retention/preview", headers=headers)
    assert preview.status_code == (201 if read == 200 else 403)
    put = client.put(
        "/api/v1/privacy/retention/policies/import_files",
        json={"keep_days": 5, "enabled": True},
        headers=headers,
    )
    assert put.status_code == manage
    assert _keep_days(db, "import_files") == (5 if manage == 200 else 7)
    run = client.post("/api/v1/privacy/retention/run", headers=headers)
    assert run.status_code == (201 if manage == 200 else 403)
    assert _runs(db) == (1 if read == 200 else 0) + (1 if manage == 200 else 0)
    processing = client.get("/api/v1/privacy/processing?format=csv", headers=headers)
    assert processing.status_code == read


def test_anonymous_requests_are_refused(client: Any) -> None:
    assert client.get("/api/v1/privacy/retention/policies").status_code == 401
    assert client.post("/api/v1/privacy/retention/run").status_code == 401


def test_bad_input_is_refused_naming_the_field(client: Any, login: Any, db: Session) -> None:
    _user, headers = login("privacy_officer")
    url = "/api/v1/privacy/retention/policies/archived_customers"
    for body, code in (
        ({"keep_days": 30}, "retention_too_short"),
        ({"keep_days": 5000}, "retention_too_long"),
        ({"keep_days": "abc"}, "int_parsing"),
        ({"keep_days": -1}, "greater_than_equal"),
        ({}, "missing"),
        ({"keep_days": 400, "extra": 1}, "extra_forbidden"),
    ):
        resp = client.put(url, json=body, headers=headers)
        assert resp.status_code == 422, resp.text
        fields = {e["field"]: e["code"] for e in resp.json()["errors"]}
        assert code in fields.values(), (body, fields)
        assert ("keep_days" in fields) or ("extra" in fields), fields
    assert _keep_days(db, "archived_customers") == 1095
    assert (
        client.put(
            "/api/v1/privacy/retention/policies/unknown", json={"keep_days": 30}, headers=headers
        ).status_code
        == 404
    )
    assert client.get("/api/v1/privacy/retention/runs/99999", headers=headers).status_code == 404
    ok = client.put(url, json={"keep_days": 730, "enabled": False}, headers=headers)
    assert ok.status_code == 200
    assert (ok.json()["keep_days"], ok.json()["enabled"], ok.json()["min_days"]) == (
        730,
        False,
        365,
    )
    assert _keep_days(db, "archived_customers") == 730


def test_a_run_through_the_api_and_its_report(
    client: Any, login: Any, db: Session, make_user: Any
) -> None:
    officer, headers = login("privacy_officer")
    old = clock.now() - timedelta(days=40)
    db.add(UserToken(user_id=officer.id, kind="web", token_hash="f" * 64, created_at=old,
                     expires_at=old + timedelta(hours=12)))  # fmt: skip
    db.commit()
    preview = client.post("/api/v1/privacy/retention/preview", headers=headers).json()
    assert preview["dry_run"] is True
    tokens = next(r for r in preview["report"] if r["category"] == "sessions_tokens")
    assert (tokens["rows"], tokens["keep_days"], tokens["finished"]) == (1, 30, True)
    run = client.post("/api/v1/privacy/retention/run", headers=headers).json()
    assert (run["dry_run"], run["status"], run["trigger"], run["actor_name"]) == (
        False, "done", "api", officer.username,
    )  # fmt: skip
    tokens = next(r for r in run["report"] if r["category"] == "sessions_tokens")
    assert tokens["rows"] == 1
    listed = client.get("/api/v1/privacy/retention/runs", headers=headers).json()
    assert [r["id"] for r in listed] == [run["id"], preview["id"]]
    csv = client.get(f"/api/v1/privacy/retention/runs/{run['id']}/report.csv", headers=headers)
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == f'attachment; filename="retention-{run["id"]}.csv"'
    assert csv.text.splitlines()[0] == ",".join(retention.CSV_HEADER)
    assert len(csv.text.splitlines()) == 1 + len(retention.CATEGORIES)


def test_the_retention_page_per_role_and_the_policy_form(
    client: Any, make_user: Any, db: Session
) -> None:
    auditor = make_user("auditor")
    _web_login(client, auditor)
    page = client.get("/privacy/retention")
    assert page.status_code == 200
    assert "保存期限与清理" in page.text
    assert 'action="/privacy/retention/run"' not in page.text  # auditors cannot purge
    assert 'action="/privacy/retention/preview"' in page.text
    assert "审计日志" in page.text
    assert "尚未运行过清理。" in page.text
    client.cookies.clear()
    officer = make_user("privacy_officer")
    csrf = _web_login(client, officer)
    page = client.get("/privacy/retention")
    assert 'action="/privacy/retention/run"' in page.text
    refused = client.post(
        "/privacy/retention/policies/call_recordings",
        data={"keep_days": "5", "enabled": "on", "csrf_token": csrf},
    )
    assert refused.status_code == 422
    assert "此类别至少保存 30 天" in refused.text
    assert _keep_days(db, "call_recordings") == 365
    saved = client.post(
        "/privacy/retention/policies/call_recordings",
        data={"keep_days": "180", "enabled": "on", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/privacy/retention?saved=call_recordings"
    assert _keep_days(db, "call_recordings") == 180
    ran = client.post("/privacy/retention/run", data={"csrf_token": csrf}, follow_redirects=False)
    assert ran.status_code == 303
    run_id = db.scalar(select(func.max(RetentionRun.id)))
    assert ran.headers["location"] == f"/privacy/retention?run={run_id}"
    report = client.get(ran.headers["location"])
    assert f'href="/privacy/retention/runs/{run_id}/report.csv"' in report.text
    assert "下载 CSV" in report.text
    download = client.get(f"/privacy/retention/runs/{run_id}/report.csv")
    assert download.status_code == 200
    assert download.text.splitlines()[0] == ",".join(retention.CSV_HEADER)


def test_agents_cannot_open_the_pages(client: Any, make_user: Any) -> None:
    _web_login(client, make_user("agent"))
    assert client.get("/privacy/retention").status_code == 403
    assert client.get("/privacy/processing").status_code == 403


def test_the_daily_job_purges_once_per_local_day(db: Session, engine: Any, tmp_path: Any) -> None:
    settings = settings_for(engine.url.render_as_string(hide_password=False), tmp_path)
    morning = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    with clock.frozen(morning):
        first = retention.daily_purge(db, settings=settings, now=morning)
    assert first["ran"] is True
    with clock.frozen(morning + timedelta(hours=10)):  # 19:00, the same local day
        assert retention.daily_purge(db, settings=settings, now=morning + timedelta(hours=10)) == {
            "ran": False
        }
    nextday = morning + timedelta(hours=16)  # 01:00 the next local day
    with clock.frozen(nextday):
        assert retention.daily_purge(db, settings=settings, now=nextday)["ran"] is True
    assert _runs(db) == 2
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.action == "retention.purged"))
    assert len(list(actions)) == 2


def test_the_worker_lists_the_job() -> None:
    from guanxi.worker import JOBS

    assert ("retention_daily", 3600) in [(name, every) for name, _job, every in JOBS]
