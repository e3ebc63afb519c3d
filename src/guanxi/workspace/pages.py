"""The customer 360 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.analytics import labels as analytics_labels
from guanxi.analytics import service as analytics
from guanxi.core import clock
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.dedupe.service import merges_of
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.tickets.service import TicketFilters, list_tickets
from guanxi.tickets.sla import sla_context
from guanxi.web.render import render
from guanxi.workspace.service import customer_360
from guanxi.workspace.timeline import service_timeline

router = APIRouter()


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    customer_id: PathId,
    request: Request,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_read)],
) -> Response:
    """Profile, identifiers (masked), addresses, contacts, shipping, recent shipments, history."""
    view = customer_360(
        session, customer_id=customer_id, viewer=user, lang=request_language(request)
    )
    # Merges are shown on the page only (the 360 API stays on its measured hot path).
    merges = (
        merges_of(session, customer_id) if has_permission(user, Permission.customer_merge) else []
    )
    now = clock.now()
    # Service-desk panels: open tickets with their SLA countdowns, and the contact log.
    tickets = (
        list_tickets(
            session,
            filters=TicketFilters(customer_id=customer_id),
            now=now,
            ctx=sla_context(session, request.app.state.settings.timezone),
            limit=20,
        )
        if has_permission(user, Permission.ticket_read)
        else []
    )
    # The analytics' portrait: classes with why, CLV, churn risk, how the customer ships.
    lang = request_language(request)
    portrait = (
        analytics.portrait(
            session, customer_id=customer_id, timezone=request.app.state.settings.timezone
        )
        if has_permission(user, Permission.analytics_portrait)
        else None
    )
    if portrait is not None and portrait.churn_reasons:
        from guanxi.analytics.churn import labelled

        portrait.churn_reasons = labelled(portrait.churn_reasons, lang)
    # One timeline of contacts, ticket steps and claims.
    timeline = service_timeline(session, customer_id=customer_id, viewer=user, lang=lang)
    return render(
        request,
        "workspace/customer_360.html",
        view=view,
        c=view.customer,
        merges=merges,
        tickets=tickets,
        timeline=timeline,
        now=now,
        portrait=portrait,
        why=[analytics_labels.reason_text(r, lang) for r in portrait.why] if portrait else [],
        alabel=lambda code: analytics_labels.name(code, lang),
    )
