"""FastAPI dependencies: the database session, the current user and ``require(permission)``.

Every route declares exactly one of these; ``tests/contracts`` fails for a route that has
neither and is not on the public list.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from guanxi.core.errors import NotAuthenticated, PermissionDenied
from guanxi.core.web import get_session, run_read
from guanxi.security import service
from guanxi.security.models import User
from guanxi.security.permissions import Permission

SESSION_COOKIE = "guanxi_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

SessionDep = Annotated[Session, Depends(get_session)]


async def _csrf_from_request(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


def _user_from_credentials(request: Request, session: Session) -> tuple[User, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        row = service.resolve_token(session, secret=auth[7:].strip(), kind="api")
        if row is None:
            raise NotAuthenticated("invalid or expired token")
        csrf = None
    else:
        secret = request.cookies.get(SESSION_COOKIE)
        row = service.resolve_token(session, secret=secret, kind="web") if secret else None
        if row is None:
            raise NotAuthenticated("not signed in")
        csrf = row.csrf_token or ""
    # End the read transaction now: it returns the connection to the pool while the request
    # waits for a thread (32 waiting requests must not hold 32 connections), and a
    # following write starts a fresh transaction.
    session.commit()
    return row.user, csrf


async def current_user(request: Request, session: SessionDep) -> User:
    """The signed-in user from a bearer token or the session cookie (CSRF-checked)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    user, csrf = await run_read(request, _user_from_credentials, request, session)
    if csrf is not None:
        # Cookie-authenticated: unsafe methods must echo the session's CSRF token.
        if request.method not in SAFE_METHODS:
            sent = await _csrf_from_request(request)
            if not sent or not secrets.compare_digest(sent, csrf):
                raise PermissionDenied("CSRF token missing or wrong")
        request.state.csrf_token = csrf
    request.state.user = user
    return user


def require(permission: Permission | None) -> Any:
    """Dependency that admits a signed-in user holding ``permission`` (None: any signed-in)."""

    async def dependency(request: Request, session: SessionDep) -> User:
        user = await current_user(request, session)
        if permission is not None and not service.has_permission(user, permission):
            raise PermissionDenied(f"missing permission {permission.value}")
        return user

    dependency.__guanxi_permission__ = permission or "authenticated"  # type: ignore[attr-defined]
    return Depends(dependency)


def route_permission(dependant: Any) -> str | None:
    """The permission a route requires, found in its dependency tree (for the contract test)."""
    for dep in dependant.dependencies:
        marker = getattr(dep.call, "__guanxi_permission__", None)
        if marker is not None:
            return str(marker)
        found = route_permission(dep)
        if found:
            return found
    return None
