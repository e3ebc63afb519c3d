"""HTML pages of the service desk: queues with SLA countdowns, a new-ticket form, and the
ticket page with its timeline, workflow buttons and hand-over."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core import clock, i18n
from guanxi.core.errors import Conflict, DomainError, ValidationFailed
from guanxi.core.ids import MAX_ID, PathId
from guanxi.core.web import (
    field_errors_from_pydantic,
    request_language,
    translate_code,
    translate_field_error,
)
from guanxi.customers.queries import CustomerFilters, list_customers
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission, list_users
from guanxi.shipments.service import find_by_waybill, recent_summaries
from guanxi.tickets import categories, service
from guanxi.tickets.enums import (
    LABELS,
    TRANSITIONS,
    Priority,
    Severity,
    TicketAction,
    TicketChannel,
    TicketStatus,
    TicketType,
)
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.sla import SlaContext, sla_context
from guanxi.tickets.teams import list_teams, teams_of
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.ticket_read)]
Worker = Annotated[User, require(Permission.ticket_write)]

QUEUES = ("mine", "team", "unassigned", "soon", "open", "done")
# "Breaching soon": the nearest target falls due within this many minutes (or is late).
SOON_MINUTES = 60


def _context(request: Request, session: SessionDep) -> SlaContext:
    return sla_context(session, request.app.state.settings.timezone)


def _countdown(due: datetime | None, now: datetime) -> tuple[str, int | None]:
    """("ok" | "soon" | "late" | "paused", minutes left (negative when late))."""
    if due is None:
        return "paused", None
    minutes = int((due - now).total_seconds() // 60)
    if minutes < 0:
        return "late", minutes
    return ("soon" if minutes < 60 else "ok"), minutes


def _helpers(request: Request) -> dict[str, Any]:
    now = clock.now()
    lang = request_language(request)

    def tlabel(value: str | None) -> str:
        return i18n.gettext(lang, LABELS.get(value or "", value or "")) if value else ""

    return {"now": now, "tlabel": tlabel, "countdown": lambda due: _countdown(due, now)}


@router.get("/tickets", response_class=HTMLResponse)
def queue(
    request: Request,
    session: SessionDep,
    user: Reader,
    view: Annotated[str, Query(pattern="^(mine|team|unassigned|soon|open|done)$")] = "mine",
    type: Annotated[TicketType | None, Query()] = None,  # noqa: A002 - the query's public name
    priority: Annotated[Priority | None, Query()] = None,
) -> Response:
    """The agent's queues: mine, my teams', unassigned, breaching soon, all open, done;
    filtered by type and priority. The table refreshes itself every minute (htmx)."""
    now = clock.now()
    filters = service.TicketFilters(
        owner_id=user.id if view == "mine" else None,
        team_ids=tuple(teams_of(session, user.id)) if view == "team" else None,
        unassigned=view == "unassigned",
        status=TicketStatus.closed if view == "done" else None,
        type=type,
        priority=priority,
        due_before=now + timedelta(minutes=SOON_MINUTES) if view == "soon" else None,
    )
    tickets = service.list_tickets(
        session, filters=filters, now=now, ctx=_context(request, session), limit=100, viewer=user
    )
    lang = request_language(request)
    return render(
        request,
        "tickets/queue.html",
        tickets=tickets,
        view=view,
        views=QUEUES,
        type=type.value if type else "",
        priority=priority.value if priority else "",
        types=[(t.value, i18n.gettext(lang, LABELS[t.value])) for t in TicketType],
        priorities=[(p.value, i18n.gettext(lang, LABELS[p.value])) for p in Priority],
        query=urlencode({k: v for k, v in (("type", type), ("priority", priority)) if v}),
        **_helpers(request),
    )


def _form(
    request: Request,
    session: SessionDep,
    values: dict[str, Any],
    errors: dict[str, str],
    code: int = 200,
) -> Response:
    lang = request_language(request)

    def choices(values: list[str]) -> list[tuple[str, str]]:
        return [(v, i18n.gettext(lang, LABELS.get(v, v))) for v in values]

    options = {
        "types": choices([t.value for t in TicketType]),
        "channels": choices([c.value for c in TicketChannel]),
        "severities": choices([s.value for s in Severity]),
        "categories": [
            (n.code, "\u3000" * n.depth + n.name(lang))
            for n in categories.tree(session, active_only=True)
        ],
    }
    return render(
        request, "tickets/form.html", status_code=code, values=values, errors=errors, **options
    )


@router.get("/tickets/new", response_class=HTMLResponse)
def new_ticket(
    request: Request,
    session: SessionDep,
    user: Worker,
    customer_id: Annotated[int | None, Query(gt=0)] = None,
    waybill_no: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The new-ticket form, prefilled from a customer's page or a waybill."""
    values: dict[str, Any] = {"type": "complaint", "channel": "hotline", "severity": "minor"}
    values |= {"customer_id": customer_id or "", "waybill_no": waybill_no or ""}
    return _form(request, session, values, {})


@router.post("/tickets/caller", response_class=HTMLResponse)
async def caller(request: Request, session: SessionDep, user: Worker) -> Response:
    """The new-ticket form's caller lookup (htmx): customers with this phone number and
    their recent waybills, each a button that fills the form."""
    form = await request.form()
    phone = str(form.get("caller_phone") or "").strip()[:40]
    found: list[tuple[Any, list[Any]]] = []
    if len(phone) >= 5:
        customers, _next = list_customers(
            session, filters=CustomerFilters(q=phone), viewer=user, limit=5
        )
        found = [(c, recent_summaries(session, customer_id=c.id, limit=5)) for c in customers]
    return render(request, "tickets/_caller.html", found=found, phone=phone)


@router.post("/tickets/suggest", response_class=HTMLResponse)
async def suggest(request: Request, session: SessionDep, user: Worker) -> Response:
    """The new-ticket form's suggestion (htmx): the category and priority the complaint-text
    model reads in the subject and description. While the agent has not picked a category
    the top suggestion is preselected (an out-of-band swap of the select)."""
    from guanxi.analytics.complaints import current_model

    form = await request.form()
    subject = str(form.get("subject") or "")[:200]
    description = str(form.get("description") or "")[:4000]
    chosen = str(form.get("category") or "")
    model = current_model(session) if (subject.strip() or description.strip()) else None
    if model is None:
        return render(request, "tickets/_suggest.html", categories=[], priorities=[])
    top_categories, top_priority = model.suggest_all(subject, description)
    lang = request_language(request)
    nodes = {n.code: n for n in categories.tree(session, active_only=True)}
    found = [(code, p, nodes[code].name(lang)) for code, p in top_categories if code in nodes]
    options = [(n.code, "\u3000" * n.depth + n.name(lang)) for n in nodes.values()]
    return render(
        request,
        "tickets/_suggest.html",
        categories=found,
        priorities=[
            (code, p, i18n.gettext(lang, LABELS.get(code, code))) for code, p in top_priority
        ],
        # Preselect only an empty choice: never overrule the agent.
        preselect=found[0][0] if found and not chosen else None,
        options=options,
    )


@router.post("/tickets", response_class=HTMLResponse)
async def create_ticket(request: Request, session: SessionDep, user: Worker) -> Response:
    """Create from the form; invalid fields are shown beside the field."""
    form = await request.form()
    data = {
        k: v.strip()
        for k in (
            "type",
            "channel",
            "severity",
            "customer_id",
            "waybill_no",
            "category",
            "subject",
            "description",
            "contact_email",
        )
        if isinstance(v := form.get(k), str) and v.strip()
    }
    tags = [t.strip() for t in str(form.get("tags") or "").replace("，", ",").split(",")]
    data_in: dict[str, Any] = {**data, "tags": [t for t in tags if t]}
    data["tags"] = str(form.get("tags") or "")
    lang = request_language(request)
    try:
        ticket = service.create_ticket(session, ticket_in=TicketCreate(**data_in), actor=user)
    except ValidationError as exc:
        errors = field_errors_from_pydantic(list(exc.errors()))
        shown = {str(e.loc[0]): translate_field_error(e, lang) for e in errors if e.loc}
        return _form(request, session, data, shown, 422)
    except ValidationFailed as exc:
        shown = {str(e.loc[0]): translate_field_error(e, lang) for e in exc.errors}
        return _form(request, session, data, shown, 422)
    return RedirectResponse(f"/tickets/{ticket.id}", status_code=303)


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    ticket_id: PathId, request: Request, session: SessionDep, user: Reader, error: str | None = None
) -> Response:
    """The ticket: facts, SLA countdowns, timeline, the shipment's steps, actions."""
    ticket = service.get_ticket(session, ticket_id, user)
    events = service.events_of(session, ticket_id)
    read = service.to_read(ticket, events, clock.now(), _context(request, session))
    shipment = find_by_waybill(session, ticket.waybill_no) if ticket.waybill_no else None
    may_work = has_permission(user, Permission.ticket_write) and (
        ticket.owner_id == user.id or has_permission(user, Permission.ticket_manage)
    )
    actions = [a for a in TRANSITIONS[TicketStatus(ticket.status)] if a is not TicketAction.assign]
    users = {u.id: u.display_name for u in list_users(session)}
    agents = [
        (u.id, u.display_name)
        for u in list_users(session)
        if u.is_active and u.id != ticket.owner_id and has_permission(u, Permission.ticket_write)
    ]
    lang = request_language(request)
    category = next(
        (n.name(lang) for n in categories.tree(session) if n.code == ticket.category),
        ticket.category,
    )
    team = next((t.name for t in list_teams(session) if t.id == ticket.team_id), None)
    return render(
        request,
        "tickets/detail.html",
        t=read,
        category_name=category,
        team_name=team,
        shipment=shipment,
        may_work=may_work,
        may_take=ticket.owner_id is None and has_permission(user, Permission.ticket_write),
        actions=actions,
        users=users,
        agents=agents,
        error=_error_text(request, error),
        **_helpers(request),
    )


def _back(ticket_id: int, exc: DomainError | None = None) -> Response:
    """Back to the ticket page; a refusal travels as its code (and parameters) and is shown
    there in the user's language."""
    if exc is None:
        return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)
    if isinstance(exc, ValidationFailed):
        code, raw = exc.errors[0].code, exc.errors[0].params
    else:
        code, raw = exc.message, {k: v for k, v in exc.params.items() if k != "field"}
    query = urlencode({"error": code, **{k: str(v) for k, v in raw.items()}})
    return RedirectResponse(f"/tickets/{ticket_id}?{query}", status_code=303)


def _error_text(request: Request, code: str | None) -> str | None:
    """The message of a refusal code from the query string (unknown codes are dropped)."""
    if not code:
        return None
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "error"}
    return translate_code(code, request_language(request), params)


@router.post("/tickets/{ticket_id}/take", response_class=HTMLResponse)
def take(ticket_id: PathId, request: Request, session: SessionDep, user: Worker) -> Response:
    """Take the ticket; if someone was first, say so on the ticket page."""
    try:
        service.take(session, ticket_id=ticket_id, actor=user)
    except Conflict as exc:
        return _back(ticket_id, exc)
    return _back(ticket_id)


@router.post("/tickets/{ticket_id}/act", response_class=HTMLResponse)
async def act(ticket_id: PathId, request: Request, session: SessionDep, user: Worker) -> Response:
    """A workflow button, with the reply or note typed above it."""
    form = await request.form()
    action = str(form.get("action") or "")
    if action not in TicketAction._value2member_map_:
        return _back(ticket_id, Conflict("ticket_action_unknown"))
    note = str(form.get("note") or "").strip() or None
    try:
        service.act(
            session,
            ticket_id=ticket_id,
            action=TicketAction(action),
            actor=user,
            version=int(str(form.get("version") or "0") or 0),
            note=note,
            reply=form.get("reply") == "1",
            resolution_code=str(form.get("resolution_code") or "").strip()[:30] or None,
            root_cause=str(form.get("root_cause") or "").strip()[:50] or None,
        )
    except (Conflict, ValidationFailed) as exc:
        return _back(ticket_id, exc)
    return _back(ticket_id)


@router.post("/tickets/{ticket_id}/satisfaction", response_class=HTMLResponse)
def satisfaction(ticket_id: PathId, session: SessionDep, user: Worker) -> Response:
    """The customer's satisfaction as told on the phone is typed into the survey now
    (surveys/): an old form posting here is sent there (a ticket the user may not see is
    missing)."""
    service.get_ticket(session, ticket_id, user)
    return RedirectResponse(f"/surveys/enter?ticket_id={ticket_id}", status_code=303)


@router.post("/tickets/{ticket_id}/hand-over", response_class=HTMLResponse)
async def hand_over(
    ticket_id: PathId, request: Request, session: SessionDep, user: Worker
) -> Response:
    """Hand the ticket over, with the reason."""
    form = await request.form()
    try:
        to_user = int(str(form.get("to_user_id") or "0"))
        if not 1 <= to_user <= MAX_ID:
            raise ValueError(to_user)
        reason = str(form.get("reason") or "").strip()
        if len(reason) < 2:
            raise Conflict("ticket_handover_reason")
        service.hand_over(
            session, ticket_id=ticket_id, to_user_id=to_user, reason=reason, actor=user
        )
    except ValueError:
        return _back(ticket_id, Conflict("ticket_receiver"))
    except (Conflict, ValidationFailed) as exc:
        return _back(ticket_id, exc)
    return _back(ticket_id)
