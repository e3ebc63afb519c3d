"""The public lead form ``/forms/lead`` (bilingual, no sign-in): a prospect asks to be
contacted; the request becomes an unowned lead and the sales managers are told.

Spam protection, all invisible to a person:

- a honeypot field people do not see (``website``): a request that fills it is thanked
  and dropped;
- a signed time token (the moment the form was served, signed with the secret key): sent
  back sooner than :data:`MIN_SECONDS` after it was served (a script) or later than
  :data:`MAX_AGE` (a stale page), or tampered with, the request is refused and the form
  served again with a fresh token;
- a budget of requests per client address (:data:`LIMIT`), counted by the self-service
  limiter.

Like the other public pages (surveys, self-service) the page has no scripts and no external
files, and is safe against cross-site posting without a session: a forged post carries no
valid token younger than two hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import ValidationError

import guanxi.sales.messages  # noqa: F401 - registers the error texts
from guanxi.core import clock, i18n
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.web import (
    LANG_COOKIE,
    ParsedForm,
    choose_language,
    field_errors_from_pydantic,
    request_language,
    translate_field_error,
)
from guanxi.sales.leads import submit_web_lead
from guanxi.sales.schemas import WebLeadIn
from guanxi.security.deps import SessionDep
from guanxi.selfservice.ratelimit import TOO_MANY, RateLimited, client_address, limiter_for
from guanxi.web.render import environment

router = APIRouter()

BASE = "/forms/lead"
FIELDS = ("name", "company", "phone", "email", "message")
HONEYPOT = "website"
# Nobody types a name, company and phone in under three seconds; a page older than two
# hours is sent again with a fresh token.
MIN_SECONDS = 3
MAX_AGE = timedelta(hours=2)
# Requests per client address (moving window).
LIMIT = "5/hour"
_SALT = "guanxi.sales.lead-form"

LABELS = {
    "name": N_("Your name"),
    "company": N_("Company"),
    "phone": N_("Phone"),
    "email": N_("E-mail (optional)"),
    "message": N_("What do you ship? (optional)"),
    "token": N_("Form"),
}


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.settings.secret_key, salt=_SALT)


def issue_token(request: Request, at: datetime | None = None) -> str:
    """A token naming the moment the form is served, signed with the secret key."""
    moment = at or clock.now()
    return str(_serializer(request).dumps(int(moment.timestamp() * 1000)))


def check_token(request: Request, token: str) -> FieldError | None:
    """Why a form's token is refused (too fast, stale or tampered), or None when it is good."""
    try:
        served_ms = int(_serializer(request).loads(token))
    except (BadSignature, ValueError, TypeError):
        return FieldError(("token",), "lead_form_stale", "The form has expired")
    elapsed = clock.now().timestamp() - served_ms / 1000
    if elapsed < MIN_SECONDS:
        return FieldError(("token",), "lead_form_too_fast", "Submitted too fast")
    if elapsed > MAX_AGE.total_seconds():
        return FieldError(("token",), "lead_form_stale", "The form has expired")
    return None


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

    def _(message: str, **params: Any) -> str:
        return i18n.gettext(lang, message, **params)

    html = (
        environment()
        .get_template(template)
        .render(
            _=_,
            lang=lang,
            lang_base=BASE,
            switch_to=[(c, n) for c, n in i18n.LANGUAGE_NAMES.items() if c != lang],
            labels=LABELS,
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if remember:
        response.set_cookie(LANG_COOKIE, remember, max_age=365 * 86400, samesite="lax")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _form(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    remember: str | None = None,
) -> HTMLResponse:
    return _render(
        request,
        "sales/public/lead.html",
        status_code,
        remember=remember,
        token=issue_token(request),
        values=values or {},
        errors=errors or {},
        honeypot=HONEYPOT,
    )


def _errors(request: Request, errors: list[FieldError]) -> dict[str, str]:
    lang = request_language(request)
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(str(e.loc[0]) if e.loc else "token", translate_field_error(e, lang))
    return out


@router.get(BASE, response_class=HTMLResponse)
def lead_form(
    request: Request, lang: Annotated[str | None, Query(max_length=10)] = None
) -> Response:
    """The form a prospect fills in to be contacted by sales."""
    remember = choose_language(request, lang)
    return _form(request, remember=remember)


@router.post(BASE, response_class=HTMLResponse)
def submit_lead(request: Request, session: SessionDep, form: ParsedForm) -> Response:
    """A prospect's request: checked for spam, validated field by field, saved as a lead."""
    values = {k: str(form.get(k) or "")[:4000] for k in FIELDS}
    if str(form.get(HONEYPOT) or "").strip():
        # A robot filled the field people cannot see: thank it, keep nothing.
        return RedirectResponse(f"{BASE}/thanks", status_code=303)
    problem = check_token(request, str(form.get("token") or ""))
    if problem is not None:
        return _form(request, values=values, errors=_errors(request, [problem]), status_code=422)
    try:
        limiter_for(request).lead_form(LIMIT, client_address(request))
    except RateLimited as exc:
        message = i18n.gettext(
            request_language(request), TOO_MANY, minutes=max(1, -(-exc.retry_after // 60))
        )
        return _render(
            request, "sales/public/done.html", 429, retry_after=exc.retry_after,
            limited=True, message=message,
        )  # fmt: skip
    data = {k: (v.strip() or None) if k in ("email", "message") else v for k, v in values.items()}
    try:
        submit_web_lead(session, lead_in=WebLeadIn.model_validate(data))
    except ValidationError as exc:
        errors = field_errors_from_pydantic(list(exc.errors()))
        return _form(request, values=values, errors=_errors(request, errors), status_code=422)
    except ValidationFailed as exc:
        return _form(request, values=values, errors=_errors(request, exc.errors), status_code=422)
    return RedirectResponse(f"{BASE}/thanks", status_code=303)


@router.get(f"{BASE}/thanks", response_class=HTMLResponse)
def thanks(request: Request) -> Response:
    """Thanks for the request; sales will call back."""
    return _render(request, "sales/public/done.html", limited=False, message="")
