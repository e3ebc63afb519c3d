"""Pages of the notify domain: the in-app inbox (every signed-in user), the outbound
channels' administration (``admin_pages``) and the public unsubscribe page
(``public_pages``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from guanxi.core.ids import PathId
from guanxi.notify import admin_pages, public_pages, service
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.web.render import render

router = APIRouter()

# Every signed-in user has an inbox: the dependency only requires a session.
Anyone = Annotated[User, require(None)]


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, user: Anyone) -> Response:
    """My notifications."""
    return render(request, "notify/inbox.html", items=service.inbox(session, user_id=user.id))


@router.post("/inbox/{notification_id}/open", response_class=HTMLResponse)
def open_notification(notification_id: PathId, session: SessionDep, user: Anyone) -> Response:
    """Mark read and go where it points."""
    link = service.mark_read(session, notification_id=notification_id, user_id=user.id)
    return RedirectResponse(link or "/inbox", status_code=303)


router.include_router(admin_pages.router)
router.include_router(public_pages.router)
