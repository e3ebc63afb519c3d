"""Early-warning pages: the list of alerts and one alert with the cases behind it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from guanxi.analytics import alerts
from guanxi.core.ids import PathId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Supervisor = Annotated[User, require(Permission.ticket_manage)]


@router.get("/analytics/alerts", response_class=HTMLResponse)
def alert_list(
    request: Request, session: SessionDep, user: Supervisor, open_only: bool = False
) -> Response:
    """Early warnings, newest first; open ones highlighted."""
    return render(
        request,
        "analytics/alerts.html",
        alerts=alerts.list_alerts(session, open_only=open_only),
        open_only=open_only,
    )


@router.get("/analytics/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(
    alert_id: PathId, request: Request, session: SessionDep, user: Supervisor
) -> Response:
    """One alert: the figures and the tickets or shipments behind it."""
    alert = alerts.get_alert(session, alert_id)
    return render(request, "analytics/alert.html", alert=alert, cases=alerts.cases(session, alert))


@router.post("/analytics/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: PathId, session: SessionDep, user: Supervisor) -> Response:
    """Mark the alert as handled, back to its page."""
    alerts.acknowledge(session, alert_id=alert_id, actor=user)
    return RedirectResponse(f"/analytics/alerts/{alert_id}", status_code=303)
