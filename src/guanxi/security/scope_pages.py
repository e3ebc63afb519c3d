"""The page of a user's row-level scope: ``/admin/users/{user_id}/scope`` (``user.read`` to
look, ``user.manage`` to change). Regions are typed one per line (or comma-separated);
teams are ticked."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from guanxi.core.errors import DomainError
from guanxi.core.ids import PathId
from guanxi.core.web import field_messages
from guanxi.security import scope, service
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets.teams import list_teams
from guanxi.web.render import render, render_error

router = APIRouter()

Viewer = Annotated[User, require(Permission.user_read)]
Manager = Annotated[User, require(Permission.user_manage)]


def _page(
    request: Request,
    session: SessionDep,
    user_id: int,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    regions_text: str | None = None,
) -> Response:
    target = service.get_user(session, user_id=user_id)
    found = scope.read_scope(session, user_id=user_id)
    return render(
        request,
        "security/scope.html",
        status_code=status_code,
        target=target,
        teams=list_teams(session),
        chosen=set(found.team_ids),
        regions_text="\n".join(found.regions) if regions_text is None else regions_text,
        errors=errors or {},
    )


@router.get("/admin/users/{user_id}/scope")
def scope_page(user_id: PathId, request: Request, session: SessionDep, user: Viewer) -> Response:
    """The user's regions and teams (empty: the role's whole reach)."""
    return _page(request, session, user_id)


@router.post("/admin/users/{user_id}/scope")
def save_scope(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Manager,
    regions: Annotated[str, Form(max_length=3000)] = "",
    team_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Replace the user's scope; a refused value is shown beside its field."""
    names = [r for r in re.split(r"[\n,，]", regions) if r.strip()]
    try:
        scope.set_scope(
            session, user_id=user_id, regions=names, team_ids=team_ids or [], actor=user
        )
    except DomainError as exc:
        if exc.status == 404:
            return render_error(request, 404)
        errors = field_messages(request, exc)
        return _page(
            request, session, user_id, status_code=422, errors=errors, regions_text=regions
        )
    return RedirectResponse(f"/admin/users/{user_id}/scope", status_code=303)
