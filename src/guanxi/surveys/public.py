"""The public survey pages: ``/q/{token}`` (an invitation's single-use link),
``/s/{token}/survey`` (the survey of a ticket, from its private page) and ``/q/o/{code}``
(an outlet's QR code).

No sign-in, no staff navigation, no scripts and no external files: one small HTML page
with its style inline, fast on a phone. Forms are safe against cross-site requests without
a session: they post to a URL holding the unguessable secret (or the signed outlet code,
where an answer is anonymous anyway and rate-limited). A link that cannot be answered
(unknown, tampered, expired, used) gets a friendly page, never an error; an unknown or
tampered one says nothing that helps guessing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from guanxi.core import i18n
from guanxi.core.errors import ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.web import (
    LANG_COOKIE,
    ParsedForm,
    choose_language,
    request_language,
    run_read,
    translate_field_error,
)
from guanxi.security.deps import SessionDep
from guanxi.selfservice.ratelimit import TOO_MANY, RateLimited, client_address, limiter_for
from guanxi.surveys import outlets, responses
from guanxi.surveys.enums import FollowUp, ResponseChannel
from guanxi.surveys.policy import load_policy
from guanxi.surveys.responses import SurveyLinkError
from guanxi.surveys.schemas import AnswerValue
from guanxi.surveys.service import VersionView, version_view
from guanxi.web.render import environment

router = APIRouter()

# The ends of each scale, as the respondent reads them.
LOW = {
    "nps": N_("not at all likely"),
    "csat": N_("very dissatisfied"),
    "dimension": N_("very poor"),
    "rating": N_("very poor"),
}
HIGH = {
    "nps": N_("extremely likely"),
    "csat": N_("very satisfied"),
    "dimension": N_("excellent"),
    "rating": N_("excellent"),
}


def _render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    base: str,
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
            lang_base=base,
            switch_to=[(c, n) for c, n in i18n.LANGUAGE_NAMES.items() if c != lang],
            low_text=lambda kind: _(LOW.get(kind, "")),
            high_text=lambda kind: _(HIGH.get(kind, "")),
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    # A survey link is personal: no shared caches, no search engines.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    if remember:
        response.set_cookie(LANG_COOKIE, remember, max_age=365 * 86400, samesite="lax")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _survey_page(
    request: Request,
    view: VersionView,
    *,
    base: str,
    action: str,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, list[str]] | None = None,
    phone_field: bool = False,
    phone: str | None = None,
    remember: str | None = None,
) -> HTMLResponse:
    lang = request_language(request)
    return _render(
        request,
        "surveys/public/survey.html",
        status_code,
        base=base,
        remember=remember,
        name=view.name(lang),
        questions=view.questions,
        action=action,
        errors=errors or {},
        values=values or {},
        phone_field=phone_field,
        phone=phone,
    )


def _link_problem(
    request: Request, reason: str, *, base: str, remember: str | None = None
) -> HTMLResponse:
    status = {"invalid": 404, "expired": 410, "answered": 409}.get(reason, 404)
    return _render(
        request, "surveys/public/link.html", status, base=base, remember=remember, reason=reason
    )


def _answers(form: Any, view: VersionView) -> tuple[dict[str, AnswerValue], dict[str, list[str]]]:
    """The submitted answers by question code (lists for multiple choice) and the raw
    values to show the form again."""
    answers: dict[str, AnswerValue] = {}
    shown: dict[str, list[str]] = {}
    for q in view.questions:
        raw = [str(v)[:2100] for v in form.getlist(f"q_{q.code}")][:40]
        shown[q.code] = raw
        if q.kind == "multi":
            answers[q.code] = raw
        else:
            answers[q.code] = raw[0] if raw else None
    return answers, shown


def _errors(request: Request, exc: ValidationFailed) -> dict[str, str]:
    """One message per question, in the respondent's language, naming the question."""
    lang = request_language(request)
    out: dict[str, str] = {}
    for error in exc.errors:
        key = str(error.loc[-1]) if error.loc else "form"
        out.setdefault(key, translate_field_error(error, lang))
    return out


def _thanks(path: str, follow_up: str) -> RedirectResponse:
    """Redirect to the thank-you page at ``path``, which tells a respondent whose answer
    opened a follow-up that a colleague will get in touch."""
    suffix = "?followup=1" if follow_up != FollowUp.none.value else ""
    return RedirectResponse(f"{path}{suffix}", status_code=303)


# --------------------------------------------------------------------------- invitation link


def _open(session: Any, token: str) -> tuple[Any, VersionView] | str:
    try:
        return responses.open_link(session, token)
    except SurveyLinkError as exc:
        return exc.reason


@router.get("/q/{token}", response_class=HTMLResponse)
async def survey_page(
    token: str,
    request: Request,
    session: SessionDep,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The survey of an invitation link (SMS / e-mail), ready to answer."""
    remember = choose_language(request, lang)
    base = f"/q/{token}"
    found = await run_read(request, _open, session, token)
    if isinstance(found, str):
        return _link_problem(request, found, base=base, remember=remember)
    _invitation, view = found
    return _survey_page(request, view, base=base, action=base, remember=remember)


def _submit_link(session: Any, token: str, form: Any, lang: str) -> Any:
    invitation, view = responses.open_link(session, token)
    answers, shown = _answers(form, view)
    try:
        return responses.answer_invitation(
            session, invitation=invitation, answers=answers, lang=lang
        )
    except ValidationFailed as exc:
        return view, shown, exc


@router.post("/q/{token}", response_class=HTMLResponse)
def survey_submit(token: str, request: Request, session: SessionDep, form: ParsedForm) -> Response:
    """Store the answers (one transaction; the link is used up); a second submission of
    the same link, even at the same moment, is refused."""
    base = f"/q/{token}"
    try:
        result = _submit_link(session, token, form, request_language(request))
    except SurveyLinkError as exc:
        return _link_problem(request, exc.reason, base=base)
    if isinstance(result, tuple):
        view, shown, failed = result
        return _survey_page(
            request, view, base=base, action=base, status_code=422,
            errors=_errors(request, failed), values=shown,
        )  # fmt: skip
    return _thanks(f"{base}/thanks", result.follow_up)


@router.get("/q/{token}/thanks", response_class=HTMLResponse)
def survey_thanks(
    token: str,
    request: Request,
    followup: bool = False,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The thank-you page after an answer."""
    remember = choose_language(request, lang)
    return _render(
        request,
        "surveys/public/done.html",
        base=f"/q/{token}/thanks",
        remember=remember,
        follow_up=followup,
    )


# --------------------------------------------------------------------------- ticket page


def _ticket_survey(session: Any, token: str) -> tuple[Any, VersionView] | str:
    from guanxi.selfservice.service import ticket_by_token

    ticket = ticket_by_token(session, token)
    if ticket is None:
        return "invalid"
    try:
        return responses.open_ticket_survey(session, ticket.id)
    except SurveyLinkError as exc:
        return exc.reason


@router.get("/s/{token}/survey", response_class=HTMLResponse)
def ticket_survey_page(
    token: str,
    request: Request,
    session: SessionDep,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The survey of a resolved ticket, opened from its private page."""
    remember = choose_language(request, lang)
    base = f"/s/{token}/survey"
    found = _ticket_survey(session, token)
    if isinstance(found, str):
        return _link_problem(request, found, base=base, remember=remember)
    return _survey_page(request, found[1], base=base, action=base, remember=remember)


@router.post("/s/{token}/survey", response_class=HTMLResponse)
def ticket_survey_submit(
    token: str, request: Request, session: SessionDep, form: ParsedForm
) -> Response:
    """Answer the ticket's survey (its invitation is used up: the SMS link then says it
    was answered)."""
    base = f"/s/{token}/survey"
    found = _ticket_survey(session, token)
    if isinstance(found, str):
        return _link_problem(request, found, base=base)
    invitation, view = found
    answers, shown = _answers(form, view)
    try:
        response = responses.answer_invitation(
            session,
            invitation=invitation,
            answers=answers,
            lang=request_language(request),
            channel=ResponseChannel.link,
        )
    except SurveyLinkError as exc:
        return _link_problem(request, exc.reason, base=base)
    except ValidationFailed as exc:
        return _survey_page(
            request, view, base=base, action=base, status_code=422,
            errors=_errors(request, exc), values=shown,
        )  # fmt: skip
    return _thanks("/q/done/thanks", response.follow_up)


# --------------------------------------------------------------------------- outlets


@router.get("/q/o/{code}", response_class=HTMLResponse)
def outlet_page(
    code: str,
    request: Request,
    session: SessionDep,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The survey behind an outlet's QR code."""
    remember = choose_language(request, lang)
    base = f"/q/o/{code}"
    outlet = outlets.open_outlet(session, code, request.app.state.settings.secret_key)
    if outlet is None:
        return _link_problem(request, "invalid", base=base, remember=remember)
    view = version_view(session, outlet.version_id)
    return _survey_page(request, view, base=base, action=base, phone_field=True, remember=remember)


@router.post("/q/o/{code}", response_class=HTMLResponse)
def outlet_submit(code: str, request: Request, session: SessionDep, form: ParsedForm) -> Response:
    """An answer through an outlet's QR code: anonymous or with a phone number; limited
    per client address."""
    base = f"/q/o/{code}"
    outlet = outlets.open_outlet(session, code, request.app.state.settings.secret_key)
    if outlet is None:
        return _link_problem(request, "invalid", base=base)
    view = version_view(session, outlet.version_id)
    answers, shown = _answers(form, view)
    phone = str(form.get("phone") or "")[:40]
    try:
        limiter_for(request).survey_outlet(
            load_policy(session).outlet_limit, client_address(request), outlet.code
        )
    except RateLimited as exc:
        wait = exc.retry_after
        lang = request_language(request)
        message = i18n.gettext(lang, TOO_MANY, minutes=max(1, -(-wait // 60)))
        return _render(
            request, "surveys/public/link.html", 429, base=base, retry_after=wait,
            reason="limited", message=message,
        )  # fmt: skip
    try:
        response = responses.answer_at_outlet(
            session, outlet=outlet, answers=answers, lang=request_language(request), phone=phone
        )
    except ValidationFailed as exc:
        return _survey_page(
            request, view, base=base, action=base, status_code=422,
            errors=_errors(request, exc), values=shown, phone_field=True, phone=phone,
        )  # fmt: skip
    return _thanks("/q/done/thanks", response.follow_up)
