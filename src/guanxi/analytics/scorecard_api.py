"""JSON routes of the team performance scorecards (``/api/v1/analytics/scorecard``): a
period's agents and teams, one agent's periods, and the scorecard as CSV or XLSX.

Every route needs ``team.performance``. Before the first ``scorecard`` run they answer 404.
Rates are fractions (0.25 = 25 %), money in fen, times as the field names say.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from guanxi.analytics import dashboards
from guanxi.analytics import scorecard as sc
from guanxi.core.errors import NotFound
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.training.api import figures_read
from guanxi.training.schemas import TrainingFiguresRead

router = APIRouter(prefix="/api/v1/analytics/scorecard", tags=["analytics"])

Reader = Annotated[User, require(Permission.team_performance)]
Kind = Literal["month", "quarter", "year"]
Start = Annotated[str | None, Query(max_length=20, examples=["2026-10", "2026-Q4", "2026"])]
TeamQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


class ScoreLineRead(BaseModel):
    """An agent's or a team's figures in a period (None: nothing to measure)."""

    dimension: Literal["agent", "team"]
    id: int
    name: str
    teams: list[str]
    tickets_handled: int
    first_response_median_min: float | None
    resolution_median_h: float | None
    sla_attainment: float | None
    reopen_rate: float | None
    satisfaction_mean: float | None
    satisfaction_answers: int
    csat_share: float | None
    claim_cost_fen: int
    claims: int
    training: TrainingFiguresRead


class ScorecardRead(BaseModel):
    """A period's scorecard."""

    run_id: int
    as_of: datetime
    period: Kind
    period_start: date
    agents: list[ScoreLineRead]
    teams: list[ScoreLineRead]


class AgentPeriodRead(BaseModel):
    """One period of an agent's trend."""

    period_start: date
    figures: ScoreLineRead


class AgentTrendRead(BaseModel):
    """An agent's periods, oldest first."""

    run_id: int
    as_of: datetime
    period: Kind
    user_id: int
    name: str
    teams: list[str]
    periods: list[AgentPeriodRead]


def _line(line: sc.Line) -> ScoreLineRead:
    v, n = line.values, line.counts
    S = sc.ScoreMetric
    return ScoreLineRead(
        dimension="agent" if line.dimension == "agent" else "team",
        id=line.member_id,
        name=line.name,
        teams=line.teams,
        tickets_handled=int(v.get(S.tickets_handled) or 0),
        first_response_median_min=v.get(S.first_response_median_min),
        resolution_median_h=v.get(S.resolution_median_h),
        sla_attainment=v.get(S.sla_attainment),
        reopen_rate=v.get(S.reopen_rate),
        satisfaction_mean=v.get(S.satisfaction_mean),
        satisfaction_answers=int(n.get(S.satisfaction_mean) or 0),
        csat_share=v.get(S.csat_share),
        claim_cost_fen=int(v.get(S.claim_cost_fen) or 0),
        claims=int(n.get(S.claim_cost_fen) or 0),
        training=figures_read(line.training),
    )


def _run(request: Request, session: SessionDep) -> sc.ScoreRun:
    run = sc.current_run(session, request.app.state.settings.timezone)
    if run is None:
        raise NotFound("the scorecards have not been computed yet")
    return run


def _card(
    request: Request, session: SessionDep, period: Kind, start: str | None, team: int | None
) -> sc.Scorecard:
    run = _run(request, session)
    first = sc.parse_start(period, start, run.today)
    return sc.scorecard(session, run=run, kind=period, start=first, team_id=team)


@router.get("", response_model=ScorecardRead)
def get_scorecard(
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Kind = "month",
    start: Start = None,
    team: TeamQuery = None,
) -> ScorecardRead:
    """Agents and teams of one month (``2026-10``), quarter (``2026-Q4``) or year
    (``2026``); the current period by default; ``team``: that team's members only."""
    card = _card(request, session, period, start, team)
    return ScorecardRead(
        run_id=card.run.run_id,
        as_of=card.run.as_of,
        period=period,
        period_start=card.start,
        agents=[_line(line) for line in card.agents],
        teams=[_line(line) for line in card.teams],
    )


@router.get("/agents/{user_id}", response_model=AgentTrendRead)
def get_agent(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Kind = "month",
    start: Start = None,
    periods: Annotated[int, Query(ge=1, le=36)] = 6,
) -> AgentTrendRead:
    """One agent's last ``periods`` periods up to ``start``, oldest first."""
    run = _run(request, session)
    first = sc.parse_start(period, start, run.today)
    trend = sc.agent_trend(
        session, run=run, user_id=user_id, kind=period, start=first, count=periods
    )
    return AgentTrendRead(
        run_id=run.run_id,
        as_of=run.as_of,
        period=period,
        user_id=trend.user_id,
        name=trend.name,
        teams=trend.teams,
        periods=[
            AgentPeriodRead(period_start=p, figures=_line(line))
            for p, line in zip(trend.periods, trend.lines, strict=True)
        ],
    )


@router.get("/export")
def export_scorecard(
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Kind = "month",
    start: Start = None,
    team: TeamQuery = None,
    format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the query parameter's public name
) -> Response:
    """The scorecard as CSV (UTF-8 with a byte-order mark, for Excel) or XLSX: agents,
    then teams; rates in %, money in yuan."""
    card = _card(request, session, period, start, team)
    table = sc.scorecard_table(card, request_language(request))
    if format == "csv":
        content, media = dashboards.to_csv(table), "text/csv; charset=utf-8"
    else:
        content = dashboards.to_xlsx(table, sheet="scorecard")
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"scorecard-{sc.start_text(period, card.start)}.{format}"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
