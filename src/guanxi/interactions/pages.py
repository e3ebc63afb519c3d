"""HTML pages of the contact log: the due list of an account owner, logging a contact from
the customer's page, and ticking off follow-ups."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core import clock
from guanxi.core.errors import DomainError, NotFound
from guanxi.core.ids import PathId
from guanxi.interactions import service
from guanxi.interactions.schemas import InteractionCreate
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]


@router.get("/due", response_class=HTMLResponse)
def due_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """My customers due for contact and my follow-ups due this week."""
    today = clock.now().date()
    return render(
        request,
        "interactions/due.html",
        contacts=service.due_contacts(session, owner_id=user.id, today=today),
        items=service.due_items(session, owner_id=user.id, until=today + timedelta(days=7)),
        today=today,
    )


@router.post("/customers/{customer_id}/interactions", response_class=HTMLResponse)
async def log_contact(
    customer_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """Log a contact from the customer's page; back to the page (invalid input is not
    saved and the page says so)."""
    form = await request.form()
    data = {
        "customer_id": customer_id,
        "kind": str(form.get("kind") or ""),
        "summary": str(form.get("summary") or "").strip(),
        "outcome": str(form.get("outcome") or "").strip() or None,
    }
    ticket = str(form.get("ticket_id") or "").strip()
    if ticket.isdigit() and len(ticket) < 12:
        data["ticket_id"] = int(ticket)
    try:
        service.log_interaction(session, interaction_in=InteractionCreate(**data), actor=user)
    except NotFound:
        # A customer the user may not see (or none) is answered as missing, not as input.
        raise
    except (ValidationError, DomainError):
        return RedirectResponse(f"/customers/{customer_id}?contact=invalid", status_code=303)
    return RedirectResponse(f"/customers/{customer_id}#contact-log", status_code=303)


@router.post("/action-items/{item_id}/done", response_class=HTMLResponse)
def tick(item_id: PathId, session: SessionDep, user: Writer) -> Response:
    """Tick a follow-up off the due list."""
    try:
        service.complete_item(session, item_id=item_id, actor=user)
    except DomainError:
        pass  # already done (double click) or gone: the list shows the truth
    return RedirectResponse("/due", status_code=303)
