"""HTML pages of customer-care automation (``/care``): the rules with the care policy and
the festival calendar, the rule editor (zh / en templates side by side, variables help,
preview panel, switch on / off) and the run history.

A refused change comes back to the same page with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.analytics.policy import SEGMENTS
from guanxi.care import policy as care_policy
from guanxi.care import service
from guanxi.care.calendar import FESTIVALS, festival_dates
from guanxi.care.calendar import LABELS as FESTIVAL_LABELS
from guanxi.care.enums import COUPON_KINDS, LABELS, SMS_TEMPLATES, CareChannel, RuleKind
from guanxi.care.models import CareRule
from guanxi.care.preview import preview as preview_rule
from guanxi.care.schemas import CareRuleIn, CareRuleRead, CareRuleUpdate
from guanxi.care.templating import DESCRIPTIONS, VARIABLES
from guanxi.core import clock, i18n
from guanxi.core.errors import DomainError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import (
    field_errors_from_pydantic,
    request_language,
    translate_code,
    translate_field_error,
)
from guanxi.customers.enums import CustomerKind
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import context, environment

router = APIRouter()

Reader = Annotated[User, require(Permission.care_read)]
Manager = Annotated[User, require(Permission.care_manage)]

# Field names as the forms label them (messages name the field).
FIELD_LABELS = {
    "name": N_("Rule name"),
    "kind": N_("Occasion"),
    "channel": N_("Channel"),
    "festivals": N_("Festivals"),
    "subject_zh": N_("Subject (Chinese)"),
    "body_zh": N_("Message (Chinese)"),
    "subject_en": N_("Subject (English)"),
    "body_en": N_("Message (English)"),
    "sms_template": N_("SMS template"),
    "send_time": N_("Send time"),
    "lead_days": N_("Days ahead"),
    "audience": N_("Audience"),
    "coupon_template": N_("Coupon template"),
    "winback_days": N_("At most once in (days)"),
    "priority": N_("Priority"),
    "version": N_("Version"),
    "cap_count": N_("Care messages per customer"),
    "cap_days": N_("Within (days)"),
    "default_send_time": N_("Default send time"),
    "company_zh": N_("Company name (Chinese)"),
    "company_en": N_("Company name (English)"),
    "day": N_("Date"),
    "enabled": N_("Switched on"),
}
SEGMENT_LABELS = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalist": N_("Potential loyalists"),
    "new": N_("New"),
    "at_risk": N_("At risk"),
    "cant_lose": N_("Can't lose"),
    "hibernating": N_("Hibernating"),
    "lost": N_("Lost"),
}
VALUE_TIERS = {"high": N_("High value"), "medium": N_("Medium value"), "low": N_("Low value")}


def render_care(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    """Render a care template with the shared context and the care labels."""
    lang = request_language(request)

    def clabel(code: str | None) -> str:
        if not code:
            return ""
        text = {**LABELS, **FESTIVAL_LABELS, **SEGMENT_LABELS, **VALUE_TIERS}.get(code, code)
        return i18n.gettext(lang, text)

    helpers = {
        "clabel": clabel,
        "kinds": [k.value for k in RuleKind],
        "channels": [c.value for c in CareChannel],
        "sms_templates": SMS_TEMPLATES,
        "festival_codes": list(FESTIVALS),
        "festival_names": {code: f.name_zh for code, f in FESTIVALS.items()},
        "customer_kinds": [k.value for k in CustomerKind],
        "segments": list(SEGMENTS),
        "value_tiers": list(VALUE_TIERS),
        "coupon_kinds": [k.value for k in COUPON_KINDS],
        "field_labels": FIELD_LABELS,
    }
    html = environment().get_template(template).render(context(request, **helpers, **values))
    return HTMLResponse(html, status_code=status_code)


def _today(request: Request) -> date:
    return clock.now().astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused change as {field: message} in the reader's language (a list item's
    message under its list: ``festivals.0`` shows at ``festivals``)."""
    lang = request_language(request)
    if isinstance(exc, ValidationError):
        errors = field_errors_from_pydantic(list(exc.errors()))
    elif isinstance(exc, ValidationFailed):
        errors = exc.errors
    elif isinstance(exc, DomainError):
        field = str(exc.params.get("field", ""))
        params = {k: v for k, v in exc.params.items() if k != "field"}
        return {field: translate_code(exc.message, lang, params) or exc.message}
    else:  # pragma: no cover - callers pass only the types above
        raise exc
    out: dict[str, str] = {}
    for e in errors:
        parts = [str(p) for p in e.loc]
        key = parts[0] if parts and parts[0] != "audience" else ".".join(parts[:2])
        out.setdefault(key, translate_field_error(e, lang))
    return out


def _split(form: FormData, name: str) -> list[str]:
    """A comma / 、 / newline separated text field as a list."""
    raw = str(form.get(name) or "")
    for sep in ("，", "、", "\n"):
        raw = raw.replace(sep, ",")
    return [p.strip() for p in raw.split(",") if p.strip()]


def _rule_data(form: FormData) -> dict[str, Any]:
    """The editor's form as rule input (validated by the schema and the service)."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    data: dict[str, Any] = {
        "name": text("name"),
        "kind": text("kind"),
        "channel": text("channel"),
        "festivals": [str(v) for v in form.getlist("festivals")],
        "subject_zh": text("subject_zh"),
        "body_zh": text("body_zh"),
        "subject_en": text("subject_en"),
        "body_en": text("body_en"),
        "sms_template": text("sms_template") or None,
        "send_time": text("send_time") or None,
        "lead_days": text("lead_days") or 0,
        "coupon_template": text("coupon_template") or None,
        "winback_days": text("winback_days") or 90,
        "priority": text("priority") or 50,
        "audience": {
            "kinds": [str(v) for v in form.getlist("audience.kinds")],
            "regions": _split(form, "audience.regions"),
            "tags": _split(form, "audience.tags"),
            "tiers": _split(form, "audience.tiers"),
            "segments": [str(v) for v in form.getlist("audience.segments")],
            "value_tiers": [str(v) for v in form.getlist("audience.value_tiers")],
        },
    }
    version = text("version")
    if version:
        data["version"] = version
    return data


def _form_of(rule: CareRule) -> dict[str, Any]:
    """A stored rule as the editor shows it."""
    read = CareRuleRead.model_validate(rule)
    data = read.model_dump()
    data["send_time"] = read.send_time.strftime("%H:%M") if read.send_time else ""
    data["audience"] = read.audience.model_dump()
    return data


# --------------------------------------------------------------------------- rules


@router.get("/care", response_class=HTMLResponse)
def rules_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """The care rules, the care policy and this year's festivals."""
    return _rules_page(request, session)


def _rules_page(
    request: Request,
    session: SessionDep,
    *,
    errors: dict[str, str] | None = None,
    policy_form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    today = _today(request)
    upcoming = [
        (day, f)
        for day, f in festival_dates(today.year) + festival_dates(today.year + 1)
        if today <= day <= today + timedelta(days=120)
    ]
    policy = care_policy.load_policy(session)
    form = policy_form or {
        **policy.model_dump(),
        "default_send_time": policy.default_send_time.strftime("%H:%M"),
    }
    return render_care(
        request,
        "care/rules.html",
        status_code=status_code,
        rules=service.list_rules(session),
        policy=form,
        upcoming=upcoming,
        errors=errors or {},
    )


@router.post("/care/policy", response_class=HTMLResponse)
async def save_policy(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save the frequency cap, default send time and company names."""
    form = await request.form()
    data = {
        k: str(form.get(k) or "").strip()
        for k in ("cap_count", "cap_days", "default_send_time", "company_zh", "company_en")
    }
    try:
        care_policy.save_policy(
            session, policy=care_policy.CarePolicy.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        return _rules_page(
            request, session, errors=_messages(request, exc), policy_form=data, status_code=422
        )
    return RedirectResponse("/care", status_code=303)


def _editor(
    request: Request,
    session: SessionDep,
    *,
    rule: CareRule | None,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    kind = RuleKind(form.get("kind") or RuleKind.birthday.value)
    policy = care_policy.load_policy(session)
    return render_care(
        request,
        "care/rule.html",
        status_code=status_code,
        rule=rule,
        form=form,
        kind=kind.value,
        variables=[(v, DESCRIPTIONS[v]) for v in VARIABLES[kind]],
        default_send_time=policy.default_send_time.strftime("%H:%M"),
        today=_today(request).isoformat(),
        errors=errors or {},
    )


@router.get("/care/rules/new", response_class=HTMLResponse)
def new_rule(
    request: Request, session: SessionDep, user: Manager, kind: RuleKind = RuleKind.birthday
) -> Response:
    """An empty editor for a rule of ``kind``."""
    form: dict[str, Any] = {
        "kind": kind.value,
        "channel": CareChannel.sms_or_email.value,
        "lead_days": 0,
        "priority": 50,
        "winback_days": 90,
        "festivals": [],
        "audience": {},
    }
    return _editor(request, session, rule=None, form=form)


@router.post("/care/rules", response_class=HTMLResponse)
async def create_rule(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save a new rule (switched off); on to its page to preview and switch it on."""
    data = _rule_data(await request.form())
    data.pop("version", None)
    try:
        rule = service.create_rule(session, rule_in=CareRuleIn.model_validate(data), actor=user)
    except (ValidationError, DomainError) as exc:
        return _editor(
            request, session, rule=None, form=data, errors=_messages(request, exc), status_code=422
        )
    return RedirectResponse(f"/care/rules/{rule.id}", status_code=303)


@router.get("/care/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(rule_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """A rule's editor with its preview panel and recent runs."""
    rule = service.get_rule(session, rule_id)
    return _editor(request, session, rule=rule, form=_form_of(rule))


@router.post("/care/rules/{rule_id}", response_class=HTMLResponse)
async def update_rule(
    rule_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Save a rule's changes."""
    rule = service.get_rule(session, rule_id)
    data = _rule_data(await request.form())
    try:
        service.update_rule(
            session, rule_id=rule_id, rule_in=CareRuleUpdate.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _editor(
            request, session, rule=rule, form=data, errors=_messages(request, exc), status_code=422
        )
    return RedirectResponse(f"/care/rules/{rule_id}?saved=1", status_code=303)


@router.post("/care/rules/{rule_id}/enable", response_class=HTMLResponse)
def enable_rule(rule_id: PathId, request: Request, session: SessionDep, user: Manager) -> Response:
    """Switch a rule on; a rule that no longer passes its checks says why."""
    return _switch(rule_id, request, session, user, enabled=True)


@router.post("/care/rules/{rule_id}/disable", response_class=HTMLResponse)
def disable_rule(rule_id: PathId, request: Request, session: SessionDep, user: Manager) -> Response:
    """Switch a rule off."""
    return _switch(rule_id, request, session, user, enabled=False)


def _switch(
    rule_id: int, request: Request, session: SessionDep, user: User, *, enabled: bool
) -> Response:
    try:
        service.set_enabled(session, rule_id=rule_id, enabled=enabled, actor=user)
    except ValidationFailed as exc:
        session.rollback()
        rule = service.get_rule(session, rule_id)
        return _editor(
            request,
            session,
            rule=rule,
            form=_form_of(rule),
            errors=_messages(request, exc),
            status_code=422,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        # Already on / off (a double click): the page shows the truth.
    return RedirectResponse(f"/care/rules/{rule_id}", status_code=303)


@router.get("/care/rules/{rule_id}/preview", response_class=HTMLResponse)
def preview_panel(
    rule_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    day: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The preview panel for a day (an htmx fragment; a whole page without htmx)."""
    today = _today(request)
    chosen, error = today, None
    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            error = i18n.gettext(request_language(request), "Must be a date like 1990-05-17")
    if error is None and abs((chosen - today).days) > 366:
        error = i18n.gettext(request_language(request), "Choose a date within a year of today")
    settings = request.app.state.settings
    result = (
        None
        if error
        else preview_rule(
            session,
            rule_id=rule_id,
            day=chosen,
            timezone=settings.timezone,
            language=settings.default_language,
        )
    )
    if error:
        service.get_rule(session, rule_id)  # 404 for an unknown rule either way
    return render_care(
        request,
        "care/_preview.html",
        status_code=422 if error else 200,
        result=result,
        day=chosen.isoformat(),
        error=error,
        rule_id=rule_id,
        fragment=request.headers.get("hx-request") == "true",
    )


# --------------------------------------------------------------------------- runs


@router.get("/care/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    rule: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    active: bool = True,
) -> Response:
    """The run history: per day and rule, who was eligible and what became of them."""
    rules = service.list_rules(session)
    return render_care(
        request,
        "care/runs.html",
        runs=service.list_runs(session, rule_id=rule, with_activity=active, limit=500),
        rules=rules,
        rule_names={r.id: r.name for r in rules},
        rule_filter=rule,
        active=active,
    )
