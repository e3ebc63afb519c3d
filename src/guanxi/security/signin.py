"""The browser sign-in after the password: the second-factor step and the compulsory
enrolment of administrators, then the session cookie.

Between the password and the second factor the browser holds only a short-lived pending
token (cookie ``guanxi_signin``, kind "mfa" or "enrol" in ``user_token``) that no other page
accepts: an administrator without a second factor can do nothing but enrol one. These
routes are public (the pending cookie is their credential, checked here); their forms are
safe from cross-site posting because the cookie is SameSite=Lax.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from guanxi.core import i18n
from guanxi.core.errors import NotAuthenticated, PermissionDenied
from guanxi.core.web import LANG_COOKIE, request_language
from guanxi.security import service, totp
from guanxi.security.deps import SESSION_COOKIE, SessionDep
from guanxi.security.lockout import LoginPolicy
from guanxi.security.models import User
from guanxi.web.render import render

router = APIRouter()

PENDING_COOKIE = "guanxi_signin"
PENDING_MINUTES = 10


def client_address(request: Request) -> str | None:
    """The client's address as the server sees it (behind a proxy, uvicorn's
    ``--proxy-headers`` makes it the browser's)."""
    return request.client.host if request.client else None


def _local(target: str | None) -> str:
    # Same-site paths only (no open redirect); mirrors web/pages.py.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/customers"
    return target


def open_session(request: Request, session: Session, *, user: User, next_url: str) -> Response:
    """Issue the browser session and go where the user was heading."""
    settings = request.app.state.settings
    secret, _ = service.issue_token(
        session,
        user=user,
        kind="web",
        hours=settings.session_hours,
        address=client_address(request),
        agent=request.headers.get("user-agent"),
    )
    response = RedirectResponse(_local(next_url), status_code=303)
    _set_session_cookie(request, response, secret)
    response.delete_cookie(PENDING_COOKIE)
    if user.language:
        response.set_cookie(LANG_COOKIE, user.language, max_age=365 * 86400, samesite="lax")
    return response


def _set_session_cookie(request: Request, response: Response, secret: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


def after_password(request: Request, session: Session, *, user: User, next_url: str) -> Response:
    """What follows a right password: the code form for an enrolled user, the enrolment
    for an administrator without a second factor, otherwise the session."""
    settings = request.app.state.settings
    if totp.is_enrolled(user):
        kind = "mfa"
    elif service.must_enrol(user, required_for_admins=settings.admin_second_factor):
        kind = "enrol"
    else:
        return open_session(request, session, user=user, next_url=next_url)
    secret, _ = service.issue_token(session, user=user, kind=kind, hours=PENDING_MINUTES / 60)
    target = "/login/code" if kind == "mfa" else "/login/enrol"
    response = RedirectResponse(f"{target}?next={_quote(next_url)}", status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        secret,
        max_age=PENDING_MINUTES * 60,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(_local(path), safe="/")


def _pending(request: Request, session: Session, kind: str) -> service.LiveToken | None:
    """The half-finished sign-in of the pending cookie; its form secret is the page's."""
    secret = request.cookies.get(PENDING_COOKIE)
    live = service.resolve_token(session, secret=secret, kind=kind) if secret else None
    if live is not None:
        request.state.csrf_token = live.csrf_token or ""
    return live


def _check_form_secret(live: service.LiveToken, sent: str) -> None:
    """The code forms are posted with the pending step's own secret, as every signed-in
    form is: a page elsewhere cannot post a code into someone's half-finished sign-in."""
    if not live.csrf_token or not secrets.compare_digest(sent, live.csrf_token):
        raise PermissionDenied("CSRF token missing or wrong")


def _end_pending(request: Request, session: Session, user: User) -> None:
    secret = request.cookies.get(PENDING_COOKIE)
    if secret:
        service.revoke_token(session, secret=secret, actor=service.actor_of(user), quiet=True)


def _back_to_login(request: Request, next_url: str, *, error: bool = False) -> Response:
    lang = request_language(request)
    response = render(
        request,
        "login.html",
        status_code=401,
        next=_local(next_url),
        username="",
        error=i18n.gettext(lang, "Wrong user name or password") if error else None,
    )
    response.delete_cookie(PENDING_COOKIE)
    return response


@router.get("/login/code")
def code_form(request: Request, session: SessionDep, next: str = "/customers") -> Response:
    """The second-factor step: a code from the authenticator app or a recovery code."""
    if _pending(request, session, "mfa") is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "security/login_code.html", next=_local(next), error=None)


@router.post("/login/code")
def code_check(
    request: Request,
    session: SessionDep,
    code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=500)] = "/customers",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the code; right: the session; wrong: try again (counted like a wrong
    password); locked or expired: back to the password."""
    live = _pending(request, session, "mfa")
    if live is None:
        return RedirectResponse("/login", status_code=303)
    _check_form_secret(live, csrf_token)
    user = live.user
    policy = LoginPolicy.from_settings(request.app.state.settings)
    try:
        user = service.check_second_factor(
            session, user_id=user.id, code=code, address=client_address(request), policy=policy
        )
    except NotAuthenticated as exc:
        if exc.params.get("field") != "code":
            _end_pending(request, session, user)
            return _back_to_login(request, next, error=True)
        lang = request_language(request)
        return render(
            request,
            "security/login_code.html",
            status_code=401,
            next=_local(next),
            error=i18n.gettext(lang, "Wrong or already used code"),
        )
    _end_pending(request, session, user)
    return open_session(request, session, user=user, next_url=next)


@router.get("/login/enrol")
def enrol_form(request: Request, session: SessionDep, next: str = "/customers") -> Response:
    """Compulsory enrolment of an administrator's second factor: QR code and key."""
    live = _pending(request, session, "enrol")
    if live is None:
        return RedirectResponse("/login", status_code=303)
    user = live.user
    secret = totp.pending_secret(session, user_id=user.id) or totp.begin_enrolment(
        session, user_id=user.id
    )
    return enrol_page(request, user, secret, action="/login/enrol", next_url=next)


def enrol_page(
    request: Request,
    user: User,
    secret: str,
    *,
    action: str,
    next_url: str,
    wrong: bool = False,
) -> Response:
    """The enrolment page (QR code, manual key, code form); ``wrong``: after a wrong code."""
    uri = totp.provisioning_uri(secret, user.username)
    error = i18n.gettext(request_language(request), "Wrong or already used code") if wrong else None
    return render(
        request,
        "security/enrol.html",
        status_code=422 if wrong else 200,
        action=action,
        next=_local(next_url),
        qr=totp.qr_svg(uri),
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        error=error,
        compulsory=action == "/login/enrol",
    )


@router.post("/login/enrol")
def enrol_confirm(
    request: Request,
    session: SessionDep,
    code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=500)] = "/customers",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Confirm the enrolment with a first code: the recovery codes (shown once) and the
    session."""
    live = _pending(request, session, "enrol")
    if live is None:
        return RedirectResponse("/login", status_code=303)
    _check_form_secret(live, csrf_token)
    user = live.user
    codes = totp.confirm_enrolment(
        session, user_id=user.id, code=code, actor=service.actor_of(user)
    )
    if codes is None:
        secret = totp.pending_secret(session, user_id=user.id) or ""
        return enrol_page(request, user, secret, action="/login/enrol", next_url=next, wrong=True)
    _end_pending(request, session, user)
    redirect = open_session(request, session, user=user, next_url=next)
    page = render(request, "security/recovery_codes.html", codes=codes, next=_local(next))
    for name, value in redirect.headers.items():
        if name == "set-cookie":
            page.headers.append("set-cookie", value)
    return page
