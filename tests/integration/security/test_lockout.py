"""Sign-in throttling: lockout per account in the database, growing on repeat, the same
answer whatever went wrong, the audit trail, unlocking, and the per-address limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.security.models import User
from tests.conftest import PASSWORD
from tests.integration.security.helpers import audit, bearer, token, web_login

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
TITLE = {"code": "not_authenticated", "title": "请先登录", "status": 401}


def _problem(resp: Any) -> tuple[int, Any]:
    body = resp.json()
    return resp.status_code, {k: body[k] for k in ("code", "title", "status")}


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    with clock.frozen(T0):
        for _ in range(4):
            assert token(client, user.username, "wrong-password").status_code == 401
        db.expire_all()
        assert (db.get(User, user.id).failed_logins, db.get(User, user.id).locked_until) == (
            4,
            None,
        )
        assert token(client, user.username, "wrong-password").status_code == 401
        # Locked: the right password is refused too, with the very same answer.
        locked = token(client, user.username, PASSWORD)
        unknown = token(client, "nobody-here", PASSWORD)
        assert _problem(locked) == _problem(unknown) == (401, TITLE)
    db.expire_all()
    row = db.get(User, user.id)
    assert (row.failed_logins, row.lockouts, row.locked_until) == (0, 1, T0 + timedelta(minutes=15))
    assert audit(db, user.id, "user.locked") == [
        (
            "user.locked",
            None,
            {
                "failures": 5,
                "lockouts": 1,
                "locked_until": (T0 + timedelta(minutes=15)).isoformat(),
            },
        )
    ]
    # Still locked a second before the end; open again after it.
    with clock.frozen(T0 + timedelta(minutes=15) - timedelta(seconds=1)):
        assert token(client, user.username, PASSWORD).status_code == 401
    with clock.frozen(T0 + timedelta(minutes=15)):
        assert token(client, user.username, PASSWORD).status_code == 200
    db.expire_all()
    row = db.get(User, user.id)
    assert (row.failed_logins, row.lockouts, row.locked_until) == (0, 0, None)


def test_a_repeat_lockout_lasts_twice_as_long(client: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent")
    with clock.frozen(T0):
        for _ in range(5):
            token(client, user.username, "wrong-password")
    later = T0 + timedelta(minutes=20)
    with clock.frozen(later):
        for _ in range(5):
            token(client, user.username, "wrong-password")
    db.expire_all()
    row = db.get(User, user.id)
    assert (row.lockouts, row.locked_until) == (2, later + timedelta(minutes=30))


def test_the_sign_in_page_says_the_same_for_locked_and_wrong(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    client.cookies.set("guanxi_lang", "en")
    with clock.frozen(T0):
        wrong = [web_login(client, user.username, "wrong-password") for _ in range(5)]
        locked = web_login(client, user.username, PASSWORD)
        unknown = web_login(client, "nobody-here", PASSWORD)
    assert {r.status_code for r in [*wrong, locked, unknown]} == {401}
    for resp in (locked, unknown, wrong[0]):
        assert "Wrong user name or password" in resp.text
    assert "guanxi_session" not in locked.cookies


def test_an_administrator_unlocks(client: Any, login: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent")
    _, headers = login("admin")
    with clock.frozen(T0):
        for _ in range(5):
            token(client, user.username, "wrong-password")
        # Without user.manage: refused and nothing changes.
        _, manager = login("manager")
        assert client.post(f"/api/v1/users/{user.id}/unlock", headers=manager).status_code == 403
        resp = client.post(f"/api/v1/users/{user.id}/unlock", headers=headers)
        assert resp.status_code == 200
        assert resp.json()["locked_until"] is None
        assert token(client, user.username, PASSWORD).status_code == 200
    assert [a for a, _, _ in audit(db, user.id) if a in ("user.locked", "user.unlocked")] == [
        "user.locked",
        "user.unlocked",
    ]
    assert audit(db, user.id, "user.unlocked") == [
        ("user.unlocked", {"locked_until": (T0 + timedelta(minutes=15)).isoformat()}, None)
    ]


def test_an_address_that_fails_too_often_is_refused(
    app: Any, client: Any, make_user: Any, db: Session
) -> None:
    app.state.settings.login_address_failures = 3
    user = make_user("agent")
    with clock.frozen(T0):
        for name in ("a-one", "b-two", "c-three"):
            assert token(client, name, "whatever-pass").status_code == 401
        # The address is spent: even a right password is refused, and the account is not
        # charged for it.
        assert token(client, user.username, PASSWORD).status_code == 401
    db.expire_all()
    assert db.get(User, user.id).failed_logins == 0
    # The window passes: the address may try again.
    with clock.frozen(T0 + timedelta(minutes=15)):
        assert bearer(token(client, user.username, PASSWORD))
