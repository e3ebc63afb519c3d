"""JSON routes of the customer pool (``/api/v1/pool/...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from guanxi.core import clock
from guanxi.core.ids import QueryId
from guanxi.customers.enums import CustomerKind
from guanxi.pool import service
from guanxi.pool.enums import PoolEventKind
from guanxi.pool.policy import PoolPolicy, load_policy, save_policy
from guanxi.pool.returns import run_returns
from guanxi.pool.schemas import (
    AssignIn,
    AssignResult,
    ClaimIn,
    ClaimsToday,
    PoolEventPage,
    PoolEventRead,
    PoolPage,
    ReleaseIn,
    ReturnRunRead,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/pool", tags=["pool"])

Salesperson = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]
Days = Annotated[int | None, Query(ge=0, le=3650)]
Text = Annotated[str | None, Query(max_length=50)]
Cursor = Annotated[str | None, Query(max_length=500)]
Limit = Annotated[int, Query(ge=1, le=200)]


def _timezone(request: Request) -> str:
    return str(request.app.state.settings.timezone)


@router.get("", response_model=PoolPage)
def list_pool(
    session: SessionDep,
    user: Salesperson,
    region: Text = None,
    kind: CustomerKind | None = None,
    industry: Text = None,
    min_days_in_pool: Days = None,
    shipped_within_days: Days = None,
    idle_days: Days = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PoolPage:
    """Customers without an owner, newest first (phones masked). ``min_days_in_pool``: in
    the pool at least that long; ``shipped_within_days`` / ``idle_days``: last shipment
    within / not for that many days."""
    items, next_cursor = service.list_pool(
        session,
        filters=service.PoolFilters(
            region=region,
            kind=kind.value if kind else None,
            industry=industry,
            min_days_in_pool=min_days_in_pool,
            shipped_within_days=shipped_within_days,
            idle_days=idle_days,
        ),
        now=clock.now(),
        cursor=cursor,
        limit=limit,
    )
    return PoolPage(items=items, next_cursor=next_cursor)


@router.get("/claims/today", response_model=ClaimsToday)
def my_claims_today(request: Request, session: SessionDep, user: Salesperson) -> ClaimsToday:
    """How many customers I claimed today, against the daily cap."""
    return service.claims_today(
        session, user_id=user.id, now=clock.now(), timezone=_timezone(request)
    )


@router.post("/claim", response_model=PoolEventRead, status_code=201)
def claim(body: ClaimIn, request: Request, session: SessionDep, user: Salesperson) -> PoolEventRead:
    """Claim a customer from the pool (409 when someone was first or the daily cap is
    reached, with the reason)."""
    event = service.claim(
        session, customer_id=body.customer_id, actor=user, timezone=_timezone(request)
    )
    return service.get_event(session, event.id)


@router.post("/release", response_model=PoolEventRead, status_code=201)
def release(body: ReleaseIn, session: SessionDep, user: Salesperson) -> PoolEventRead:
    """Put one of my customers back in the pool (a sales manager: anyone's)."""
    event = service.release(session, customer_id=body.customer_id, actor=user, note=body.note)
    return service.get_event(session, event.id)


@router.post("/assign", response_model=AssignResult)
def assign(body: AssignIn, session: SessionDep, user: Manager) -> AssignResult:
    """Give customers (from the pool or another owner) to a salesperson."""
    return service.assign(session, assign_in=body, actor=user)


@router.get("/policy", response_model=PoolPolicy)
def get_policy(session: SessionDep, user: Salesperson) -> PoolPolicy:
    """The pool policy (daily cap, return rules, warning days, exempt tags)."""
    return load_policy(session)


@router.put("/policy", response_model=PoolPolicy)
def put_policy(body: PoolPolicy, session: SessionDep, user: Manager) -> PoolPolicy:
    """Replace the pool policy (audited)."""
    return save_policy(session, policy=body, actor=user)


@router.get("/history", response_model=PoolEventPage)
def history(
    session: SessionDep,
    user: Manager,
    customer_id: QueryId = None,
    user_id: QueryId = None,
    kind: PoolEventKind | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PoolEventPage:
    """Claims, releases, assignments, returns and warnings, newest first."""
    items, next_cursor = service.history(
        session,
        filters=service.HistoryFilters(
            customer_id=customer_id, user_id=user_id, kind=kind.value if kind else None
        ),
        cursor=cursor,
        limit=limit,
    )
    return PoolEventPage(items=items, next_cursor=next_cursor)


@router.post("/run", response_model=ReturnRunRead)
def run_now(request: Request, session: SessionDep, user: Manager) -> ReturnRunRead:
    """Run today's returns now (what the worker does daily; a second run changes nothing)."""
    settings = request.app.state.settings
    run = run_returns(
        session,
        now=clock.now(),
        timezone=settings.timezone,
        language=settings.default_language,
    )
    return ReturnRunRead.model_validate(run.figures())
