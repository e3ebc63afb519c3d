"""The /account page (password, language, second factor, sessions, tokens) and the user
administration pages /admin/users, in both languages, with each form's refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.security.models import User, UserToken
from tests.integration.security.helpers import audit, bearer, csrf_of, token, web_login

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
EN = {"Accept-Language": "en"}


def test_account_page_sessions_tokens_password(client: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent", username="wangwu")
    client.cookies.set("guanxi_lang", "en")
    with clock.frozen(T0):
        assert web_login(client, user.username).status_code == 303
        api = bearer(token(client, user.username))
        page = client.get("/account")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        [web_id] = db.scalars(
            select(UserToken.id).where(UserToken.user_id == user.id, UserToken.kind == "web")
        )
        assert re.search(rf'id="s-{web_id}">.*?This one', page.text, re.S)
        made = client.post(
            "/account/tokens",
            data={
                "name": "nightly export",
                "expires_days": "7",
                "access": "read",
                "csrf_token": csrf,
            },
        )
        assert made.status_code == 200
        secret = re.search(r'id="token-secret">([^<]+)<', made.text).group(1)
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
        assert me["permissions"] == [
            "customer.read",
            "customer.read_all",
            "loyalty.read",
            "shipment.read",
            "ticket.read",
        ]
        # Refused input comes back beside its field.
        bad = client.post(
            "/account/tokens",
            data={"name": "", "expires_days": "900", "access": "role", "csrf_token": csrf},
        )
        assert bad.status_code == 422
        assert 'id="err-name"' in bad.text
        assert 'id="err-expires_days"' in bad.text
        [api_id] = db.scalars(
            select(UserToken.id).where(
                UserToken.user_id == user.id, UserToken.kind == "api", UserToken.name.is_(None)
            )
        )
        stranger = make_user("agent")
        other = bearer(token(client, stranger.username))
        [foreign] = db.scalars(select(UserToken.id).where(UserToken.user_id == stranger.id))
        assert (
            client.post(
                f"/account/sessions/{foreign}/revoke", data={"csrf_token": csrf}
            ).status_code
            == 404
        )
        assert client.get("/api/v1/me", headers=other).status_code == 200
        gone = client.post(
            f"/account/sessions/{api_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert (gone.status_code, gone.headers["location"]) == (303, "/account#sessions")
        assert client.get("/api/v1/me", headers=api).status_code == 401
        # Without the CSRF token nothing happens.
        assert client.post("/account/language", data={"language": "en"}).status_code == 403
        lang = client.post(
            "/account/language", data={"language": "en", "csrf_token": csrf}, follow_redirects=False
        )
        assert lang.status_code == 303
        db.expire_all()
        assert db.get(User, user.id).language == "en"
        weak = client.post(
            "/account/password",
            data={
                "current_password": "correct horse battery",
                "new_password": "wangwu2026!",
                "csrf_token": csrf,
            },
        )
        assert weak.status_code == 422
        assert re.search(
            r'id="err-new_password">The password must not contain the user name<', weak.text
        )
        done = client.post(
            "/account/password",
            data={
                "current_password": "correct horse battery",
                "new_password": "Tr0ub4dor&3x-green",
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert (done.status_code, done.headers["location"]) == (303, "/login?next=/account")
        assert client.get("/account", follow_redirects=False).status_code == 303


def test_user_administration_pages(client: Any, login: Any, make_user: Any, db: Session) -> None:
    _, admin = login("admin")
    _, auditor = login("auditor")
    _, agent = login("agent")
    assert client.get("/admin/users", headers=agent).status_code == 403
    listed = client.get("/admin/users", headers={**auditor, **EN})
    assert listed.status_code == 200
    assert 'action="/admin/users"' not in listed.text  # reading only
    assert client.post("/admin/users", data={"username": "x"}, headers=auditor).status_code == 403
    # A breached password is refused beside its field, in Chinese by default.
    refused = client.post(
        "/admin/users",
        data={
            "username": "sunqi",
            "display_name": "孙七",
            "role": "agent",
            "password": "1234567890",
        },
        headers=admin,
    )
    assert refused.status_code == 422
    assert 'id="err-password">这个密码出现在已泄露的密码清单中，请换一个<' in refused.text
    assert db.scalar(select(User.id).where(User.username == "sunqi")) is None
    created = client.post(
        "/admin/users",
        data={
            "username": "sunqi",
            "display_name": "孙七",
            "role": "agent",
            "password": "Tr0ub4dor&3x-green",
        },
        headers=admin,
        follow_redirects=False,
    )
    new_id = db.scalar(select(User.id).where(User.username == "sunqi"))
    assert (created.status_code, created.headers["location"]) == (303, f"/admin/users/{new_id}")
    page = client.get(f"/admin/users/{new_id}", headers={**admin, **EN})
    assert 'id="role">Customer service agent<' in page.text
    base = f"/admin/users/{new_id}"
    for path, data in (
        ("/role", {"role": "manager"}),
        ("/password", {"password": "An0ther-long-secret"}),
        ("/active", {"active": "false"}),
        ("/active", {"active": "true"}),
        ("/unlock", {}),
    ):
        resp = client.post(base + path, data=data, headers=admin, follow_redirects=False)
        assert (resp.status_code, resp.headers["location"]) == (303, base), path
    bad_role = client.post(base + "/role", data={"role": "boss"}, headers={**admin, **EN})
    assert bad_role.status_code == 422
    assert 'id="err-role"' in bad_role.text
    assert client.post(base + "/unlock", headers=auditor).status_code == 403
    assert client.post("/admin/users/999999/unlock", headers=admin).status_code == 404
    db.expire_all()
    row = db.get(User, new_id)
    assert (row.role, row.is_active) == ("manager", True)
    assert [a for a, _, _ in audit(db, new_id)] == [
        "user.created",
        "user.role_changed",
        "user.password_reset",
        "user.disabled",
        "user.enabled",
        "user.unlocked",
    ]
    assert bearer(token(client, "sunqi", "An0ther-long-secret"))
