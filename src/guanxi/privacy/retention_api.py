"""JSON routes of retention and the record of processing (``/api/v1/privacy/...``):
the retention policies (read: ``privacy.read``; change: ``privacy.manage``), a preview of
the purge (``privacy.read``), a purge run (``privacy.manage``), the runs with their report
(JSON or CSV) and the record of processing as JSON or CSV (audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.privacy import retention
from guanxi.privacy.processing import export_record
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of

router = APIRouter(prefix="/api/v1", tags=["privacy"])

Reader = Annotated[User, require(Permission.privacy_read)]
Officer = Annotated[User, require(Permission.privacy_manage)]


@router.get("/privacy/retention/policies", response_model=list[retention.PolicyRead])
def list_policies(session: SessionDep, user: Reader) -> list[retention.PolicyRead]:
    """Every data category's retention period, in the order the purge runs them."""
    return retention.list_policies(session)


@router.put("/privacy/retention/policies/{category}", response_model=retention.PolicyRead)
def put_policy(
    category: Annotated[str, Path(max_length=40)],
    body: retention.PolicyUpdate,
    session: SessionDep,
    user: Officer,
) -> retention.PolicyRead:
    """Change one category's period (422 naming ``keep_days`` outside its bounds; audited)."""
    return retention.update_policy(
        session, category=category, policy_in=body, actor=actor_of(user), user_id=user.id
    )


@router.post("/privacy/retention/preview", response_model=retention.RunRead, status_code=201)
def preview(request: Request, session: SessionDep, user: Reader) -> retention.RunRead:
    """Count what a purge would remove now, per category (nothing is removed)."""
    result = retention.run_purge(
        session,
        actor=actor_of(user),
        trigger="api",
        settings=request.app.state.settings,
        dry_run=True,
    )
    return retention.get_run(session, result.run.id)


@router.post("/privacy/retention/run", response_model=retention.RunRead, status_code=201)
def run(request: Request, session: SessionDep, user: Officer) -> retention.RunRead:
    """Purge now what is past its retention period (what the worker does daily)."""
    result = retention.run_purge(
        session, actor=actor_of(user), trigger="api", settings=request.app.state.settings
    )
    return retention.get_run(session, result.run.id)


@router.get("/privacy/retention/runs", response_model=list[retention.RunRead])
def list_runs(
    session: SessionDep, user: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[retention.RunRead]:
    """The newest purges and previews with their reports, newest first."""
    return retention.recent_runs(session, limit=limit)


@router.get("/privacy/retention/runs/{run_id}", response_model=retention.RunRead)
def get_run(run_id: PathId, session: SessionDep, user: Reader) -> retention.RunRead:
    """One run with its report per category."""
    return retention.get_run(session, run_id)


@router.get(
    "/privacy/retention/runs/{run_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def run_csv(run_id: PathId, session: SessionDep, user: Reader) -> Response:
    """One run's report as CSV."""
    body = retention.report_csv(retention.get_run(session, run_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="retention-{run_id}.csv"'},
    )


@router.get(
    "/privacy/processing",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def processing(
    request: Request,
    session: SessionDep,
    user: Reader,
    format: Literal["json", "csv"] = "json",  # noqa: A002 - the query parameter's name
) -> Response:
    """The record of processing activities as JSON or CSV (audited)."""
    content, media_type, name = export_record(
        session,
        fmt=format,
        settings=request.app.state.settings,
        lang=request_language(request),
        actor=actor_of(user),
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
