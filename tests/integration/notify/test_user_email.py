"""Administrators set a user's e-mail address (API and CLI); a bad address is a field error
in the user's language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from guanxi.audit.models import AuditEntry
from guanxi.core.db import make_sessionmaker
from guanxi.security.models import User
from tests.conftest import PASSWORD, TEST_BLIND_KEY, TEST_FIELD_KEY

NEW_USER = {"display_name": "王五", "role": "agent", "password": "longenough1"}


def test_create_and_change_a_users_email(client: Any, login: Any, db: Session) -> None:
    _, headers = login("admin")
    resp = client.post(
        "/api/v1/users",
        json={**NEW_USER, "username": "wangwu", "email": " Wang.Wu@Example.COM "},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["email"] == "Wang.Wu@example.com"
    uid = created["id"]

    resp = client.patch(
        f"/api/v1/users/{uid}", json={"email": "ww@xn--fiq228c.cn"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    # An internationalised domain is stored in its ASCII form (any relay takes it).
    resp = client.patch(f"/api/v1/users/{uid}", json={"email": "ww@中文.cn"}, headers=headers)
    assert resp.json()["email"] == "ww@xn--fiq228c.cn"
    resp = client.patch(f"/api/v1/users/{uid}", json={"display_name": "王五五"}, headers=headers)
    assert (resp.json()["display_name"], resp.json()["email"]) == ("王五五", "ww@xn--fiq228c.cn")
    resp = client.patch(f"/api/v1/users/{uid}", json={"email": None}, headers=headers)
    assert resp.json()["email"] is None
    user = db.get_one(User, uid)
    db.refresh(user)
    assert (user.email, user.display_name) == (None, "王五五")

    changes = [
        (e.before, e.after)
        for e in db.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "user.updated", AuditEntry.target_id == str(uid))
            .order_by(AuditEntry.id)
        )
    ]
    # Addresses in the audit log are masked; a repeated value changes nothing.
    assert changes == [
        ({"email": "W***@example.com"}, {"email": "w***@xn--fiq228c.cn"}),
        ({"display_name": "王五"}, {"display_name": "王五五"}),
        ({"email": "w***@xn--fiq228c.cn"}, {"email": None}),
    ]


@pytest.mark.parametrize(
    ("lang", "message"),
    [("en", "Not a valid e-mail address"), ("zh-CN", "电子邮箱地址无效")],
)
@pytest.mark.parametrize(
    "address", ["not-an-address", "a@b@c.cn", "张三@example.cn", "x@localhost"]
)
def test_a_bad_address_names_the_field(
    client: Any, login: Any, db: Session, lang: str, message: str, address: str
) -> None:
    admin, headers = login("admin")
    headers = {**headers, "Accept-Language": lang}
    resp = client.post(
        "/api/v1/users", json={**NEW_USER, "username": "bad", "email": address}, headers=headers
    )
    assert resp.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("email", "email_invalid", message)
    ]
    assert db.scalar(select(User.id).where(User.username == "bad")) is None
    resp = client.patch(f"/api/v1/users/{admin.id}", json={"email": address}, headers=headers)
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [("email", message)]
    resp = client.patch(f"/api/v1/users/{admin.id}", json={"display_name": None}, headers=headers)
    assert [e["code"] for e in resp.json()["errors"]] == ["null_not_allowed"]


def test_only_administrators_change_users(client: Any, login: Any, db: Session) -> None:
    target, _ = login("agent")
    for role in ("manager", "agent", "auditor"):
        _, headers = login(role)
        resp = client.patch(
            f"/api/v1/users/{target.id}", json={"email": "x@example.com"}, headers=headers
        )
        assert resp.status_code == 403
    _, headers = login("admin")
    assert client.patch("/api/v1/users/999999", json={}, headers=headers).status_code == 404
    db.refresh(target)
    assert target.email is None


@pytest.fixture
def cli_env(committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from guanxi.config import get_settings

    for name, value in {
        "GUANXI_DATABASE_URL": committed_engine.url.render_as_string(hide_password=False),
        "GUANXI_ENV": "test",
        "GUANXI_DATA_DIR": str(tmp_path),
        "GUANXI_FIELD_KEYS": json.dumps({"t1": TEST_FIELD_KEY}),
        "GUANXI_ACTIVE_FIELD_KEY": "t1",
        "GUANXI_BLIND_INDEX_KEY": TEST_BLIND_KEY,
        "GUANXI_SECRET_KEY": "test-secret",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield make_sessionmaker(committed_engine)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("lang", "message"), [("en", "Not a valid e-mail address"), ("zh_CN", "电子邮箱地址无效")]
)
def test_cli_user_create_with_email(
    cli_env: Any, monkeypatch: pytest.MonkeyPatch, lang: str, message: str
) -> None:
    from guanxi.cli import app
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_DEFAULT_LANGUAGE", lang)
    get_settings.cache_clear()
    runner = CliRunner()
    args = ["user", "create", "zhaoliu", "--role", "agent", "--password-stdin"]
    bad = runner.invoke(app, [*args, "--email", "zhaoliu(at)example.com"], input=PASSWORD + "\n")
    assert bad.exit_code == 2
    assert f"email: {message}" in bad.output
    good = runner.invoke(app, [*args, "--email", "Zhao.Liu@Example.com"], input=PASSWORD + "\n")
    assert good.exit_code == 0, good.output
    with cli_env() as s:
        assert s.scalar(select(User.email).where(User.username == "zhaoliu")) == (
            "Zhao.Liu@example.com"
        )
