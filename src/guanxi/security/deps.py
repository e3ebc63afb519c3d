"""FastAPI dependencies: the database session, the current user and ``require(permission)``.

Every route declares exactly one of these; ``tests/contracts`` fails for a route that has
neither and is not on the public list.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import ReadConnections
from guanxi.core.errors import NotAuthenticated, PermissionDenied
from guanxi.core.web import at_request_end, get_session, run_read
from guanxi.security import service, sessions
from guanxi.security.models import User
from guanxi.security.permissions import Permission

SESSION_COOKIE = "guanxi_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

SessionDep = Annotated[Session, Depends(get_session)]
T = TypeVar("T")


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


def _credentials(request: Request, session: Session) -> tuple[User, str | None]:
    """The user of the request's bearer token or session cookie, and the session's CSRF
    secret (None for a bearer token). A browser session unused for the idle timeout is
    over. Last-seen is written when due (once a minute, its own short transaction);
    otherwise the lookup's read transaction is left open."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        secret = auth[7:].strip()
        row = service.resolve_token(session, secret=secret, kind="api")
        if row is None:
            raise NotAuthenticated("invalid or expired token")
        csrf = None
    else:
        secret = request.cookies.get(SESSION_COOKIE) or ""
        idle = timedelta(minutes=request.app.state.settings.session_idle_minutes)
        row = (
            service.resolve_token(session, secret=secret, kind="web", idle=idle) if secret else None
        )
        if row is None:
            raise NotAuthenticated("not signed in")
        csrf = row.csrf_token or ""
    if row.stale and sessions.claim_touch(hash(secret), clock.now()):
        sessions.touch(session, token_id=row.token_id)
    return row.user, csrf


def _user_from_credentials(request: Request, session: Session) -> tuple[User, str | None]:
    user, csrf = _credentials(request, session)
    # End the read transaction now: it returns the connection to the pool while the request
    # waits for a thread (32 waiting requests must not hold 32 connections), and a
    # following write starts a fresh transaction.
    session.commit()
    return user, csrf


async def _admit(request: Request, user: User, csrf: str | None) -> None:
    """Cookie-authenticated unsafe methods must echo the session's CSRF token; the user
    (and the CSRF secret, for forms) are kept on the request for the pages."""
    if csrf is not None:
        if request.method not in SAFE_METHODS:
            sent = await _csrf_from_request(request)
            if not sent or not secrets.compare_digest(sent, csrf):
                raise PermissionDenied("CSRF token missing or wrong")
        request.state.csrf_token = csrf
    request.state.user = user


async def current_user(request: Request, session: SessionDep) -> User:
    """The signed-in user from a bearer token or the session cookie (CSRF-checked)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    user, csrf = await run_read(request, _user_from_credentials, request, session)
    await _admit(request, user, csrf)
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


@dataclass(frozen=True, slots=True)
class Reader:
    """What :func:`require_read` gives a read-only JSON route: the signed-in user, admitted
    for the route's permission, and the request's session."""

    request: Request
    session: Session
    user: User

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """``fn(session, viewer=user, **kwargs)``, through :func:`run_read` (inline on
        SQLite, in the thread pool otherwise)."""
        return await run_read(self.request, fn, self.session, viewer=self.user, **kwargs)


def _admit_reader(
    request: Request, session: Session, permission: Permission
) -> tuple[User, str | None]:
    user, csrf = _credentials(request, session)
    if not service.has_permission(user, permission):
        raise PermissionDenied(f"missing permission {permission.value}")
    if not request.app.state.settings.reads_inline:
        # The read will wait for a worker thread: not while holding a pooled connection.
        session.commit()
    return user, csrf


def require_read(permission: Permission) -> Any:
    """``require(permission)`` for read-only JSON routes, as one plain dependency.

    It opens the request's session itself (closed when the request ends), resolves the
    token or session cookie, checks the permission and hands the route a :class:`Reader`.
    Where reads run inline (SQLite) the token lookup and the route's reads share one read
    transaction: one snapshot and one ``BEGIN`` instead of two, and one dependency instead
    of the three of ``SessionDep`` + ``require`` (together about a third of a 360 request's
    cost). The answers are those of ``require``: 401 without a valid token or session, 403
    without the permission, both before the route's parameters are looked at.
    """

    async def dependency(request: Request) -> Reader:
        state = request.app.state
        kept: ReadConnections | None = state.read_connections
        # Closed once the response is sent (or the error answered), as SessionDep would be.
        if kept is not None:
            # On SQLite, a connection kept open between requests (a third of the cost).
            session: Session = kept.open(state.sessionmaker)
            at_request_end(request, partial(kept.release, session))
        else:
            session = state.sessionmaker()
            at_request_end(request, session.close)
        user, csrf = await run_read(request, _admit_reader, request, session, permission)
        await _admit(request, user, csrf)
        return Reader(request, session, user)

    dependency.__guanxi_permission__ = permission  # type: ignore[attr-defined]
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
