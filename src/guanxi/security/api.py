"""JSON routes of authentication and users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from guanxi.core.ids import PathId
from guanxi.security import service
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.schemas import TokenRead, TokenRequest, UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenRead)
def issue_token(body: TokenRequest, request: Request, session: SessionDep) -> TokenRead:
    """Exchange a username and password for a bearer token."""
    user = service.authenticate(session, username=body.username, password=body.password)
    secret, row = service.issue_token(
        session, user=user, kind="api", hours=request.app.state.settings.token_hours
    )
    return TokenRead(access_token=secret, expires_at=row.expires_at)


@router.get("/me", response_model=UserRead)
def me(user: Annotated[User, require(None)]) -> UserRead:
    """The signed-in user and their permissions."""
    read = UserRead.model_validate(user)
    read.permissions = service.permissions_of(user)
    return read


@router.get("/users", response_model=list[UserRead])
def list_users(
    session: SessionDep, user: Annotated[User, require(Permission.user_read)]
) -> list[UserRead]:
    """All users."""
    return [UserRead.model_validate(u) for u in service.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(
    body: UserCreate, session: SessionDep, user: Annotated[User, require(Permission.user_manage)]
) -> UserRead:
    """Create a user (administrators)."""
    created = service.create_user(session, user_in=body, actor=service.actor_of(user))
    return UserRead.model_validate(created)


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(
    user_id: PathId,
    body: UserUpdate,
    session: SessionDep,
    user: Annotated[User, require(Permission.user_manage)],
) -> UserRead:
    """Change a user's display name, language or e-mail address (administrators)."""
    changed = service.update_user(
        session, user_id=user_id, user_in=body, actor=service.actor_of(user)
    )
    return UserRead.model_validate(changed)
