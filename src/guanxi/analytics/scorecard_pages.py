"""The team performance pages (``/analytics/scorecard``): a period's scorecard of agents
and teams, sortable by any column, and one agent's periods side by side with their
training history. Guarded by ``team.performance``.

Ticket figures come from the newest ``scorecard`` run; training figures from the training
tables as they are now (see :mod:`guanxi.analytics.scorecard`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.analytics import scorecard as sc
from guanxi.core import i18n
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets.teams import list_teams
from guanxi.training.enums import LABELS as TRAINING_LABELS
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.team_performance)]
Text = Annotated[str | None, Query(max_length=20)]
TeamQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


def _render(request: Request, template: str, **values: Any) -> Response:
    lang = request_language(request)

    def tlabel(code: str | None) -> str:
        return i18n.gettext(lang, TRAINING_LABELS.get(code, code)) if code else ""

    helpers: dict[str, Any] = {
        "columns": sc.COLUMNS,
        "show": lambda column, line: sc.display(column, line, lang),
        "period_name": sc.period_name,
        "start_text": sc.start_text,
        "kinds": sc.KINDS,
        "tlabel": tlabel,
    }
    return render(request, template, **helpers, **values)


def _kind(period: str | None) -> str:
    # parse_start refuses an unknown kind with the field named.
    return period or "month"


def _sort(sort: str | None) -> str:
    return sort if sort in sc.SORT_KEYS else "name"


@router.get("/analytics/scorecard", response_class=HTMLResponse)
def scorecard_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Text = None,
    start: Text = None,
    sort: Text = None,
    dir: Text = None,  # noqa: A002 - the query parameter's public name
    team: TeamQuery = None,
) -> Response:
    """Agents and teams of one month, quarter or year: tickets handled, response and
    resolution times, SLA attainment, reopen rate, satisfaction, claim cost, training."""
    run = sc.current_run(session, request.app.state.settings.timezone)
    if run is None:
        return _render(request, "analytics/scorecard_empty.html")
    kind = _kind(period)
    first = sc.parse_start(kind, start, run.today)
    card = sc.scorecard(
        session,
        run=run,
        kind=kind,
        start=first,
        sort=_sort(sort),
        descending=dir == "desc",
        team_id=team,
    )
    base = {"period": kind, "start": sc.start_text(kind, first)}
    if team is not None:
        base["team"] = str(team)

    def sort_url(key: str) -> str:
        # A second click on the sorted column turns the order round.
        flip = "asc" if card.sort == key and card.descending else "desc"
        if key == "name":
            flip = "desc" if card.sort == "name" and not card.descending else "asc"
        return "?" + urlencode({**base, "sort": key, "dir": flip})

    return _render(
        request,
        "analytics/scorecard.html",
        run=run,
        card=card,
        teams=list_teams(session),
        team=team,
        sort_url=sort_url,
        export_params=urlencode(base),
    )


@router.get("/analytics/scorecard/agents/{user_id}", response_class=HTMLResponse)
def agent_page(
    user_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    period: Text = None,
    start: Text = None,
) -> Response:
    """One agent: their last periods side by side and their training history."""
    run = sc.current_run(session, request.app.state.settings.timezone)
    if run is None:
        return _render(request, "analytics/scorecard_empty.html")
    kind = _kind(period)
    first = sc.parse_start(kind, start, run.today)
    trend = sc.agent_trend(
        session, run=run, user_id=user_id, kind=kind, start=first, count=6 if kind == "month" else 4
    )
    return _render(
        request,
        "analytics/scorecard_agent.html",
        run=run,
        trend=trend,
        kind=kind,
        start=first,
        available=sc.available_periods(session, run, kind),
    )
