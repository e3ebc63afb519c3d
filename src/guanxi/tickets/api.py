"""JSON routes of the service desk (``/api/v1/tickets``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from guanxi.core import clock
from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets import service
from guanxi.tickets.enums import Priority, TicketStatus, TicketType
from guanxi.tickets.schemas import (
    HandOverIn,
    SatisfactionIn,
    TicketActionIn,
    TicketCreate,
    TicketRead,
)
from guanxi.tickets.sla import SlaContext, sla_context
from guanxi.tickets.teams import teams_of

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

Reader = Annotated[User, require(Permission.ticket_read)]
Worker = Annotated[User, require(Permission.ticket_write)]


def _context(request: Request, session: SessionDep) -> SlaContext:
    return sla_context(session, request.app.state.settings.timezone)


def _read(request: Request, session: SessionDep, ticket_id: int, viewer: User) -> TicketRead:
    ticket = service.get_ticket(session, ticket_id, viewer)
    events = service.events_of(session, ticket_id)
    return service.to_read(ticket, events, clock.now(), _context(request, session))


@router.post("", response_model=TicketRead, status_code=201)
def create_ticket(
    body: TicketCreate, request: Request, session: SessionDep, user: Worker
) -> TicketRead:
    """Record a ticket (complaint, inquiry, service request, claim)."""
    ticket = service.create_ticket(session, ticket_in=body, actor=user)
    return _read(request, session, ticket.id, user)


@router.get("", response_model=list[TicketRead])
def list_tickets(
    request: Request,
    session: SessionDep,
    user: Reader,
    mine: bool = False,
    my_teams: bool = False,
    team_id: QueryId = None,
    unassigned: bool = False,
    status: TicketStatus | None = None,
    type: TicketType | None = None,  # noqa: A002 - the query parameter's public name
    priority: Priority | None = None,
    customer_id: QueryId = None,
    include_done: bool = False,
    due_within_minutes: Annotated[int | None, Query(ge=0, le=7 * 24 * 60)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[TicketRead]:
    """A queue: open tickets, urgent first, with SLA countdowns (``mine``, ``my_teams`` or
    one ``team_id``, ``unassigned``; ``due_within_minutes``: breaching soon, soonest first)."""
    now = clock.now()
    teams: tuple[int, ...] | None = None
    if my_teams:
        teams = tuple(teams_of(session, user.id))
    elif team_id is not None:
        teams = (team_id,)
    filters = service.TicketFilters(
        owner_id=user.id if mine else None,
        team_ids=teams,
        unassigned=unassigned,
        status=status,
        type=type,
        priority=priority,
        customer_id=customer_id,
        include_done=include_done,
        due_before=None
        if due_within_minutes is None
        else now + timedelta(minutes=due_within_minutes),
    )
    return service.list_tickets(
        session,
        filters=filters,
        now=now,
        ctx=_context(request, session),
        limit=limit,
        offset=offset,
        viewer=user,
    )


@router.get("/{ticket_id}", response_model=TicketRead)
def get_ticket(
    ticket_id: PathId, request: Request, session: SessionDep, user: Reader
) -> TicketRead:
    """One ticket with its SLA figures and timeline."""
    return _read(request, session, ticket_id, user)


@router.post("/{ticket_id}/take", response_model=TicketRead)
def take(ticket_id: PathId, request: Request, session: SessionDep, user: Worker) -> TicketRead:
    """Take an unowned ticket (首问负责制); 409 when someone else was first."""
    service.take(session, ticket_id=ticket_id, actor=user)
    return _read(request, session, ticket_id, user)


@router.post("/{ticket_id}/actions", response_model=TicketRead)
def act(
    ticket_id: PathId, body: TicketActionIn, request: Request, session: SessionDep, user: Worker
) -> TicketRead:
    """A workflow step (start, wait, resume, resolve, close, reopen) with a reply or note."""
    service.act(
        session,
        ticket_id=ticket_id,
        action=body.action,
        actor=user,
        version=body.version,
        note=body.note,
        reply=body.reply,
        resolution_code=body.resolution_code,
        root_cause=body.root_cause,
    )
    return _read(request, session, ticket_id, user)


@router.post("/{ticket_id}/satisfaction", response_model=TicketRead)
def satisfaction(
    ticket_id: PathId, body: SatisfactionIn, request: Request, session: SessionDep, user: Worker
) -> TicketRead:
    """Record the customer's satisfaction (1-10) told by another channel (an IVR); the
    ticket stays resolved. Survey answers write it themselves (surveys/)."""
    service.record_satisfaction(
        session, ticket_id=ticket_id, score=body.score, actor=user, comment=body.comment
    )
    return _read(request, session, ticket_id, user)


@router.post("/{ticket_id}/hand-over", response_model=TicketRead)
def hand_over(
    ticket_id: PathId, body: HandOverIn, request: Request, session: SessionDep, user: Worker
) -> TicketRead:
    """Hand the ticket to another agent, with the reason; the first owner stays on record."""
    service.hand_over(
        session, ticket_id=ticket_id, to_user_id=body.to_user_id, reason=body.reason, actor=user
    )
    return _read(request, session, ticket_id, user)
