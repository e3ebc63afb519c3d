"""The public self-service pages: ``/track`` (look up a waybill, file a complaint about it)
and ``/s/{token}`` (the customer's private ticket page).

No sign-in and no staff navigation. Forms are safe against cross-site requests without a
session: filing needs the signed proof of a lookup *and* the HttpOnly, SameSite=Strict
cookie it is bound to; the private page's forms post to a URL holding the ticket's
unguessable secret. Nothing personal travels in a URL except that opaque secret.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from pydantic import ValidationError

from guanxi.core import i18n
from guanxi.core.errors import Conflict, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.web import (
    LANG_COOKIE,
    choose_language,
    field_errors_from_pydantic,
    request_language,
    template_environment,
    translate_field_error,
)
from guanxi.security.deps import SessionDep
from guanxi.selfservice import service
from guanxi.selfservice.ratelimit import TOO_MANY, RateLimited, client_address, limiter_for
from guanxi.selfservice.schemas import (
    PublicTicketCreate,
    PublicTicketType,
    TrackIn,
    TrackRead,
)
from guanxi.tickets import categories
from guanxi.tickets.enums import LABELS as TICKET_LABELS
from guanxi.web.render import context

router = APIRouter()

# The browser half of a lookup proof; sent back only to /track/... and never to scripts.
PROOF_COOKIE = "guanxi_track"

PROOF_EXPIRED = N_("Your lookup has expired. Please look up the waybill again.")
TICKET_CLOSED = N_("This request is closed. To raise something new, look up the waybill again.")
# Field errors in the customer's words (the generic API wording is for developers).
FIELD_MESSAGES = {
    "waybill_no": N_("Enter the waybill number (6 to 40 letters and digits)"),
    "phone_last4": N_("Enter the last 4 digits of the phone number"),
    "description": N_("Describe what happened (5 to 5000 characters)"),
    "type": N_("Choose what you need"),
    "category": N_("Choose a category from the list"),
    "message": N_("Write a message (up to 5000 characters)"),
}
# Where a ticket stands, as the customer reads it.
STATUS_TEXT = {
    "new": N_("Received: waiting for a customer service agent"),
    "assigned": N_("An agent has taken your case"),
    "in_progress": N_("We are working on it"),
    "waiting_customer": N_("Waiting for your reply"),
    "waiting_third_party": N_("We are checking with the delivery network"),
    "resolved": N_("Resolved: please tell us whether you are satisfied"),
    "closed": N_("Closed"),
}


@cache
def _environment() -> Environment:
    """The shared template environment with this package's templates in front."""
    env = template_environment()
    folder = resources.files("guanxi") / "selfservice" / "templates"
    assert env.loader is not None  # noqa: S101 - template_environment always sets one
    env.loader = ChoiceLoader([FileSystemLoader(str(folder)), env.loader])
    return env


def _render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    remember: str | None = None,
    retry_after: int | None = None,
    **values: Any,
) -> HTMLResponse:
    lang = request_language(request)

    def t(message: str, **params: Any) -> str:
        return i18n.gettext(lang, message, **params)

    def tlabel(value: str | None) -> str:
        return t(TICKET_LABELS.get(value, value)) if value else ""

    def status_text(value: str) -> str:
        return t(STATUS_TEXT.get(value, value))

    helpers = {
        "tlabel": tlabel,
        "status_text": status_text,
        "switch_to": [(code, name) for code, name in i18n.LANGUAGE_NAMES.items() if code != lang],
    }
    html = _environment().get_template(template).render(context(request, **helpers, **values))
    response = HTMLResponse(html, status_code=status_code)
    # Tracking details and private pages must not linger in shared caches or histories.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    if remember:
        response.set_cookie(LANG_COOKIE, remember, max_age=365 * 86400, samesite="lax")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _message(request: Request, message: str, **params: Any) -> str:
    return i18n.gettext(request_language(request), message, **params)


def _too_many(request: Request, exc: RateLimited) -> str:
    return _message(request, TOO_MANY, minutes=max(1, -(-exc.retry_after // 60)))


def _field_errors(request: Request, exc: ValidationError | ValidationFailed) -> dict[str, str]:
    """One message per offending field, in the customer's words where we have them."""
    lang = request_language(request)
    errors = (
        exc.errors
        if isinstance(exc, ValidationFailed)
        else field_errors_from_pydantic(list(exc.errors()))
    )
    out: dict[str, str] = {}
    for error in errors:
        name = str(error.loc[0]) if error.loc else "form"
        if name in FIELD_MESSAGES and error.code != "email_invalid":
            out.setdefault(name, i18n.gettext(lang, FIELD_MESSAGES[name]))
        else:
            out.setdefault(name, translate_field_error(error, lang))
    return out


# --------------------------------------------------------------------------- tracking


def _track_form(
    request: Request,
    status_code: int = 200,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    remember: str | None = None,
    retry_after: int | None = None,
) -> HTMLResponse:
    return _render(
        request,
        "selfservice/track.html",
        status_code,
        remember=remember,
        retry_after=retry_after,
        values=values or {},
        errors=errors or {},
        error=error,
    )


def _result(
    request: Request,
    session: SessionDep,
    tracking: TrackRead,
    proof: str,
    status_code: int = 200,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    retry_after: int | None = None,
) -> HTMLResponse:
    lang = request_language(request)
    return _render(
        request,
        "selfservice/result.html",
        status_code,
        retry_after=retry_after,
        t=tracking,
        proof=proof,
        types=[tp.value for tp in PublicTicketType],
        categories=[
            (node.code, node.name(lang), node.depth)
            for node in categories.tree(session, active_only=True)
        ],
        values=values or {"type": PublicTicketType.complaint.value},
        errors=errors or {},
        error=error,
    )


@router.get("/track", response_class=HTMLResponse)
def track_page(
    request: Request, lang: Annotated[str | None, Query(max_length=10)] = None
) -> Response:
    """The lookup form: waybill number and the last four digits of a phone."""
    remember = choose_language(request, lang)
    return _track_form(request, remember=remember)


@router.post("/track", response_class=HTMLResponse)
def track(
    request: Request,
    session: SessionDep,
    waybill_no: Annotated[str, Form(max_length=100)] = "",
    phone_last4: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Look the waybill up: its public tracking and the filing form, or one "no match"
    message whatever was wrong."""
    limiter = limiter_for(request)
    values = {"waybill_no": waybill_no}
    try:
        limiter.lookup(client_address(request))
        track_in = TrackIn(waybill_no=waybill_no, phone_last4=phone_last4)
        limiter.waybill_open(track_in.waybill_no)
    except RateLimited as exc:
        return _track_form(
            request, 429, values=values, error=_too_many(request, exc), retry_after=exc.retry_after
        )
    except ValidationError as exc:
        return _track_form(request, 422, values=values, errors=_field_errors(request, exc))
    tracked = service.track(session, track_in=track_in)
    if tracked is None:
        limiter.failed(track_in.waybill_no)
        return _track_form(request, values=values, error=_message(request, service.NO_MATCH))
    settings = request.app.state.settings
    proof, browser = service.issue_proof(
        settings.secret_key, shipment_id=tracked.shipment_id, waybill_no=tracked.read.waybill_no
    )
    response = _result(request, session, tracked.read, proof)
    response.set_cookie(
        PROOF_COOKIE,
        browser,
        max_age=settings.selfservice_proof_minutes * 60,
        path="/track",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/track/file", response_class=HTMLResponse)
def file_ticket(
    request: Request,
    session: SessionDep,
    proof: Annotated[str, Form(max_length=500)] = "",
    type: Annotated[str, Form(max_length=30)] = "",
    category: Annotated[str, Form(max_length=60)] = "",
    description: Annotated[str, Form(max_length=6000)] = "",
    email: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """File a complaint, service request or inquiry about the waybill just looked up, then
    go to the new ticket's private page."""
    settings = request.app.state.settings
    found = service.read_proof(
        settings.secret_key,
        proof=proof,
        browser=request.cookies.get(PROOF_COOKIE),
        max_age_seconds=settings.selfservice_proof_minutes * 60,
    )
    tracking = service.tracking_of(session, proof=found) if found else None
    if found is None or tracking is None:
        return _track_form(request, 403, error=_message(request, PROOF_EXPIRED))
    values = {"type": type, "category": category, "description": description, "email": email}
    try:
        ticket_in = PublicTicketCreate(
            type=type,
            category=category or None,
            description=description,
            email=email.strip() or None,
        )
        limiter_for(request).filing(client_address(request))
        filed = service.file_ticket(session, proof=found, ticket_in=ticket_in, link=service.links())
    except RateLimited as exc:
        return _result(
            request,
            session,
            tracking,
            proof,
            429,
            values=values,
            error=_too_many(request, exc),
            retry_after=exc.retry_after,
        )
    except (ValidationError, ValidationFailed) as exc:
        errors = _field_errors(request, exc)
        return _result(request, session, tracking, proof, 422, values=values, errors=errors)
    response = RedirectResponse(f"/s/{filed.token}?filed=1", status_code=303)
    response.delete_cookie(PROOF_COOKIE, path="/track")
    return response


# --------------------------------------------------------------------------- private page


def _ticket_page(
    request: Request,
    session: SessionDep,
    token: str,
    status_code: int = 200,
    *,
    filed: bool = False,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    remember: str | None = None,
    retry_after: int | None = None,
) -> HTMLResponse:
    try:
        ticket = service.view(session, token=token)
    except NotFound:
        return _render(request, "selfservice/not_found.html", 404)
    return _render(
        request,
        "selfservice/ticket.html",
        status_code,
        remember=remember,
        retry_after=retry_after,
        ticket=ticket,
        token=token,
        lang_base=f"/s/{token}",
        filed=filed,
        own_link=str(request.url.replace(query="", fragment="")),
        errors=errors or {},
        error=error,
        values=values or {},
    )


@router.get("/s/{token}", response_class=HTMLResponse)
def ticket_page(
    token: str,
    request: Request,
    session: SessionDep,
    filed: bool = False,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The customer's private page of one ticket: where it stands, the replies, a message
    box and, once resolved, the link to the satisfaction survey (surveys/public.py)."""
    remember = choose_language(request, lang)
    return _ticket_page(request, session, token, filed=filed, remember=remember)


@router.post("/s/{token}/message", response_class=HTMLResponse)
def post_message(
    token: str,
    request: Request,
    session: SessionDep,
    message: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    """Write to customer service on the private page."""
    values = {"message": message}
    if service.ticket_by_token(session, token) is None:
        return _render(request, "selfservice/not_found.html", 404)
    text = message.strip()
    if not 1 <= len(text) <= 5000:
        errors = {"message": _message(request, FIELD_MESSAGES["message"])}
        return _ticket_page(request, session, token, 422, errors=errors, values=values)
    try:
        limiter_for(request).message(client_address(request))
        service.add_message(session, token=token, text=text)
    except RateLimited as exc:
        error = _too_many(request, exc)
        return _ticket_page(
            request, session, token, 429, error=error, values=values, retry_after=exc.retry_after
        )
    except Conflict:
        return _ticket_page(request, session, token, 409, error=_message(request, TICKET_CLOSED))
    return RedirectResponse(f"/s/{token}#replies", status_code=303)
