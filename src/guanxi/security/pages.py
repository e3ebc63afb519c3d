"""HTML pages of account security and user administration.

``/account`` (everyone signed in): own password, language, second factor, sessions and API
tokens. ``/admin/users`` (``user.read`` to look, ``user.manage`` to change): the users, a new
user, and per user: role, disable / enable, password reset, unlock, second-factor reset.
The sign-in's second step lives in ``signin.py`` (mounted here).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core import clock
from guanxi.core.errors import DomainError, NotFound
from guanxi.core.i18n import LANGUAGE_NAMES
from guanxi.core.ids import PathId
from guanxi.core.web import LANG_COOKIE, field_messages
from guanxi.security import lockout, service, sessions, signin, totp
from guanxi.security.deps import SESSION_COOKIE, SessionDep, require
from guanxi.security.models import User
from guanxi.security.passwords import PasswordPolicy
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.security.schemas import ApiTokenCreate, UserCreate, UserUpdate
from guanxi.web.render import render, render_error

router = APIRouter()
router.include_router(signin.router)

SignedIn = Annotated[User, require(None)]
Viewer = Annotated[User, require(Permission.user_read)]
Manager = Annotated[User, require(Permission.user_manage)]


def _policy(request: Request) -> PasswordPolicy:
    return PasswordPolicy(min_length=request.app.state.settings.password_min_length)


# --------------------------------------------------------------------------- own account


def _account_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    created: dict[str, Any] | None = None,
    codes: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    current = service.current_token_id(
        session,
        bearer=request.headers.get("authorization", ""),
        cookie=request.cookies.get(SESSION_COOKIE),
    )
    rows = sessions.list_live(session, user_id=user.id)
    return render(
        request,
        "security/account.html",
        status_code=status_code,
        me=user,
        web_sessions=[r for r in rows if r.kind == "web"],
        api_tokens=[r for r in rows if r.kind == "api"],
        current=current,
        enrolled=totp.is_enrolled(user),
        recovery_left=totp.remaining_recovery_codes(session, user_id=user.id),
        role_permissions=[p for p in Permission if role_has(user.role, p)],
        errors=errors or {},
        created=created,
        codes=codes,
        values=values or {},
        min_length=request.app.state.settings.password_min_length,
        language_names=LANGUAGE_NAMES,
    )


@router.get("/account")
def account(request: Request, session: SessionDep, user: SignedIn) -> Response:
    """The user's own account: password, language, second factor, sessions, tokens."""
    return _account_page(request, session, user)


@router.post("/account/password")
def account_password(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Change the own password; every session ends, so sign in again."""
    try:
        service.change_own_password(
            session,
            user_id=user.id,
            current_password=current_password,
            new_password=new_password,
            policy=_policy(request),
        )
    except DomainError as exc:
        errors = field_messages(request, exc)
        return _account_page(request, session, user, status_code=422, errors=errors)
    response = RedirectResponse("/login?next=/account", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/account/language")
def account_language(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    language: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Choose the interface language (remembered for the account)."""
    try:
        change = UserUpdate(language=language or None)
    except ValidationError as exc:
        errors = field_messages(request, exc)
        return _account_page(request, session, user, status_code=422, errors=errors)
    service.update_user(session, user_id=user.id, user_in=change, actor=service.actor_of(user))
    response = RedirectResponse("/account", status_code=303)
    if language:
        response.set_cookie(LANG_COOKIE, language, max_age=365 * 86400, samesite="lax")
    return response


@router.post("/account/sessions/{token_id}/revoke")
def account_revoke(
    token_id: PathId, request: Request, session: SessionDep, user: SignedIn
) -> Response:
    """End one of the own sessions or API tokens (another user's is not found)."""
    try:
        sessions.revoke(session, user_id=user.id, token_id=token_id, actor=service.actor_of(user))
    except NotFound:
        # Answered here, while the session that reloads the signed-in user is open.
        return render_error(request, 404)
    return RedirectResponse("/account#sessions", status_code=303)


@router.post("/account/tokens")
def account_token(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    name: Annotated[str, Form(max_length=100)] = "",
    expires_days: Annotated[str, Form(max_length=4)] = "30",
    access: Annotated[str, Form(max_length=10)] = "role",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a named API token: the whole role, read-only, or chosen permissions."""
    values = {"name": name, "expires_days": expires_days, "access": access, "scopes": scopes or []}
    try:
        token_in = ApiTokenCreate(
            name=name,
            expires_days=expires_days,
            read_only=access == "read",
            scopes=(scopes or []) if access == "custom" else None,
        )
        secret, row = service.create_api_token(
            session,
            user=user,
            name=token_in.name,
            expires_days=token_in.expires_days,
            scopes=token_in.scopes,
            read_only=token_in.read_only,
        )
    except (ValidationError, DomainError) as exc:
        errors = field_messages(request, exc)
        return _account_page(request, session, user, status_code=422, errors=errors, values=values)
    created = {"name": row.name, "secret": secret, "expires_at": row.expires_at}
    return _account_page(request, session, user, created=created)


@router.get("/account/2fa")
def account_enrol(request: Request, session: SessionDep, user: SignedIn) -> Response:
    """Set up the second factor: QR code, manual key, confirm with a code."""
    if totp.is_enrolled(user):
        return RedirectResponse("/account#second-factor", status_code=303)
    secret = totp.pending_secret(session, user_id=user.id) or totp.begin_enrolment(
        session, user_id=user.id
    )
    return signin.enrol_page(request, user, secret, action="/account/2fa", next_url="/account")


@router.post("/account/2fa")
def account_enrol_confirm(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Confirm the second factor with a first code; show the recovery codes once."""
    codes = totp.confirm_enrolment(
        session, user_id=user.id, code=code, actor=service.actor_of(user)
    )
    if codes is None:
        secret = totp.pending_secret(session, user_id=user.id)
        if secret is None:
            return RedirectResponse("/account#second-factor", status_code=303)
        return signin.enrol_page(
            request, user, secret, action="/account/2fa", next_url="/account", wrong=True
        )
    return render(request, "security/recovery_codes.html", codes=codes, next="/account")


@router.post("/account/2fa/recovery-codes")
def account_recovery_codes(request: Request, session: SessionDep, user: SignedIn) -> Response:
    """New recovery codes (the old ones stop working), shown once."""
    codes = totp.regenerate_recovery_codes(session, user_id=user.id, actor=service.actor_of(user))
    return render(request, "security/recovery_codes.html", codes=codes, next="/account")


# --------------------------------------------------------------------------- administration


def _users_page(
    request: Request,
    session: SessionDep,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "security/users.html",
        status_code=status_code,
        users=service.list_users(session),
        roles=list(Role),
        errors=errors or {},
        values=values or {},
        min_length=request.app.state.settings.password_min_length,
        now=clock.now(),
    )


@router.get("/admin/users")
def users(request: Request, session: SessionDep, user: Viewer) -> Response:
    """Every user with role, state, second factor and last sign-in."""
    return _users_page(request, session)


@router.post("/admin/users")
def users_create(
    request: Request,
    session: SessionDep,
    user: Manager,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=100)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """Create a user (the password must pass the policy)."""
    values = {"username": username, "display_name": display_name, "role": role, "email": email}
    try:
        user_in = UserCreate(
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            email=email or None,
        )
        created = service.create_user(
            session, user_in=user_in, actor=service.actor_of(user), policy=_policy(request)
        )
    except (ValidationError, DomainError) as exc:
        errors = field_messages(request, exc)
        return _users_page(request, session, status_code=422, errors=errors, values=values)
    return RedirectResponse(f"/admin/users/{created.id}", status_code=303)


def _user_page(
    request: Request,
    session: SessionDep,
    target_id: int,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Response:
    target = service.get_user(session, user_id=target_id)
    return render(
        request,
        "security/user.html",
        status_code=status_code,
        target=target,
        roles=list(Role),
        enrolled=totp.is_enrolled(target),
        locked=lockout.is_locked(target),
        live=sessions.list_live(session, user_id=target.id),
        errors=errors or {},
        done=done,
        min_length=request.app.state.settings.password_min_length,
    )


@router.get("/admin/users/{user_id}")
def user_detail(user_id: PathId, request: Request, session: SessionDep, user: Viewer) -> Response:
    """One user: state, sessions, and (administrators) the changes."""
    return _user_page(request, session, user_id)


def _act(request: Request, session: SessionDep, user_id: int, action: Any) -> Response:
    """Run one change; refused input shows the page again with the message by its field."""
    try:
        action()
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status == 404:
            # Answered here, while the session that reloads the signed-in user is open.
            return render_error(request, 404)
        errors = field_messages(request, exc)
        return _user_page(request, session, user_id, status_code=422, errors=errors)
    return RedirectResponse(f"/admin/users/{user_id}", status_code=303)


@router.post("/admin/users/{user_id}/role")
def user_role(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Manager,
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Give the user another role (their sessions end)."""
    return _act(
        request,
        session,
        user_id,
        lambda: service.update_user(
            session,
            user_id=user_id,
            user_in=UserUpdate(role=role),
            actor=service.actor_of(user),
        ),
    )


@router.post("/admin/users/{user_id}/active")
def user_active(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Manager,
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Disable (sessions end) or enable the account."""
    return _act(
        request,
        session,
        user_id,
        lambda: service.set_active(
            session, user_id=user_id, active=active == "true", actor=service.actor_of(user)
        ),
    )


@router.post("/admin/users/{user_id}/password")
def user_password(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Manager,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Set a new password for the user (their sessions end, a lockout is lifted)."""
    return _act(
        request,
        session,
        user_id,
        lambda: service.reset_password(
            session,
            user_id=user_id,
            password=password,
            actor=service.actor_of(user),
            policy=_policy(request),
        ),
    )


@router.post("/admin/users/{user_id}/unlock")
def user_unlock(user_id: PathId, request: Request, session: SessionDep, user: Manager) -> Response:
    """Lift a lockout."""
    return _act(
        request,
        session,
        user_id,
        lambda: service.unlock(session, user_id=user_id, actor=service.actor_of(user)),
    )


@router.post("/admin/users/{user_id}/second-factor/reset")
def user_second_factor(
    user_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Remove the user's second factor (they enrol again at the next sign-in)."""
    return _act(
        request,
        session,
        user_id,
        lambda: service.reset_second_factor(session, user_id=user_id, actor=service.actor_of(user)),
    )
