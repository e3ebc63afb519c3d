"""JSON routes of authentication, the signed-in user's account (password, sessions, API
tokens) and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from guanxi.core.ids import PathId
from guanxi.security import service, sessions
from guanxi.security.deps import SESSION_COOKIE, SessionDep, require
from guanxi.security.lockout import LoginPolicy
from guanxi.security.models import User, UserToken
from guanxi.security.passwords import PasswordPolicy
from guanxi.security.permissions import Permission
from guanxi.security.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    PasswordChange,
    PasswordReset,
    SessionRead,
    TokenRead,
    TokenRequest,
    UserCreate,
    UserRead,
    UserUpdate,
)
from guanxi.security.signin import client_address

router = APIRouter(prefix="/api/v1", tags=["auth"])

Manager = Annotated[User, require(Permission.user_manage)]


def _password_policy(request: Request) -> PasswordPolicy:
    return PasswordPolicy(min_length=request.app.state.settings.password_min_length)


@router.post("/auth/token", response_model=TokenRead)
def issue_token(body: TokenRequest, request: Request, session: SessionDep) -> TokenRead:
    """Exchange a username and password (and, once enrolled, a second-factor code in
    ``otp``) for a bearer token. Administrators without a second factor must first enrol
    one by signing in on the web (403)."""
    settings = request.app.state.settings
    policy = LoginPolicy.from_settings(settings)
    user = service.authenticate(
        session,
        username=body.username,
        password=body.password,
        address=client_address(request),
        policy=policy,
    )
    service.require_api_second_factor(
        session,
        user=user,
        otp=body.otp,
        required_for_admins=settings.admin_second_factor,
        policy=policy,
        address=client_address(request),
    )
    secret, row = service.issue_token(
        session,
        user=user,
        kind="api",
        hours=settings.token_hours,
        address=client_address(request),
        agent=request.headers.get("user-agent"),
    )
    return TokenRead(access_token=secret, expires_at=row.expires_at)


@router.get("/me", response_model=UserRead)
def me(user: Annotated[User, require(None)]) -> UserRead:
    """The signed-in user and their permissions (through a scoped token: the token's)."""
    read = UserRead.of(user)
    read.permissions = service.permissions_of(user)
    return read


# --------------------------------------------------------------------------- own account


def _session_read(row: UserToken, current_id: int | None) -> SessionRead:
    return SessionRead(
        id=row.id,
        kind=row.kind,
        name=row.name,
        scopes=row.scopes.split() if row.scopes else None,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        client_address=row.client_address,
        user_agent=row.user_agent,
        current=row.id == current_id,
    )


@router.get("/account/sessions", response_model=list[SessionRead])
def my_sessions(
    request: Request, session: SessionDep, user: Annotated[User, require(None)]
) -> list[SessionRead]:
    """The signed-in user's live browser sessions and API tokens, newest first."""
    current = service.current_token_id(
        session,
        bearer=request.headers.get("authorization", ""),
        cookie=request.cookies.get(SESSION_COOKIE),
    )
    return [_session_read(r, current) for r in sessions.list_live(session, user_id=user.id)]


@router.delete("/account/sessions/{token_id}", status_code=204)
def revoke_session(
    token_id: PathId, session: SessionDep, user: Annotated[User, require(None)]
) -> Response:
    """End one of the user's own sessions or tokens."""
    sessions.revoke(session, user_id=user.id, token_id=token_id, actor=service.actor_of(user))
    return Response(status_code=204)


@router.post("/account/tokens", response_model=ApiTokenCreated, status_code=201)
def create_token(
    body: ApiTokenCreate, session: SessionDep, user: Annotated[User, require(None)]
) -> ApiTokenCreated:
    """A named API token with an expiry, optionally narrowed to some of the role's
    permissions; the secret is in this answer only."""
    secret, row = service.create_api_token(
        session,
        user=user,
        name=body.name,
        expires_days=body.expires_days,
        scopes=body.scopes,
        read_only=body.read_only,
    )
    return ApiTokenCreated(
        id=row.id,
        access_token=secret,
        name=body.name,
        scopes=row.scopes.split() if row.scopes else None,
        expires_at=row.expires_at,
    )


@router.post("/account/password", status_code=204)
def change_password(
    body: PasswordChange,
    request: Request,
    session: SessionDep,
    user: Annotated[User, require(None)],
) -> Response:
    """Change the signed-in user's password; all their sessions and tokens end (this one
    too: sign in again)."""
    service.change_own_password(
        session,
        user_id=user.id,
        current_password=body.current_password,
        new_password=body.new_password,
        policy=_password_policy(request),
    )
    return Response(status_code=204)


# --------------------------------------------------------------------------- administration


@router.get("/users", response_model=list[UserRead])
def list_users(
    session: SessionDep, user: Annotated[User, require(Permission.user_read)]
) -> list[UserRead]:
    """All users."""
    return [UserRead.of(u) for u in service.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, request: Request, session: SessionDep, user: Manager) -> UserRead:
    """Create a user (administrators); the password must pass the password policy."""
    created = service.create_user(
        session, user_in=body, actor=service.actor_of(user), policy=_password_policy(request)
    )
    return UserRead.of(created)


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: PathId, body: UserUpdate, session: SessionDep, user: Manager) -> UserRead:
    """Change a user's display name, language, e-mail address, role or active flag
    (administrators); a new role or disabling ends the user's sessions and tokens."""
    changed = service.update_user(
        session, user_id=user_id, user_in=body, actor=service.actor_of(user)
    )
    return UserRead.of(changed)


@router.post("/users/{user_id}/password", response_model=UserRead)
def reset_password(
    user_id: PathId, body: PasswordReset, request: Request, session: SessionDep, user: Manager
) -> UserRead:
    """Set a new password for a user (administrators); their sessions and tokens end."""
    changed = service.reset_password(
        session,
        user_id=user_id,
        password=body.password,
        actor=service.actor_of(user),
        policy=_password_policy(request),
    )
    return UserRead.of(changed)


@router.post("/users/{user_id}/unlock", response_model=UserRead)
def unlock(user_id: PathId, session: SessionDep, user: Manager) -> UserRead:
    """Lift a lockout after too many failed sign-ins (administrators)."""
    return UserRead.of(service.unlock(session, user_id=user_id, actor=service.actor_of(user)))


@router.delete("/users/{user_id}/second-factor", response_model=UserRead)
def reset_second_factor(user_id: PathId, session: SessionDep, user: Manager) -> UserRead:
    """Remove a user's second factor (lost phone); they enrol again at the next sign-in."""
    changed = service.reset_second_factor(session, user_id=user_id, actor=service.actor_of(user))
    return UserRead.of(changed)
