"""HTML page of the data-quality report (``/quality``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.quality.enums import (
    DUPLICATE_LABELS,
    FIELD_LABELS,
    INVALID_LABELS,
    SCOPE_LABELS,
)
from guanxi.quality.service import quality_report
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Steward = Annotated[User, require(Permission.data_quality)]

# Choices offered by the page's selector; any whole number of months in range is accepted.
STALE_MONTH_CHOICES = (3, 6, 12, 18, 24, 36)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    session: SessionDep,
    user: Steward,
    stale_months: Annotated[int, Query(ge=1, le=120)] = 12,
) -> Response:
    """The report: summary cards, completeness, invalid values, duplicates and stale records."""
    report = quality_report(session, stale_months=stale_months)
    choices = sorted({*STALE_MONTH_CHOICES, stale_months})
    return render(
        request,
        "quality/report.html",
        report=report,
        stale_choices=choices,
        field_labels=FIELD_LABELS,
        scope_labels=SCOPE_LABELS,
        invalid_labels=INVALID_LABELS,
        duplicate_labels=DUPLICATE_LABELS,
    )
