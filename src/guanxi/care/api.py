"""JSON routes of customer-care automation (``/api/v1/care/...``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from guanxi.care import policy as care_policy
from guanxi.care import service
from guanxi.care.calendar import festival_dates
from guanxi.care.preview import preview as preview_rule
from guanxi.care.run import run_day
from guanxi.care.schemas import (
    CareRuleIn,
    CareRuleRead,
    CareRuleUpdate,
    CareRunRead,
    FestivalRead,
    PreviewRead,
    RecipientRead,
)
from guanxi.core import clock
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/care", tags=["care"])

Reader = Annotated[User, require(Permission.care_read)]
Manager = Annotated[User, require(Permission.care_manage)]


def today(request: Request) -> date:
    """Today in the site's timezone."""
    return clock.now().astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


def check_day(request: Request, day: date, field: str = "day") -> date:
    """A day within a year of today (previews and runs look no further)."""
    now = today(request)
    if abs((day - now).days) > 366:
        raise ValidationFailed(
            [FieldError((field,), "care_date_range", "Choose a date within a year of today")]
        )
    return day


@router.get("/rules", response_model=list[CareRuleRead])
def list_rules(session: SessionDep, user: Reader) -> list[CareRuleRead]:
    """Every care rule, switched-on first."""
    return [CareRuleRead.model_validate(r) for r in service.list_rules(session)]


@router.post("/rules", response_model=CareRuleRead, status_code=201)
def create_rule(body: CareRuleIn, session: SessionDep, user: Manager) -> CareRuleRead:
    """Add a rule (switched off: preview it first)."""
    return CareRuleRead.model_validate(service.create_rule(session, rule_in=body, actor=user))


@router.get("/rules/{rule_id}", response_model=CareRuleRead)
def get_rule(rule_id: PathId, session: SessionDep, user: Reader) -> CareRuleRead:
    """One rule."""
    return CareRuleRead.model_validate(service.get_rule(session, rule_id))


@router.put("/rules/{rule_id}", response_model=CareRuleRead)
def update_rule(
    rule_id: PathId, body: CareRuleUpdate, session: SessionDep, user: Manager
) -> CareRuleRead:
    """Change a rule (name the version you read)."""
    return CareRuleRead.model_validate(
        service.update_rule(session, rule_id=rule_id, rule_in=body, actor=user)
    )


@router.post("/rules/{rule_id}/enable", response_model=CareRuleRead)
def enable_rule(rule_id: PathId, session: SessionDep, user: Manager) -> CareRuleRead:
    """Switch a rule on (audited)."""
    return CareRuleRead.model_validate(
        service.set_enabled(session, rule_id=rule_id, enabled=True, actor=user)
    )


@router.post("/rules/{rule_id}/disable", response_model=CareRuleRead)
def disable_rule(rule_id: PathId, session: SessionDep, user: Manager) -> CareRuleRead:
    """Switch a rule off (audited)."""
    return CareRuleRead.model_validate(
        service.set_enabled(session, rule_id=rule_id, enabled=False, actor=user)
    )


@router.get("/rules/{rule_id}/preview", response_model=PreviewRead)
def preview(
    rule_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    day: Annotated[date | None, Query(description="local day; default today")] = None,
) -> PreviewRead:
    """Who the rule would reach on ``day``, who it would leave out and why, and a sample
    of recipients (masked) with their messages."""
    chosen = check_day(request, day or today(request))
    settings = request.app.state.settings
    result = preview_rule(
        session,
        rule_id=rule_id,
        day=chosen,
        timezone=settings.timezone,
        language=settings.default_language,
    )
    plan = result.plan
    return PreviewRead(
        rule_id=rule_id,
        day=chosen,
        occasion=plan.occasion,
        occasion_label="、".join(f.name_zh for f in plan.festivals) or plan.rule.kind,
        reached=result.reached,
        eligible=plan.eligible,
        outside_audience=plan.outside_audience,
        no_consent=plan.no_consent,
        no_contact=plan.no_contact,
        capped=plan.capped,
        already_ran=result.already_ran,
        sample=[RecipientRead(**vars(s)) for s in result.sample],
    )


@router.get("/runs", response_model=list[CareRunRead])
def list_runs(
    session: SessionDep,
    user: Reader,
    rule_id: QueryId = None,
    since: date | None = None,
    until: date | None = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CareRunRead]:
    """Run history, newest day first (``active``: only days with eligible customers)."""
    return [
        CareRunRead.model_validate(r)
        for r in service.list_runs(
            session, rule_id=rule_id, since=since, until=until, with_activity=active, limit=limit
        )
    ]


class RunRequest(BaseModel):
    """Run the daily care run for a day now (``dry_run``: count only, write nothing)."""

    model_config = ConfigDict(extra="forbid")

    day: date | None = None
    dry_run: bool = True


class RuleFigures(BaseModel):
    """One rule's figures in a run."""

    rule_id: int
    name: str
    occasion: date
    status: str
    eligible: int = 0
    queued: int = 0
    capped: int = 0
    no_consent: int = 0
    no_contact: int = 0
    outside_audience: int = 0


class RunResult(BaseModel):
    """What a run did."""

    day: date
    dry_run: bool
    rules: list[RuleFigures]


@router.post("/runs", response_model=RunResult)
def run(body: RunRequest, request: Request, session: SessionDep, user: Manager) -> RunResult:
    """Run (or dry-run) the day's switched-on rules; rules that already ran are skipped."""
    chosen = check_day(request, body.day or today(request))
    settings = request.app.state.settings
    result = run_day(
        session,
        day=chosen,
        dry_run=body.dry_run,
        timezone=settings.timezone,
        language=settings.default_language,
    )
    return RunResult(
        day=chosen,
        dry_run=body.dry_run,
        rules=[
            RuleFigures(
                rule_id=o.rule_id, name=o.name, occasion=o.occasion, status=o.status, **o.figures
            )
            for o in result.outcomes
        ],
    )


@router.get("/policy", response_model=care_policy.CarePolicy)
def get_policy(session: SessionDep, user: Reader) -> care_policy.CarePolicy:
    """The frequency cap, default send time and company name."""
    return care_policy.load_policy(session)


@router.put("/policy", response_model=care_policy.CarePolicy)
def put_policy(
    body: care_policy.CarePolicy, session: SessionDep, user: Manager
) -> care_policy.CarePolicy:
    """Replace the care policy (audited)."""
    return care_policy.save_policy(session, policy=body, actor=user)


@router.get("/festivals", response_model=list[FestivalRead])
def festivals(
    request: Request,
    user: Reader,
    year: Annotated[int | None, Query(ge=1901, le=2098)] = None,
) -> list[FestivalRead]:
    """The festivals of a year with their dates (lunar festivals computed)."""
    chosen = year or today(request).year
    return [
        FestivalRead(day=day, code=f.code, name_zh=f.name_zh, name_en=f.name_en, lunar=f.is_lunar)
        for day, f in festival_dates(chosen)
    ]
