"""JSON routes of sales (``/api/v1/sales/...``): opportunities and their stage moves,
claiming, assigning, reopening, converting web leads, the contact log of an opportunity,
the forecast (JSON and CSV), sales teams and the lost reasons."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from guanxi.core import i18n
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId, QueryId
from guanxi.core.web import request_language
from guanxi.interactions.schemas import InteractionCreate, InteractionRead
from guanxi.sales import forecast as figures
from guanxi.sales import leads, service, teams
from guanxi.sales.enums import Stage
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import (
    Assign,
    Convert,
    Forecast,
    LostReasonIn,
    LostReasonRead,
    OpportunityCreate,
    OpportunityRead,
    OpportunityUpdate,
    Reopen,
    StageChangeRead,
    StageMove,
    TeamIn,
    TeamRead,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/sales", tags=["sales"])

Seller = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]

CSV_HEADERS = [
    N_("Month"),
    N_("Owner"),
    N_("Opportunities"),
    N_("Expected revenue (yuan)"),
    N_("Weighted revenue (yuan)"),
]


def _read(session: SessionDep, opportunity: Opportunity) -> OpportunityRead:
    return service.reads(session, [opportunity])[0]


@router.get("/opportunities", response_model=list[OpportunityRead])
def list_opportunities(
    session: SessionDep,
    user: Seller,
    stage: Annotated[list[Stage] | None, Query()] = None,
    owner_id: QueryId = None,
    unowned: bool = False,
    customer_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[OpportunityRead]:
    """The opportunities you may see (yours, your teams' if you manage one, the unowned
    leads), newest change first."""
    found = service.list_opportunities(
        session,
        viewer=user,
        stages=stage or (),
        owner_id=owner_id,
        unowned=unowned,
        customer_id=customer_id,
        limit=limit,
    )
    return service.reads(session, found)


@router.post("/opportunities", response_model=OpportunityRead, status_code=201)
def create_opportunity(
    body: OpportunityCreate, session: SessionDep, user: Seller
) -> OpportunityRead:
    """Enter an opportunity (yours unless a manager gives it to a member or the pool)."""
    return _read(session, service.create_opportunity(session, opportunity_in=body, actor=user))


@router.get("/opportunities/{opportunity_id}", response_model=OpportunityRead)
def get_opportunity(opportunity_id: PathId, session: SessionDep, user: Seller) -> OpportunityRead:
    """One opportunity (404 when it is not yours to see)."""
    return _read(
        session, service.get_opportunity(session, opportunity_id=opportunity_id, viewer=user)
    )


@router.put("/opportunities/{opportunity_id}", response_model=OpportunityRead)
def update_opportunity(
    opportunity_id: PathId, body: OpportunityUpdate, session: SessionDep, user: Seller
) -> OpportunityRead:
    """Change the editable fields (name the version you read)."""
    return _read(
        session,
        service.update_opportunity(
            session, opportunity_id=opportunity_id, opportunity_in=body, actor=user
        ),
    )


@router.post("/opportunities/{opportunity_id}/stage", response_model=OpportunityRead)
def move_stage(
    opportunity_id: PathId, body: StageMove, session: SessionDep, user: Seller
) -> OpportunityRead:
    """Move to another stage (lost needs a reason); 409 when it changed meanwhile."""
    return _read(
        session, service.move_stage(session, opportunity_id=opportunity_id, move=body, actor=user)
    )


@router.post("/opportunities/{opportunity_id}/claim", response_model=OpportunityRead)
def claim(opportunity_id: PathId, session: SessionDep, user: Seller) -> OpportunityRead:
    """Take an unowned lead from the pool (409 when someone was quicker)."""
    return _read(session, service.claim(session, opportunity_id=opportunity_id, actor=user))


@router.post("/opportunities/{opportunity_id}/assign", response_model=OpportunityRead)
def assign(
    opportunity_id: PathId, body: Assign, session: SessionDep, user: Manager
) -> OpportunityRead:
    """Give an opportunity to a member of your team (or back to the pool)."""
    return _read(
        session,
        service.assign(session, opportunity_id=opportunity_id, assign_in=body, actor=user),
    )


@router.post("/opportunities/{opportunity_id}/reopen", response_model=OpportunityRead)
def reopen(
    opportunity_id: PathId, body: Reopen, session: SessionDep, user: Manager
) -> OpportunityRead:
    """Reopen a won or lost opportunity (audited with your reason)."""
    return _read(
        session,
        service.reopen(session, opportunity_id=opportunity_id, reopen_in=body, actor=user),
    )


@router.post("/opportunities/{opportunity_id}/convert", response_model=OpportunityRead)
def convert(
    opportunity_id: PathId, body: Convert, session: SessionDep, user: Seller
) -> OpportunityRead:
    """Make a web lead a customer's (an existing one, or a new enterprise customer)."""
    return _read(
        session,
        leads.convert_lead(session, opportunity_id=opportunity_id, convert_in=body, actor=user),
    )


@router.get("/opportunities/{opportunity_id}/history", response_model=list[StageChangeRead])
def history(opportunity_id: PathId, session: SessionDep, user: Seller) -> list[StageChangeRead]:
    """The stage moves, oldest first."""
    return [
        StageChangeRead.model_validate(c)
        for c in service.history(session, opportunity_id=opportunity_id, viewer=user)
    ]


@router.get("/opportunities/{opportunity_id}/interactions", response_model=list[InteractionRead])
def interactions(
    opportunity_id: PathId, session: SessionDep, user: Seller
) -> list[InteractionRead]:
    """The customer's contact log, newest first."""
    return [
        InteractionRead.model_validate(i)
        for i in service.interactions_of(session, opportunity_id=opportunity_id, viewer=user)
    ]


@router.post(
    "/opportunities/{opportunity_id}/interactions",
    response_model=InteractionRead,
    status_code=201,
)
def log_contact(
    opportunity_id: PathId, body: InteractionCreate, session: SessionDep, user: Seller
) -> InteractionRead:
    """Log a contact against the opportunity (customer taken from the opportunity)."""
    return InteractionRead.model_validate(
        service.log_contact(session, opportunity_id=opportunity_id, interaction_in=body, actor=user)
    )


@router.get("/forecast", response_model=Forecast)
def forecast(
    session: SessionDep,
    user: Seller,
    since: date | None = None,
    until: date | None = None,
    owner_id: QueryId = None,
) -> Forecast:
    """The weighted forecast by month of expected close and owner (amounts in fen)."""
    return figures.forecast(session, viewer=user, since=since, until=until, owner_id=owner_id)


@router.get(
    "/forecast.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}}
)
def forecast_csv(
    request: Request,
    session: SessionDep,
    user: Seller,
    since: date | None = None,
    until: date | None = None,
    owner_id: QueryId = None,
) -> Response:
    """The forecast as a CSV file (amounts in yuan)."""
    lang = request_language(request)
    result = figures.forecast(
        session,
        viewer=user,
        since=since,
        until=until,
        owner_id=owner_id,
        unowned_label=i18n.gettext(lang, "Unowned"),
    )
    body = figures.to_csv(
        result,
        [i18n.gettext(lang, h) for h in CSV_HEADERS],
        i18n.gettext(lang, "No close date"),
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sales-forecast.csv"'},
    )


@router.get("/teams", response_model=list[TeamRead])
def list_teams(session: SessionDep, user: Seller) -> list[TeamRead]:
    """The sales teams with their managers and members."""
    return teams.list_teams(session)


@router.post("/teams", response_model=TeamRead, status_code=201)
def create_team(body: TeamIn, session: SessionDep, user: Manager) -> TeamRead:
    """Set up a team (audited)."""
    return teams.save_team(session, team_in=body, actor=user)


@router.put("/teams/{team_id}", response_model=TeamRead)
def update_team(team_id: PathId, body: TeamIn, session: SessionDep, user: Manager) -> TeamRead:
    """Replace a team's name, manager and members (audited)."""
    return teams.save_team(session, team_in=body, actor=user, team_id=team_id)


@router.delete("/teams/{team_id}", status_code=204)
def delete_team(team_id: PathId, session: SessionDep, user: Manager) -> Response:
    """Remove a team (the opportunities stay with their owners)."""
    teams.delete_team(session, team_id=team_id, actor=user)
    return Response(status_code=204)


@router.get("/lost-reasons", response_model=list[LostReasonRead])
def lost_reasons(session: SessionDep, user: Seller) -> list[LostReasonRead]:
    """The reasons an opportunity may be lost for (switched-off ones included)."""
    return [LostReasonRead.model_validate(r) for r in teams.list_lost_reasons(session)]


@router.put("/lost-reasons", response_model=LostReasonRead)
def save_lost_reason(body: LostReasonIn, session: SessionDep, user: Manager) -> LostReasonRead:
    """Add a reason, or relabel / switch off one (audited)."""
    return LostReasonRead.model_validate(
        teams.save_lost_reason(session, reason_in=body, actor=user)
    )
