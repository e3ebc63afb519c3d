"""Shared pages: sign in and out, language switch, start page (health: web/ops.py)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from guanxi.core import i18n
from guanxi.core.errors import NotAuthenticated
from guanxi.core.web import LANG_COOKIE, request_language
from guanxi.security import service, signin
from guanxi.security.deps import SESSION_COOKIE, SessionDep, require
from guanxi.security.lockout import LoginPolicy
from guanxi.security.models import User
from guanxi.web.render import render

router = APIRouter()


def _local(target: str | None, default: str = "/customers") -> str:
    """Only same-site paths: ``next`` must never send a user elsewhere (open redirect)."""
    if not target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


@router.get("/")
def start() -> RedirectResponse:
    """The start page is the customer list."""
    return RedirectResponse("/customers", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form."""
    return render(request, "login.html", next=_local(next), error=None, username="")


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/customers",
) -> Response:
    """Check the password (throttled, see security/lockout.py), then the second factor if
    any, open a browser session, go where the user was heading."""
    settings = request.app.state.settings
    try:
        user = service.authenticate(
            session,
            username=username,
            password=password,
            address=signin.client_address(request),
            policy=LoginPolicy.from_settings(settings),
        )
    except NotAuthenticated:
        lang = request_language(request)
        return render(
            request,
            "login.html",
            status_code=401,
            next=_local(next),
            username=username,
            error=i18n.gettext(lang, "Wrong user name or password"),
        )
    # Enrolled users and administrators continue with the second factor (security/signin.py).
    return signin.after_password(request, session, user=user, next_url=_local(next))


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: Annotated[User, require(None)]) -> Response:
    """End the browser session."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        service.revoke_token(session, secret=secret, actor=service.actor_of(user))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def set_language(code: str, request: Request) -> Response:
    """Switch the interface language (remembered in this browser)."""
    lang = i18n.normalise_language(code) or request.app.state.settings.default_language
    referer = request.headers.get("referer")
    target = "/customers"
    if referer:
        parsed = urlparse(referer)
        if parsed.netloc == request.url.netloc:
            target = _local(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response
