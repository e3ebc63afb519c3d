"""HTML pages of retention and the record of processing: ``/privacy/retention`` (the
period per data category, editable by the privacy officer; what is kept on purpose and
why; the purge report, its runs and CSV download; preview and purge buttons) and
``/privacy/processing`` (the record of processing, downloadable as JSON or CSV, audited).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.core.web import field_messages, request_language
from guanxi.privacy import retention
from guanxi.privacy.fields import LABELS as FIELD_LABELS
from guanxi.privacy.processing import build_record, export_record
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.privacy_read)]
Officer = Annotated[User, require(Permission.privacy_manage)]


def _page(
    request: Request,
    session: SessionDep,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    run_param = request.query_params.get("run", "")
    shown = None
    if run_param.isdigit() and len(run_param) < 12:
        try:
            shown = retention.get_run(session, int(run_param))
        except NotFound:
            shown = None
    runs = retention.recent_runs(session, limit=20)
    if shown is None:
        # The newest real purge first: that is the report people look for.
        shown = next((r for r in runs if not r.dry_run), runs[0] if runs else None)
    policies = retention.list_policies(session)
    return render(
        request,
        "privacy/retention.html",
        status_code=status_code,
        policies=policies,
        labels={p.category: p.label for p in policies},
        kept=retention.KEPT,
        runs=runs,
        shown=shown,
        errors=errors or {},
        values=values or {},
        saved=request.query_params.get("saved", ""),
    )


@router.get("/privacy/retention", response_class=HTMLResponse)
def retention_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """Retention periods, what is kept and why, and the purge report."""
    return _page(request, session)


@router.post("/privacy/retention/policies/{category}", response_class=HTMLResponse)
async def save_policy(
    category: Annotated[str, Path(max_length=40)],
    request: Request,
    session: SessionDep,
    user: Officer,
) -> Response:
    """Change one category's period; a refused value comes back beside its field."""
    form = await request.form()
    raw = str(form.get("keep_days") or "").strip()
    enabled = form.get("enabled") == "on"
    try:
        policy_in = retention.PolicyUpdate.model_validate({"keep_days": raw, "enabled": enabled})
        retention.update_policy(
            session, category=category, policy_in=policy_in, actor=actor_of(user), user_id=user.id
        )
    except (ValidationError, ValidationFailed) as exc:
        return _page(
            request,
            session,
            errors={category: field_messages(request, exc)},
            values={category: {"keep_days": raw, "enabled": enabled}},
            status_code=422,
        )
    return RedirectResponse(f"/privacy/retention?saved={category}", status_code=303)


@router.post("/privacy/retention/preview", response_class=HTMLResponse)
def preview(request: Request, session: SessionDep, user: Reader) -> Response:
    """Count what a purge would remove now (nothing removed); shows that report."""
    result = retention.run_purge(
        session,
        actor=actor_of(user),
        trigger="web",
        settings=request.app.state.settings,
        dry_run=True,
    )
    return RedirectResponse(f"/privacy/retention?run={result.run.id}", status_code=303)


@router.post("/privacy/retention/run", response_class=HTMLResponse)
def purge(request: Request, session: SessionDep, user: Officer) -> Response:
    """Purge now what is past its period (the worker does it daily)."""
    result = retention.run_purge(
        session, actor=actor_of(user), trigger="web", settings=request.app.state.settings
    )
    return RedirectResponse(f"/privacy/retention?run={result.run.id}", status_code=303)


@router.get("/privacy/retention/runs/{run_id}/report.csv")
def report_csv(run_id: PathId, session: SessionDep, user: Reader) -> Response:
    """One run's report as CSV."""
    body = retention.report_csv(retention.get_run(session, run_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="retention-{run_id}.csv"'},
    )


@router.get("/privacy/processing", response_class=HTMLResponse)
def processing_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """The record of processing activities, with downloads."""
    lang = request_language(request)
    data = build_record(session, settings=request.app.state.settings, lang=lang)
    return render(request, "privacy/processing.html", record=data, flabels=FIELD_LABELS)


@router.get("/privacy/processing/download")
def processing_download(
    request: Request,
    session: SessionDep,
    user: Reader,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",  # noqa: A002
) -> Response:
    """The record of processing as a JSON or CSV file (audited)."""
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
