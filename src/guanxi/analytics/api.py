"""JSON routes of the analytics (``/api/v1/analytics``): runs, rules, segment lists, and a
customer's portrait (``/api/v1/customers/{id}/analytics``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from guanxi.analytics import alerts, churn, labels, service
from guanxi.analytics.policy import AnalyticsPolicy, load_policy
from guanxi.analytics.schemas import (
    AlertRead,
    AtRiskRead,
    ChurnRead,
    ClassesRead,
    ClvRead,
    PortraitRead,
    RunRead,
    RunRequest,
    SegmentMemberRead,
    SegmentPage,
    StepRead,
)
from guanxi.core.ids import PathId
from guanxi.core.pagination import decode_cursor, encode_cursor
from guanxi.core.web import request_language
from guanxi.customers.queries import read_customer
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(tags=["analytics"])

Reader = Annotated[User, require(Permission.analytics_read)]
Manager = Annotated[User, require(Permission.analytics_manage)]
PortraitViewer = Annotated[User, require(Permission.analytics_portrait)]
# Early warnings go to the people who run the desk.
Supervisor = Annotated[User, require(Permission.ticket_manage)]

Segment = Literal[
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
    "prospect",
]
Relationship = Literal["loyal", "potential", "at_risk"]
Tier = Literal["high", "medium", "low"]


def _run_read(run: service.RunView) -> RunRead:
    return RunRead(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        as_of=run.as_of,
        steps=[StepRead.model_validate(s) for s in run.steps],
    )


@router.get("/api/v1/analytics/runs", response_model=list[RunRead])
def list_runs(
    session: SessionDep, user: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[RunRead]:
    """The newest recomputations with their steps, quality figures and errors."""
    return [_run_read(r) for r in service.list_runs(session, limit=limit)]


@router.post("/api/v1/analytics/runs", response_model=RunRead, status_code=202)
def request_run(body: RunRequest, session: SessionDep, user: Manager) -> RunRead:
    """Ask the worker to recompute (all steps, or the named ones and what they need)."""
    run = service.request_run(session, steps=body.steps, actor=user)
    return RunRead(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        as_of=run.as_of,
    )


@router.get("/api/v1/analytics/policy", response_model=AnalyticsPolicy)
def get_policy(session: SessionDep, user: Reader) -> AnalyticsPolicy:
    """The rules in force: RFM window, bins and segments, classes, CLV horizon."""
    return load_policy(session)


@router.put("/api/v1/analytics/policy", response_model=AnalyticsPolicy)
def put_policy(body: AnalyticsPolicy, session: SessionDep, user: Manager) -> AnalyticsPolicy:
    """Replace the rules (validated as a whole: every R × FM cell needs a segment)."""
    return service.save_policy(session, policy=body, actor=user)


@router.get("/api/v1/analytics/segments", response_model=SegmentPage)
def segment_list(
    session: SessionDep,
    user: Reader,
    segment: Segment | None = None,
    relationship: Relationship | None = None,
    value_tier: Tier | None = None,
    frequency_class: Tier | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SegmentPage:
    """Customers by segment, relationship, value tier or frequency class (current run)."""
    after = None
    if cursor:
        values = decode_cursor(cursor)
        after = int(values[0]) if values and isinstance(values[0], int) else None
    members = service.segment_members(
        session,
        segment=segment,
        relationship=relationship,
        value_tier=value_tier,
        frequency_class=frequency_class,
        after=after,
        limit=limit + 1,
    )
    more = len(members) > limit
    members = members[:limit]
    return SegmentPage(
        items=[SegmentMemberRead.model_validate(m) for m in members],
        next_cursor=encode_cursor([members[-1].customer_id]) if more else None,
    )


@router.get("/api/v1/customers/{customer_id}/analytics", response_model=PortraitRead)
def customer_portrait(
    customer_id: PathId, request: Request, session: SessionDep, user: PortraitViewer
) -> PortraitRead:
    """The customer's classes with why, CLV, churn risk with reasons, and how they ship."""
    # 404 for a customer the user may not see (sales: their own book).
    read_customer(session, customer_id=customer_id, viewer=user)
    view = service.portrait(
        session, customer_id=customer_id, timezone=request.app.state.settings.timezone
    )
    lang = request_language(request)
    return PortraitRead(
        customer_id=customer_id,
        as_of=view.as_of,
        classes=ClassesRead.model_validate(view.classes) if view.classes else None,
        why=[labels.reason_text(r, lang) for r in view.why],
        clv=ClvRead.model_validate(view.clv) if view.clv else None,
        churn=ChurnRead(
            risk=view.churn.risk,
            band=view.churn.band,
            action=view.churn.action,
            reasons=churn.labelled(view.churn_reasons, lang),
        )
        if view.churn
        else None,
        service_types=view.service_types,
        routes=view.routes,
        regions=view.regions,
        rhythm=view.rhythm,
    )


@router.get("/api/v1/analytics/alerts", response_model=list[AlertRead])
def list_alerts(
    session: SessionDep,
    user: Supervisor,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertRead]:
    """Early warnings, newest day first, with the ids of the cases behind each."""
    return [
        AlertRead.model_validate(a)
        for a in alerts.list_alerts(session, open_only=open_only, limit=limit)
    ]


@router.post("/api/v1/analytics/alerts/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge_alert(alert_id: PathId, session: SessionDep, user: Supervisor) -> AlertRead:
    """Mark an alert as handled (audited; doing it twice changes nothing)."""
    return AlertRead.model_validate(alerts.acknowledge(session, alert_id=alert_id, actor=user))


@router.get("/api/v1/analytics/at-risk", response_model=list[AtRiskRead])
def at_risk_list(
    request: Request,
    session: SessionDep,
    user: PortraitViewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    min_risk: Annotated[float, Query(ge=0, le=1)] = churn.MEDIUM_RISK,
) -> list[AtRiskRead]:
    """Customers most likely to churn, riskiest first, with reasons and the suggested
    action (return visit, coupon, account-manager call). Users who see only their own book
    (sales) get their own customers."""
    from guanxi.security.service import has_permission

    own = None if has_permission(user, Permission.customer_read_all) else user.id
    lang = request_language(request)
    return [
        AtRiskRead(
            customer_id=a.customer_id,
            name=a.name,
            owner_id=a.owner_id,
            risk=a.risk,
            band=a.band,
            reasons=churn.labelled(a.reasons, lang),
            action=a.action,
        )
        for a in churn.at_risk(session, limit=limit, min_risk=min_risk, owner_id=own)
    ]
