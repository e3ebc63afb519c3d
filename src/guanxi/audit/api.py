"""JSON routes of the audit log: the auditor's search (``GET /api/v1/audit``) and the CSV
export of a search (itself audited). Both need ``audit.read``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from guanxi.audit import service
from guanxi.audit.labels import ACTION_LABELS
from guanxi.audit.schemas import AuditPage
from guanxi.audit.sealing import display_data, readable
from guanxi.core import i18n
from guanxi.core.web import request_language
from guanxi.imports.export import neutralise
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of

router = APIRouter(prefix="/api/v1", tags=["audit"])

Auditor = Annotated[User, require(Permission.audit_read)]

CSV_COLUMNS = (
    "id", "occurred_at", "actor_id", "actor", "action", "action_label", "target_type",
    "target_id", "before", "after", "request_id", "hash",
)  # fmt: skip


def audit_query(
    actor: Annotated[str | None, Query(max_length=64, description="username")] = None,
    target_type: Annotated[
        str | None, Query(max_length=32, description="record type, e.g. customer")
    ] = None,
    target_id: Annotated[str | None, Query(max_length=64, description="record id")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="e.g. customer.revealed")
    ] = None,
    since: Annotated[datetime | None, Query(description="from this time (UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
) -> service.AuditQuery:
    """The search of a request's query string (empty parts are no filter)."""
    return service.AuditQuery(
        actor=actor or None,
        target_type=target_type or None,
        target_id=target_id or None,
        action=action or None,
        since=since,
        until=until,
    )


Search = Annotated[service.AuditQuery, Depends(audit_query)]


@router.get("/audit", response_model=AuditPage)
def search_audit(
    request: Request,
    session: SessionDep,
    user: Auditor,
    query: Search,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Audit entries by actor, record, action and time, newest first; sealed personal
    values masked ("(erased)" once their customer was anonymised)."""
    rows, next_cursor = service.search(session, query=query, cursor=cursor, limit=limit)
    items = readable(session, rows, lang=request_language(request))
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get(
    "/audit/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_audit(request: Request, session: SessionDep, user: Auditor, query: Search) -> Response:
    """Every entry of the search as CSV (UTF-8 with BOM, for Excel), newest first; the
    export is recorded in the audit log before it is sent."""
    up_to = service.record_export(session, query=query, actor=actor_of(user))
    lang = request_language(request)
    # Streamed with a session of its own: the request's may be closed before the body is sent.
    sessionmaker = request.app.state.sessionmaker

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        buf.write("\ufeff")
        out = csv.writer(buf)
        out.writerow(CSV_COLUMNS)
        with sessionmaker() as own:
            for n, e in enumerate(service.export_entries(own, query=query, up_to=up_to), 1):
                label = ACTION_LABELS.get(e.action)
                out.writerow(
                    [
                        e.id,
                        e.occurred_at.astimezone(UTC).isoformat(),
                        "" if e.actor_id is None else e.actor_id,
                        neutralise(e.actor_name),
                        e.action,
                        i18n.gettext(lang, label) if label else "",
                        e.target_type,
                        neutralise(e.target_id),
                        _json(display_data(own, e.before, reveal=False, lang=lang)),
                        _json(display_data(own, e.after, reveal=False, lang=lang)),
                        e.request_id or "",
                        e.hash,
                    ]
                )
                if n % 1000 == 0:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{up_to}.csv"'},
    )


def _json(value: object) -> str:
    return (
        "" if value is None else neutralise(json.dumps(value, ensure_ascii=False, sort_keys=True))
    )
