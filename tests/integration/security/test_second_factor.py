"""TOTP second factor: enrolment with QR code and key, the code step of sign-in, no replay,
one-use recovery codes, compulsory enrolment of administrators (web and API), reset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.security import totp
from guanxi.security.models import RecoveryCode, User, UserToken
from tests.conftest import PASSWORD
from tests.integration.security.helpers import audit, bearer, csrf_of, token, web_login

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)


def _enrol(db: Session, user: User, at: datetime = T0) -> tuple[str, list[str]]:
    """Enrol through the service: the secret and the recovery codes."""
    secret = totp.begin_enrolment(db, user_id=user.id)
    with clock.frozen(at):
        codes = totp.confirm_enrolment(
            db, user_id=user.id, code=pyotp.TOTP(secret).at(at), actor=Actor.system("test")
        )
    assert codes is not None
    return secret, codes


def test_enrolment_from_the_account_page(client: Any, make_user: Any, db: Session) -> None:
    user = make_user("agent")
    client.cookies.set("guanxi_lang", "en")
    with clock.frozen(T0):
        assert web_login(client, user.username).status_code == 303
        page = client.get("/account/2fa")
        assert page.status_code == 200
        assert '<svg xmlns="http://www.w3.org/2000/svg"' in page.text
        key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
        csrf = csrf_of(page.text)
        wrong = client.post("/account/2fa", data={"code": "000000", "csrf_token": csrf})
        assert (wrong.status_code, 'id="code-error"' in wrong.text) == (422, True)
        db.expire_all()
        assert db.get(User, user.id).totp_enabled_at is None
        done = client.post(
            "/account/2fa", data={"code": pyotp.TOTP(key).at(T0), "csrf_token": csrf}
        )
    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", done.text)
    assert len(set(codes)) == 10
    db.expire_all()
    row = db.get(User, user.id)
    assert row.totp_enabled_at == T0
    # Stored encrypted with the field cipher, never in clear.
    assert row.totp_secret.startswith("t1$")
    assert key not in row.totp_secret
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))
    assert not set(codes) & set(stored)
    assert audit(db, user.id, "user.second_factor") == [("user.second_factor_enrolled", None, None)]


def _secret(client: Any, page: str = "/login/code") -> str:
    """The pending step's form secret, as its page carries it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert found is not None
    return found.group(1)


def test_the_code_form_is_posted_with_the_pending_steps_own_secret(
    client: Any, make_user: Any, db: Session
) -> None:
    """A page elsewhere cannot post a code into someone's half-finished sign-in: without
    the form secret, or with another sign-in's, 403 and nothing counted."""
    user = make_user("agent")
    secret, _codes = _enrol(db, user, T0 - STEP * 4)
    code = pyotp.TOTP(secret).at(T0)
    with clock.frozen(T0):
        web_login(client, user.username)
        mine = _secret(client)
        for sent in ({}, {"csrf_token": "x" * 32}):
            refused = client.post("/login/code", data={"code": code, **sent})
            assert refused.status_code == 403
            assert "guanxi_session" not in refused.cookies
        db.expire_all()
        assert db.get(User, user.id).failed_logins == 0
        # A second sign-in gets a secret of its own; the first one's no longer fits.
        client.cookies.clear()
        web_login(client, user.username)
        assert _secret(client) != mine
        stale = client.post("/login/code", data={"code": code, "csrf_token": mine})
        assert stale.status_code == 403
        ok = client.post(
            "/login/code",
            data={"code": code, "csrf_token": _secret(client)},
            follow_redirects=False,
        )
        assert (ok.status_code, ok.headers["location"]) == (303, "/customers")


def test_sign_in_asks_for_the_code_and_refuses_a_replay(
    client: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    secret, codes = _enrol(db, user, T0 - STEP * 4)
    code = pyotp.TOTP(secret).at(T0)
    with clock.frozen(T0):
        first = web_login(client, user.username, next="/customers")
        assert (first.status_code, first.headers["location"]) == (
            303,
            "/login/code?next=/customers",
        )
        assert "guanxi_session" not in first.cookies
        assert "guanxi_signin" in first.cookies
        # Half signed in is not signed in.
        assert (
            client.get("/customers", follow_redirects=False)
            .headers["location"]
            .startswith("/login?")
        )
        assert client.get("/login/code").status_code == 200
        form = {"next": "/customers", "csrf_token": _secret(client)}
        wrong = client.post("/login/code", data={"code": "123456", **form})
        assert wrong.status_code == 401
        ok = client.post("/login/code", data={"code": code, **form}, follow_redirects=False)
        assert (ok.status_code, ok.headers["location"]) == (303, "/customers")
        assert "guanxi_session" in ok.cookies
        client.cookies.clear()
        # The same code a second time, still inside its window: refused.
        web_login(client, user.username)
        replay = client.post(
            "/login/code",
            data={"code": code, "csrf_token": _secret(client)},
            follow_redirects=False,
        )
        assert replay.status_code == 401
        # The right password again does not wipe the code failures (no fresh guesses).
        client.cookies.clear()
        web_login(client, user.username)
        db.expire_all()
        assert db.get(User, user.id).failed_logins == 1
        # A recovery code works once.
        rescue = client.post(
            "/login/code",
            data={"code": codes[0], "csrf_token": _secret(client)},
            follow_redirects=False,
        )
        assert rescue.status_code == 303
        client.cookies.clear()
        web_login(client, user.username)
        again = client.post(
            "/login/code",
            data={"code": codes[0], "csrf_token": _secret(client)},
            follow_redirects=False,
        )
        assert again.status_code == 401
    db.expire_all()
    # Each good code cleared the count; the reused recovery code is the one failure since.
    assert db.get(User, user.id).failed_logins == 1
    assert [a for a, _, _ in audit(db, user.id, "user.recovery")] == ["user.recovery_code_used"]
    assert totp.remaining_recovery_codes(db, user_id=user.id) == 9


def test_an_administrator_must_enrol_before_anything_else(
    app: Any, client: Any, make_user: Any, db: Session
) -> None:
    app.state.settings.admin_second_factor = True
    admin = make_user("admin")
    with clock.frozen(T0):
        first = web_login(client, admin.username, next="/admin/users")
        assert (first.status_code, first.headers["location"]) == (
            303,
            "/login/enrol?next=/admin/users",
        )
        # Nothing else is open: the pending cookie is no session.
        assert client.get("/admin/users", follow_redirects=False).status_code == 303
        assert client.get("/login/code", follow_redirects=False).headers["location"] == "/login"
        page = client.get("/login/enrol?next=/admin/users")
        key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
        form_secret = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        done = client.post(
            "/login/enrol",
            data={"code": pyotp.TOTP(key).at(T0), "next": "/admin/users", "csrf_token": ""},
        )
        assert done.status_code == 403
        done = client.post(
            "/login/enrol",
            data={
                "code": pyotp.TOTP(key).at(T0),
                "next": "/admin/users",
                "csrf_token": form_secret,
            },
        )
        assert done.status_code == 200
        assert 'id="recovery-codes"' in done.text
        assert 'href="/admin/users"' in done.text
        assert client.get("/admin/users").status_code == 200
    db.expire_all()
    assert db.get(User, admin.id).totp_enabled_at == T0
    # The pending sign-in is over and left no audit entry of its own.
    kinds = db.execute(
        select(UserToken.kind, UserToken.revoked_at.is_(None)).where(UserToken.user_id == admin.id)
    ).all()
    assert sorted(kinds) == [("enrol", False), ("web", True)]
    assert [a for a, _, _ in audit(db, admin.id)] == [
        "user.created",
        "user.second_factor_enrolled",
        "user.login",
    ]


def test_the_token_endpoint_wants_the_code(
    app: Any, client: Any, make_user: Any, db: Session
) -> None:
    app.state.settings.admin_second_factor = True
    admin = make_user("admin")
    with clock.frozen(T0):
        refused = token(client, admin.username)
        assert refused.status_code == 403
    agent = make_user("agent")
    secret, _ = _enrol(db, agent, T0 - STEP * 4)
    code = pyotp.TOTP(secret).at(T0)
    with clock.frozen(T0):
        missing = token(client, agent.username)
        assert missing.status_code == 422
        assert [e["field"] for e in missing.json()["errors"]] == ["otp"]
        assert token(client, agent.username, otp="000000").status_code == 401
        assert bearer(token(client, agent.username, otp=code))
        assert token(client, agent.username, otp=code).status_code == 401
    count = db.scalar(
        select(func.count()).select_from(UserToken).where(UserToken.user_id == admin.id)
    )
    assert count == 0


def test_an_administrator_resets_a_lost_second_factor(
    client: Any, login: Any, make_user: Any, db: Session
) -> None:
    user = make_user("agent")
    _enrol(db, user, T0 - STEP * 4)
    _, headers = login("admin")
    _, auditor = login("auditor")
    url = f"/api/v1/users/{user.id}/second-factor"
    assert client.delete(url, headers=auditor).status_code == 403
    db.expire_all()
    assert db.get(User, user.id).totp_enabled_at is not None
    resp = client.delete(url, headers=headers)
    assert (resp.status_code, resp.json()["second_factor"]) == (200, False)
    db.expire_all()
    assert (db.get(User, user.id).totp_secret, db.get(User, user.id).totp_enabled_at) == (
        None,
        None,
    )
    assert totp.remaining_recovery_codes(db, user_id=user.id) == 0
    assert audit(db, user.id, "user.second_factor_reset") == [
        ("user.second_factor_reset", None, {"sessions_ended": 0})
    ]
    # Signs in with the password alone again (an agent need not enrol).
    assert bearer(token(client, user.username, PASSWORD))
