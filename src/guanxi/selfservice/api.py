"""Public JSON route of the self-service page (``/api/v1/public``): waybill tracking for
apps and mini-programs. No sign-in; rate-limited per client address and per waybill."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from guanxi.core import i18n
from guanxi.core.i18n import N_
from guanxi.core.web import problem, request_language
from guanxi.security.deps import SessionDep
from guanxi.selfservice import service
from guanxi.selfservice.ratelimit import TOO_MANY, RateLimited, client_address, limiter_for
from guanxi.selfservice.schemas import TrackIn, TrackRead

router = APIRouter(prefix="/api/v1/public", tags=["self-service"])

RATE_LIMITED_TITLE = N_("Too many requests")
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
    lang = request_language(request)
    minutes = max(1, -(-exc.retry_after // 60))
    response = problem(
        request,
        429,
        "rate_limited",
        detail=i18n.gettext(lang, TOO_MANY, minutes=minutes),
        extra={"title": i18n.gettext(lang, RATE_LIMITED_TITLE)},
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.post(
    "/track",
    response_model=TrackRead,
    responses={
        404: {"description": "No waybill matches these details", **_PROBLEM},
        429: {"description": "Too many lookups (see Retry-After)", **_PROBLEM},
    },
)
def track(body: TrackIn, request: Request, session: SessionDep) -> Response | TrackRead:
    """A waybill's public tracking, given its number and the last four digits of the
    sender's or the receiver's phone (names masked, no fees). Any mismatch is the same 404."""
    limiter = limiter_for(request)
    try:
        limiter.lookup(client_address(request))
        limiter.waybill_open(body.waybill_no)
    except RateLimited as exc:
        return _rate_limited(request, exc)
    tracked = service.track(session, track_in=body)
    if tracked is None:
        limiter.failed(body.waybill_no)
        detail = i18n.gettext(request_language(request), service.NO_MATCH)
        return problem(request, 404, "not_found", detail=detail)
    return tracked.read
