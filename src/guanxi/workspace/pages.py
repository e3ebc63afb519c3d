"""The customer 360 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.core.ids import PathId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render
from guanxi.workspace.service import customer_360

router = APIRouter()


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    customer_id: PathId,
    request: Request,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_read)],
) -> Response:
    """Profile, identifiers (masked), addresses, contacts, shipping, recent shipments, history."""
    view = customer_360(session, customer_id=customer_id, viewer=user)
    return render(request, "workspace/customer_360.html", view=view, c=view.customer)
