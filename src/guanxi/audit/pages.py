"""HTML pages of the audit log: the auditor's viewer (``/audit``, ``audit.read``).

Search by actor, record (type and id), action and a range of local dates; newest first
with a cursor to the next page; each entry's before/after (masked values only, as the
services recorded them) and a link to the CSV export of the same search (audited).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.audit import service
from guanxi.audit.labels import ACTION_LABELS
from guanxi.audit.sealing import readable
from guanxi.core.errors import ValidationFailed
from guanxi.core.web import request_language
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Auditor = Annotated[User, require(Permission.audit_read)]
Param = Annotated[str | None, Query(max_length=64)]


def _day(value: str | None) -> date | None:
    """A date typed in a filter box; anything else is no filter."""
    try:
        return date.fromisoformat((value or "").strip()[:10]) if value else None
    except ValueError:
        return None


def _start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    user: Auditor,
    actor: Param = None,
    target_type: Param = None,
    target_id: Param = None,
    action: Param = None,
    since: Param = None,
    until: Param = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Search the audit log; ``since`` / ``until`` are local dates, both days included."""
    tz = str(request.app.state.settings.timezone)
    first, last = _day(since), _day(until)
    try:
        start = _start(first, tz) if first else None
        end = _start(last + timedelta(days=1), tz) if last else None
    except OverflowError:  # 9999-12-31 has no next day: no upper bound then
        start, end = (_start(first, tz) if first else None), None
    query = service.AuditQuery(
        actor=(actor or "").strip() or None,
        target_type=(target_type or "").strip() or None,
        target_id=(target_id or "").strip() or None,
        action=(action or "").strip() or None,
        since=start,
        until=end,
    )
    try:
        items, next_cursor = service.search(session, query=query, cursor=cursor or None)
    except ValidationFailed:
        try:  # a tampered cursor starts again at the newest
            items, next_cursor = service.search(session, query=query)
        except ValidationFailed:  # an inverted or impossible range finds nothing
            items, next_cursor = [], None
    params = {
        k: v
        for k, v in request.query_params.items()
        if k in ("actor", "target_type", "target_id", "action", "since", "until") and v
    }
    return render(
        request,
        "audit/search.html",
        items=readable(session, items, lang=request_language(request)),
        next_cursor=next_cursor,
        form=params,
        params=params,
        actions=sorted(ACTION_LABELS),
        export_href="/api/v1/audit/export.csv"
        + ("?" + urlencode(query.as_dict()) if query.as_dict() else ""),
    )
