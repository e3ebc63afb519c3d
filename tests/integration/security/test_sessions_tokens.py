"""Sessions and API tokens: the user's list with revoke, idle and absolute timeouts,
last-seen written at most once a minute, everything revoked on password change, reset,
role change and disable, and tokens narrowed by scopes with an expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.security.models import UserToken
from tests.conftest import PASSWORD
from tests.integration.security.helpers import audit, bearer, token, web_login

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
NEW_PASSWORD = "Tr0ub4dor&3x-green"


def _live(db: Session, user_id: int) -> list[tuple[str, bool]]:
    db.expire_all()
    rows = db.execute(
        select(UserToken.kind, UserToken.revoked_at.is_(None))
        .where(UserToken.user_id == user_id)
        .order_by(UserToken.id)
    )
    return [(k, bool(live)) for k, live in rows]


def test_the_user_lists_and_revokes_own_sessions(
    client: Any, make_user: Any, login: Any, db: Session
) -> None:
    user = make_user("agent")
    with clock.frozen(T0):
        first = bearer(token(client, user.username))
        second = bearer(token(client, user.username))
        listed = client.get("/api/v1/account/sessions", headers=first)
    assert listed.status_code == 200
    items = listed.json()
    assert [(i["kind"], i["current"], i["client_address"], i["user_agent"]) for i in items] == [
        ("api", False, "testclient", "testclient"),
        ("api", True, "testclient", "testclient"),
    ]
    assert items[0]["expires_at"] == "2026-11-27T02:00:00Z"
    other_id = items[0]["id"]
    # Someone else's session is not found, and stays live.
    _, stranger = login("agent")
    assert (
        client.delete(f"/api/v1/account/sessions/{other_id}", headers=stranger).status_code == 404
    )
    with clock.frozen(T0):
        assert client.get("/api/v1/me", headers=second).status_code == 200
        gone = client.delete(f"/api/v1/account/sessions/{other_id}", headers=first)
        assert gone.status_code == 204
        assert client.get("/api/v1/me", headers=second).status_code == 401
        assert client.get("/api/v1/me", headers=first).status_code == 200
    assert audit(db, user.id, "user.session_revoked") == [
        ("user.session_revoked", None, {"kind": "api", "token": other_id})
    ]


def test_idle_and_absolute_timeouts_of_browser_sessions(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    with clock.frozen(T0):
        assert web_login(client, user.username).status_code == 303
    [row_id] = db.scalars(select(UserToken.id).where(UserToken.user_id == user.id))

    def seen() -> datetime | None:
        db.expire_all()
        return db.get(UserToken, row_id).last_seen_at

    def status(at: datetime) -> int:
        with clock.frozen(at):
            return client.get("/account", follow_redirects=False).status_code  # type: ignore[no-any-return]

    # Last-seen is written at most once a minute.
    assert (status(T0 + timedelta(seconds=30)), seen()) == (200, None)
    assert (status(T0 + timedelta(seconds=61)), seen()) == (200, T0 + timedelta(seconds=61))
    assert (status(T0 + timedelta(seconds=90)), seen()) == (200, T0 + timedelta(seconds=61))
    # 29 idle minutes are fine; 30 end the session.
    t = T0 + timedelta(seconds=61) + timedelta(minutes=29)
    assert status(t) == 200
    assert status(t + timedelta(minutes=30)) == 303
    # The absolute limit (session_hours = 12) holds however busy the session is.
    with write_transaction(db):
        db.execute(
            update(UserToken)
            .where(UserToken.id == row_id)
            .values(last_seen_at=T0 + timedelta(hours=12) - timedelta(minutes=5), revoked_at=None)
        )
    assert status(T0 + timedelta(hours=12) - timedelta(minutes=1)) == 200
    assert status(T0 + timedelta(hours=12)) == 303


def test_a_password_change_ends_every_session_and_token(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent", username="zhaoliu")
    with clock.frozen(T0):
        headers = bearer(token(client, user.username))
        other = bearer(token(client, user.username))
        web_login(client, user.username)
        url = "/api/v1/account/password"
        en = {**headers, "Accept-Language": "en"}
        wrong = client.post(
            url, json={"current_password": "nope", "new_password": NEW_PASSWORD}, headers=en
        )
        assert wrong.status_code == 422
        assert [(e["field"], e["message"]) for e in wrong.json()["errors"]] == [
            ("current_password", "The current password is wrong")
        ]
        weak = client.post(
            url, json={"current_password": PASSWORD, "new_password": "zhaoliu123"}, headers=en
        )
        assert [(e["field"], e["code"]) for e in weak.json()["errors"]] == [
            ("new_password", "password_has_username")
        ]
        zh = client.post(
            url,
            json={"current_password": PASSWORD, "new_password": "iloveyou12"},
            headers={**headers, "Accept-Language": "zh-CN"},
        )
        assert zh.status_code == 422
        assert [(e["field"], e["message"]) for e in zh.json()["errors"]] == [
            ("new_password", "这个密码出现在已泄露的密码清单中，请换一个")
        ]
        assert _live(db, user.id) == [("api", True), ("api", True), ("web", True)]
        ok = client.post(
            url, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=headers
        )
        assert ok.status_code == 204
        assert client.get("/api/v1/me", headers=other).status_code == 401
        assert client.get("/account", follow_redirects=False).status_code == 303
        assert token(client, user.username).status_code == 401
        assert bearer(token(client, user.username, NEW_PASSWORD))
    assert audit(db, user.id, "user.password_changed") == [
        ("user.password_changed", None, {"sessions_ended": 3})
    ]


def test_reset_role_change_and_disable_end_sessions(
    client: Any, make_user: Any, login: Any, db: Session
) -> None:
    admin, headers = login("admin")
    user = make_user("agent")

    def fresh() -> dict[str, str]:
        return bearer(token(client, user.username))

    t1 = fresh()
    resp = client.post(
        f"/api/v1/users/{user.id}/password", json={"password": NEW_PASSWORD}, headers=headers
    )
    assert resp.status_code == 200
    assert client.get("/api/v1/me", headers=t1).status_code == 401
    t2 = bearer(token(client, user.username, NEW_PASSWORD))
    resp = client.patch(f"/api/v1/users/{user.id}", json={"role": "manager"}, headers=headers)
    assert (resp.status_code, resp.json()["role"]) == (200, "manager")
    assert client.get("/api/v1/me", headers=t2).status_code == 401
    t3 = bearer(token(client, user.username, NEW_PASSWORD))
    resp = client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=headers)
    assert (resp.status_code, resp.json()["is_active"]) == (200, False)
    assert client.get("/api/v1/me", headers=t3).status_code == 401
    assert token(client, user.username, NEW_PASSWORD).status_code == 401
    assert [(a, b, c) for a, b, c in audit(db, user.id) if a != "user.token_issued"] == [
        ("user.created", None, {"username": user.username, "role": "agent"}),
        ("user.password_reset", None, {"sessions_ended": 1}),
        ("user.role_changed", {"role": "agent"}, {"role": "manager", "sessions_ended": 1}),
        ("user.disabled", {"is_active": True}, {"is_active": False, "sessions_ended": 1}),
    ]
    # An administrator cannot disable or demote themselves.
    own = client.patch(f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=headers)
    assert (own.status_code, own.json()["errors"][0]["field"]) == (409, "is_active")
    own = client.patch(f"/api/v1/users/{admin.id}", json={"role": "agent"}, headers=headers)
    assert (own.status_code, own.json()["errors"][0]["field"]) == (409, "role")
    # A weak password is refused, naming the field.
    weak = client.post(
        f"/api/v1/users/{user.id}/password", json={"password": "password1"}, headers=headers
    )
    assert [(e["field"], e["code"]) for e in weak.json()["errors"]] == [
        ("password", "password_too_short"),
        ("password", "password_breached"),
    ]


def test_scoped_tokens_act_with_the_intersection(client: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent")
    with clock.frozen(T0):
        full = bearer(token(client, user.username))
        made = client.post(
            "/api/v1/account/tokens", json={"name": "报表脚本", "read_only": True}, headers=full
        )
        assert made.status_code == 201
        body = made.json()
        assert (body["name"], body["scopes"], body["expires_at"]) == (
            "报表脚本",
            ["customer.read", "customer.read_all", "loyalty.read", "shipment.read", "ticket.read"],
            "2026-12-26T02:00:00Z",
        )
        reader = {"Authorization": f"Bearer {body['access_token']}"}
        me = client.get("/api/v1/me", headers=reader).json()
        assert me["permissions"] == body["scopes"]
        assert client.get("/api/v1/customers", headers=reader).status_code == 200
        refused = client.post("/api/v1/customers", json={"name": "王五"}, headers=reader)
        assert refused.status_code == 403
        # Scopes beyond the role are refused, naming the field.
        bad = client.post(
            "/api/v1/account/tokens",
            json={"name": "x", "scopes": ["customer.read", "user.manage"]},
            headers=full,
        )
        assert bad.status_code == 422
        assert [(e["field"], e["code"]) for e in bad.json()["errors"]] == [
            ("scopes", "token_scopes")
        ]
        short = client.post(
            "/api/v1/account/tokens",
            json={"name": "一天", "scopes": ["customer.write"], "expires_days": 1},
            headers=full,
        ).json()
        writer = {"Authorization": f"Bearer {short['access_token']}"}
        assert client.get("/api/v1/me", headers=writer).json()["permissions"] == ["customer.write"]
    with clock.frozen(T0 + timedelta(days=1)):
        assert client.get("/api/v1/me", headers=writer).status_code == 401
        assert client.get("/api/v1/me", headers=reader).status_code == 200
    issued = [c for a, _, c in audit(db, user.id) if a == "user.token_issued" and c]
    assert issued == [
        {
            "name": "报表脚本",
            "scopes": " ".join(body["scopes"]),
            "expires_at": "2026-12-26T02:00:00+00:00",
        },
        {"name": "一天", "scopes": "customer.write", "expires_at": "2026-11-27T02:00:00+00:00"},
    ]
