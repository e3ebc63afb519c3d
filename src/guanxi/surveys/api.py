"""JSON routes of surveys (``/api/v1/surveys``): templates and their versions, the policy,
invitations by hand, agent entry of answers, outlets, and the results with their driver
analysis, before / after comparison and CSV export.

``surveys.read``: results and responses; ``surveys.manage``: templates, policy, outlets,
invitations by hand; ``surveys.enter``: answers typed in from paper or the phone.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from guanxi.core import clock
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.surveys import analysis, outlets, reading, responses, results, service, triggers
from guanxi.surveys.policy import SurveyPolicy, load_policy, save_policy
from guanxi.surveys.schemas import (
    CompareRead,
    DraftIn,
    DriversRead,
    InvitationRead,
    InviteIn,
    OutletCreate,
    OutletRead,
    ResponseIn,
    ResponseRead,
    ResultsRead,
    TemplateCreate,
    TemplateRead,
)

router = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])

Reader = Annotated[User, require(Permission.surveys_read)]
Manager = Annotated[User, require(Permission.surveys_manage)]
Enterer = Annotated[User, require(Permission.surveys_enter)]
Code = Annotated[str | None, Query(max_length=40)]
# Results default to the last 90 days.
DEFAULT_DAYS = 90


def _timezone(request: Request) -> str:
    return str(request.app.state.settings.timezone)


# Dates the results accept (outside them there is nothing, and date arithmetic overflows).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)


def check_date(value: date | None, name: str) -> date | None:
    """``value`` when it lies between FIRST_DAY and LAST_DAY; an error naming it otherwise."""
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise ValidationFailed(
            [
                FieldError(
                    ("query", name),
                    "date_range",
                    f"Choose a date between {FIRST_DAY} and {LAST_DAY}",
                    {"min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()},
                )
            ]
        )
    return value


def parse_filters(
    session: Any,
    timezone: str,
    *,
    start: date | None,
    end: date | None,
    template: str | None = None,
    trigger: str | None = None,
    channel: str | None = None,
    region: str | None = None,
    agent_id: int | None = None,
    service_type: str | None = None,
    segment: str | None = None,
) -> results.Filters:
    """Result filters from query values (a template by code; dates default to the last
    90 days up to today, local time); errors name the parameter."""
    check_date(start, "start")
    check_date(end, "end")
    today = clock.now().astimezone(ZoneInfo(timezone)).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationFailed(
            [FieldError(("query", "start"), "period_order", "The end must be after the start")]
        )
    template_id = (
        service.template_by_code(session, template, field="template").id if template else None
    )
    return results.Filters(
        start=start,
        end=end,
        template_id=template_id,
        trigger=trigger or None,
        channel=channel or None,
        region=region or None,
        agent_id=agent_id,
        service_type=service_type or None,
        segment=segment or None,
    )


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValidationFailed(
            [
                FieldError(
                    ("query", name),
                    "value_unknown",
                    f"Unknown value; expected one of: {', '.join(allowed)}",
                    {"choices": ", ".join(allowed)},
                )
            ]
        )
    return value


class FilterParams:
    """The result filters as query parameters (one dependency for every results route)."""

    def __init__(
        self,
        start: date | None = None,
        end: date | None = None,
        template: Code = None,
        trigger: Code = None,
        channel: Code = None,
        region: Code = None,
        agent_id: QueryId = None,
        service_type: Code = None,
        segment: Code = None,
    ) -> None:
        self.values: dict[str, Any] = {
            "start": start,
            "end": end,
            "template": template,
            "trigger": trigger,
            "channel": channel,
            "region": region,
            "agent_id": agent_id,
            "service_type": service_type,
            "segment": segment,
        }

    def filters(self, session: Any, timezone: str) -> results.Filters:
        """The parsed filters."""
        return parse_filters(session, timezone, **self.values)


Params = Annotated[FilterParams, Depends()]


# --------------------------------------------------------------------------- templates


@router.get("/templates", response_model=list[TemplateRead])
def list_templates(session: SessionDep, user: Reader) -> list[TemplateRead]:
    """Every template with its current version and draft."""
    return [service.template_read(session, t) for t in service.list_templates(session)]


@router.post("/templates", response_model=TemplateRead, status_code=201)
def create_template(body: TemplateCreate, session: SessionDep, user: Manager) -> TemplateRead:
    """A new template; its questions are the draft of version 1 (publish it to use it)."""
    template = service.create_template(session, template_in=body, actor=user)
    return service.template_read(session, template)


@router.get("/templates/{template_id}", response_model=TemplateRead)
def get_template(template_id: PathId, session: SessionDep, user: Reader) -> TemplateRead:
    """One template with its current version and draft."""
    return service.template_read(session, service.get_template(session, template_id))


@router.put("/templates/{template_id}/draft", response_model=TemplateRead)
def replace_draft(
    template_id: PathId, body: DraftIn, session: SessionDep, user: Manager
) -> TemplateRead:
    """Replace the draft's questions (a draft is started from the current version)."""
    service.replace_draft(session, template_id=template_id, draft_in=body, actor=user)
    return service.template_read(session, service.get_template(session, template_id))


@router.post("/templates/{template_id}/publish", response_model=TemplateRead)
def publish(template_id: PathId, session: SessionDep, user: Manager) -> TemplateRead:
    """Publish the draft: new invitations ask it; the previous version is retired."""
    service.publish(session, template_id=template_id, actor=user)
    return service.template_read(session, service.get_template(session, template_id))


# --------------------------------------------------------------------------- policy


@router.get("/policy", response_model=SurveyPolicy)
def get_policy(session: SessionDep, user: Manager) -> SurveyPolicy:
    """The survey policy (rates, gaps, expiry, reminder, campaign dates)."""
    return load_policy(session)


@router.put("/policy", response_model=SurveyPolicy)
def put_policy(body: SurveyPolicy, session: SessionDep, user: Manager) -> SurveyPolicy:
    """Replace the survey policy; audited."""
    return save_policy(session, policy=body, actor=user)


# --------------------------------------------------------------------------- invitations


@router.post("/invitations", response_model=InvitationRead, status_code=201)
def invite(body: InviteIn, session: SessionDep, user: Manager) -> InvitationRead:
    """Invite one customer by hand (SMS when they have a mobile number, else e-mail)."""
    invited = triggers.invite_by_hand(
        session, template_code=body.template, customer_id=body.customer_id, actor=user
    )
    return InvitationRead(
        id=invited.id,
        customer_id=invited.customer_id,
        channel=invited.channel,
        expires_at=invited.expires_at,
        url=invited.url,
    )


# --------------------------------------------------------------------------- responses


@router.post("/responses", response_model=ResponseRead, status_code=201)
def enter_response(body: ResponseIn, session: SessionDep, user: Enterer) -> ResponseRead:
    """Answers given on paper or the phone, typed in by an agent (recorded as theirs)."""
    response = responses.enter_answers(session, response_in=body, actor=user)
    return reading.response_read(session, response)


@router.get("/responses/{response_id}", response_model=ResponseRead)
def get_response(response_id: PathId, session: SessionDep, user: Reader) -> ResponseRead:
    """One response with its answers."""
    return reading.response_read(session, responses.get_response(session, response_id))


# --------------------------------------------------------------------------- results


@router.get("/results", response_model=ResultsRead)
def get_results(
    request: Request,
    session: SessionDep,
    user: Reader,
    params: Params,
    period: Annotated[str, Query(max_length=10)] = "month",
    by: Annotated[str, Query(max_length=20)] = "template",
) -> ResultsRead:
    """CSAT, NPS, dimension means and response rate, the trend by week or month and a
    breakdown (template, segment, region, agent, service_type, channel, trigger)."""
    tz = _timezone(request)
    f = params.filters(session, tz)
    return results.results(
        session,
        f,
        tz,
        period=_choice(period, results.PERIODS, "period"),
        by=_choice(by, results.BREAKDOWNS, "by"),
    )


@router.get("/results/drivers", response_model=DriversRead)
def get_drivers(request: Request, session: SessionDep, user: Reader, params: Params) -> DriversRead:
    """Which dimension moves overall satisfaction most: standardised OLS coefficients of
    CSAT on the dimension scores, with correlations, strongest first."""
    tz = _timezone(request)
    return analysis.drivers(session, params.filters(session, tz), tz)


@router.get("/results/compare", response_model=CompareRead)
def get_compare(
    request: Request,
    session: SessionDep,
    user: Reader,
    params: Params,
    at: date,
    days: Annotated[int, Query(ge=7, le=365)] = 30,
) -> CompareRead:
    """CSAT and NPS ``days`` days before and from ``at``: means with 95 % intervals and
    Welch's t-test p-values."""
    tz = _timezone(request)
    check_date(at, "at")
    return analysis.compare(session, params.filters(session, tz), tz, at=at, days=days)


@router.get(
    "/results/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(
    request: Request, session: SessionDep, user: Reader, params: Params
) -> StreamingResponse:
    """The filtered responses as CSV (customers by id; no names or phone numbers)."""
    tz = _timezone(request)
    f = params.filters(session, tz)
    name = f"surveys-{f.start.isoformat()}-{f.end.isoformat()}.csv"
    return StreamingResponse(
        results.export_csv(session, f, tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --------------------------------------------------------------------------- outlets


@router.get("/outlets", response_model=list[OutletRead])
def list_outlets(session: SessionDep, user: Manager) -> list[OutletRead]:
    """Every outlet with its QR link."""
    return [outlets.outlet_read(session, o) for o in outlets.list_outlets(session)]


@router.post("/outlets", response_model=OutletRead, status_code=201)
def create_outlet(body: OutletCreate, session: SessionDep, user: Manager) -> OutletRead:
    """A new outlet whose QR code opens the template's survey."""
    return outlets.outlet_read(session, outlets.create_outlet(session, outlet_in=body, actor=user))
