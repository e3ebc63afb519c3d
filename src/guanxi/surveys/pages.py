"""The survey pages for staff: results (``/surveys``) with the driver analysis, the
before / after comparison, templates, the policy, outlets with their QR codes, agent
entry of paper and phone answers, one response, and the 360 view's survey panel.

Charts are drawn in the browser by the vendored ECharts through the analytics' chart
script, from a JSON block on the page (no inline script).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from guanxi.core import i18n
from guanxi.core.errors import DomainError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId, QueryId
from guanxi.core.web import (
    ParsedForm,
    field_errors_from_pydantic,
    request_language,
    translate_field_error,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.surveys import analysis, outlets, reading, responses, results, service
from guanxi.surveys.api import DEFAULT_DAYS, check_date, parse_filters
from guanxi.surveys.enums import (
    LABELS,
    SCALES,
    Dimension,
    QuestionKind,
    ResponseChannel,
    TemplateKind,
    Trigger,
    kind_label,
)
from guanxi.surveys.policy import SurveyPolicy, load_policy, save_policy
from guanxi.surveys.schemas import (
    OptionIn,
    OutletCreate,
    QuestionIn,
    ResponseIn,
    ScoreSummary,
    TemplateCreate,
)
from guanxi.web.render import context, environment

router = APIRouter()

Reader = Annotated[User, require(Permission.surveys_read)]
Manager = Annotated[User, require(Permission.surveys_manage)]
Enterer = Annotated[User, require(Permission.surveys_enter)]
Viewer = Annotated[User, require(Permission.customer_read)]
Text = Annotated[str | None, Query(max_length=60)]


def _helpers(request: Request) -> dict[str, Any]:
    lang = request_language(request)

    def slabel(code: str | None) -> str:
        return i18n.gettext(lang, LABELS.get(code, code)) if code else ""

    def segment_label(code: str) -> str:
        from guanxi.analytics import labels as analytics_labels

        if code == results.UNCLASSIFIED:
            return i18n.gettext(lang, "Not classified")
        return analytics_labels.name(code, lang)

    return {
        "slabel": slabel,
        "qlabel": lambda kind: i18n.gettext(lang, kind_label(kind)),
        "segment_label": segment_label,
        "pct": lambda v: "—" if v is None else f"{v * 100:.1f}%",
        "num": lambda v, d=2: "—" if v is None else f"{v:.{d}f}",
        "signed": lambda v: "—" if v is None else f"{v:+.1f}",
        "dimensions": [d.value for d in Dimension],
    }


def _render(request: Request, page: str, status_code: int = 200, **values: Any) -> Response:
    html = environment().get_template(page).render(context(request, **_helpers(request), **values))
    return HTMLResponse(html, status_code=status_code)


def _errors(request: Request, exc: ValidationFailed | ValidationError) -> dict[str, str]:
    lang = request_language(request)
    errors = (
        exc.errors
        if isinstance(exc, ValidationFailed)
        else field_errors_from_pydantic(list(exc.errors()))
    )
    out: dict[str, str] = {}
    for e in errors:
        key = str(e.loc[-1]) if e.loc else "form"
        out.setdefault(key, translate_field_error(e, lang))
    return out


def _conflict(request: Request, exc: DomainError) -> str:
    from guanxi.core.web import translate_code

    lang = request_language(request)
    params = {k: v for k, v in exc.params.items() if k != "field"}
    return translate_code(exc.message, lang, params) or i18n.gettext(lang, "Invalid value")


# --------------------------------------------------------------------------- results


def _charts(
    request: Request,
    summary: ScoreSummary,
    trend: list[tuple[str, ScoreSummary]],
) -> list[dict[str, Any]]:
    lang = request_language(request)

    def t(text: str) -> str:
        return i18n.gettext(lang, text)

    charts: list[dict[str, Any]] = []
    if trend:
        charts.append(
            {
                "id": "sv-trend",
                "title": t(N_("NPS and CSAT over time")),
                "type": "line",
                "categories": [label for label, _s in trend],
                "axes": [{"suffix": ""}, {"suffix": ""}],
                "series": [
                    {
                        "name": "NPS",
                        "type": "line",
                        "data": [None if s.nps is None else round(s.nps, 1) for _l, s in trend],
                    },
                    {
                        "name": "CSAT",
                        "type": "line",
                        "yAxis": 1,
                        "data": [
                            None if s.csat_mean is None else round(s.csat_mean, 2)
                            for _l, s in trend
                        ],
                    },
                ],
            }
        )
    if summary.nps_answers:
        charts.append(
            {
                "id": "sv-mix",
                "title": t(N_("Promoters, passives and detractors")),
                "type": "pie",
                "data": [
                    {"name": t(N_("Promoters (9–10)")), "value": summary.promoters},
                    {"name": t(N_("Passives (7–8)")), "value": summary.passives},
                    {"name": t(N_("Detractors (0–6)")), "value": summary.detractors},
                ],
            }
        )
    dims = [(d, v) for d, v in summary.dimensions.items() if v is not None]
    if dims:
        charts.append(
            {
                "id": "sv-dims",
                "title": t(N_("Dimension scores (1–10)")),
                "type": "bar",
                "horizontal": True,
                "categories": [t(LABELS[d]) for d, _v in dims],
                "axes": [{"suffix": ""}],
                "series": [
                    {"name": t(N_("Mean")), "type": "bar", "data": [round(v, 2) for _d, v in dims]}
                ],
            }
        )
    return charts


@router.get("/surveys", response_class=HTMLResponse)
def results_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    start: date | None = None,
    end: date | None = None,
    template: Text = None,
    trigger: Text = None,
    channel: Text = None,
    region: Text = None,
    agent_id: QueryId = None,
    service_type: Text = None,
    segment: Text = None,
    period: Text = None,
    by: Text = None,
) -> Response:
    """CSAT, NPS, dimensions, response rate, the trend, a breakdown and the drivers."""
    tz = request.app.state.settings.timezone
    period = period if period in results.PERIODS else "month"
    by = by if by in results.BREAKDOWNS else "template"
    f = parse_filters(
        session, tz, start=start, end=end, template=template, trigger=trigger,
        channel=channel, region=region, agent_id=agent_id, service_type=service_type,
        segment=segment,
    )  # fmt: skip
    data = results.results(session, f, tz, period=period, by=by)
    drivers = analysis.drivers(session, f, tz)
    lang = request_language(request)
    templates = service.list_templates(session)
    names = results.agent_names(session, [k for k, _s in data.breakdown]) if by == "agent" else {}
    if by == "template":
        names = {t.code: t.name_zh if lang.startswith("zh") else t.name_en for t in templates}
    query = {
        k: v
        for k, v in {
            "start": f.start.isoformat(), "end": f.end.isoformat(), "template": template,
            "trigger": trigger, "channel": channel, "region": region, "segment": segment,
            "service_type": service_type, "agent_id": agent_id,
        }.items()
        if v
    }  # fmt: skip
    return _render(
        request,
        "surveys/results.html",
        data=data,
        drivers=drivers,
        names=names,
        query=query,
        period=period,
        by=by,
        template=template or "",
        trigger=trigger or "",
        channel=channel or "",
        templates=templates,
        triggers=[t.value for t in Trigger],
        channels=[c.value for c in ResponseChannel],
        breakdowns=results.BREAKDOWNS,
        charts=_charts(request, data.summary, data.trend),
        default_days=DEFAULT_DAYS,
    )


@router.get("/surveys/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    at: date | None = None,
    milestone: Text = None,
    days: Annotated[int, Query(ge=7, le=365)] = 30,
    template: Text = None,
) -> Response:
    """Before / after a date or a named campaign date: CSAT and NPS with intervals."""
    tz = request.app.state.settings.timezone
    policy = load_policy(session)
    if at is None and milestone:
        at = next((m.on for m in policy.milestones if m.name == milestone), None)
    check_date(at, "at")
    outcome = None
    if at is not None:
        f = parse_filters(session, tz, start=at, end=at, template=template)
        outcome = analysis.compare(session, f, tz, at=at, days=days)
    return _render(
        request,
        "surveys/compare.html",
        outcome=outcome,
        at=at,
        days=days,
        milestone=milestone or "",
        milestones=policy.milestones,
        template=template or "",
        templates=service.list_templates(session),
    )


# --------------------------------------------------------------------------- templates


@router.get("/surveys/templates", response_class=HTMLResponse)
def templates_page(
    request: Request, session: SessionDep, user: Manager, error: Text = None
) -> Response:
    """Every template with its current version and draft."""
    reads = [service.template_read(session, t) for t in service.list_templates(session)]
    return _render(
        request,
        "surveys/templates.html",
        reads=reads,
        kinds=[k.value for k in TemplateKind],
        errors={},
        values={},
    )


@router.post("/surveys/templates", response_class=HTMLResponse)
def create_template(
    request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Create a template (its first draft is empty: add questions, then publish)."""
    values = {k: str(form.get(k) or "").strip() for k in ("code", "name_zh", "name_en", "kind")}
    try:
        template = service.create_template(
            session, template_in=TemplateCreate.model_validate(values), actor=user
        )
    except (ValidationError, ValidationFailed) as exc:
        reads = [service.template_read(session, t) for t in service.list_templates(session)]
        return _render(
            request, "surveys/templates.html", 422, reads=reads,
            kinds=[k.value for k in TemplateKind], errors=_errors(request, exc), values=values,
        )  # fmt: skip
    except DomainError as exc:
        reads = [service.template_read(session, t) for t in service.list_templates(session)]
        return _render(
            request, "surveys/templates.html", 409, reads=reads,
            kinds=[k.value for k in TemplateKind], errors={"code": _conflict(request, exc)},
            values=values,
        )  # fmt: skip
    return RedirectResponse(f"/surveys/templates/{template.id}", status_code=303)


def _template_page(
    request: Request,
    session: Any,
    template_id: int,
    status_code: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    template = service.get_template(session, template_id)
    return _render(
        request,
        "surveys/template.html",
        status_code,
        t=service.template_read(session, template),
        kinds=[k.value for k in QuestionKind],
        errors=errors or {},
        values=values or {},
        error=error,
    )


@router.get("/surveys/templates/{template_id}", response_class=HTMLResponse)
def template_page(
    template_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """A template: its published questions, its draft to edit, publish."""
    return _template_page(request, session, template_id)


def _options(text: str) -> list[OptionIn]:
    """Options typed one per line as ``value | 中文 | English``."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not any(parts):
            continue
        while len(parts) < 3:
            parts.append(parts[-1])
        out.append(
            OptionIn.model_validate({"value": parts[0], "label_zh": parts[1], "label_en": parts[2]})
        )
    return out


@router.post("/surveys/templates/{template_id}/questions", response_class=HTMLResponse)
def add_question(
    template_id: PathId, request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Append a question to the draft."""
    keys = ("kind", "dimension", "label_zh", "label_en", "reason_for", "options", "code")
    values = {k: str(form.get(k) or "").strip() for k in keys}
    try:
        question = QuestionIn.model_validate(
            {
                "code": values["code"] or None,
                "kind": values["kind"],
                "dimension": values["dimension"] or None,
                "label_zh": values["label_zh"],
                "label_en": values["label_en"],
                "required": form.get("required") == "1",
                "reason_for": values["reason_for"] or None,
                "options": _options(values["options"]),
            }
        )
        service.add_question(session, template_id=template_id, question_in=question, actor=user)
    except (ValidationError, ValidationFailed) as exc:
        return _template_page(
            request, session, template_id, 422, errors=_errors(request, exc), values=values
        )
    return RedirectResponse(f"/surveys/templates/{template_id}#draft", status_code=303)


@router.post("/surveys/templates/{template_id}/questions/{code}/move", response_class=HTMLResponse)
def move_question(
    template_id: PathId,
    code: Annotated[str, Path(max_length=30)],
    request: Request,
    session: SessionDep,
    user: Manager,
    form: ParsedForm,
) -> Response:
    """Move a draft question up or down."""
    offset = -1 if form.get("direction") == "up" else 1
    service.move_question(session, template_id=template_id, code=code, offset=offset, actor=user)
    return RedirectResponse(f"/surveys/templates/{template_id}#draft", status_code=303)


@router.post(
    "/surveys/templates/{template_id}/questions/{code}/remove", response_class=HTMLResponse
)
def remove_question(
    template_id: PathId,
    code: Annotated[str, Path(max_length=30)],
    session: SessionDep,
    user: Manager,
) -> Response:
    """Remove a draft question (and a reason question asking about it)."""
    service.remove_question(session, template_id=template_id, code=code, actor=user)
    return RedirectResponse(f"/surveys/templates/{template_id}#draft", status_code=303)


@router.post("/surveys/templates/{template_id}/publish", response_class=HTMLResponse)
def publish(template_id: PathId, request: Request, session: SessionDep, user: Manager) -> Response:
    """Publish the draft."""
    try:
        service.publish(session, template_id=template_id, actor=user)
    except ValidationFailed as exc:
        return _template_page(request, session, template_id, 422, errors=_errors(request, exc))
    except DomainError as exc:
        return _template_page(request, session, template_id, 409, error=_conflict(request, exc))
    return RedirectResponse(f"/surveys/templates/{template_id}", status_code=303)


@router.post("/surveys/templates/{template_id}/active", response_class=HTMLResponse)
def set_active(
    template_id: PathId, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Switch a template on or off."""
    service.set_active(
        session, template_id=template_id, active=form.get("active") == "1", actor=user
    )
    return RedirectResponse(f"/surveys/templates/{template_id}", status_code=303)


# --------------------------------------------------------------------------- policy


@router.get("/surveys/policy", response_class=HTMLResponse)
def policy_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """The survey policy form."""
    policy = load_policy(session)
    return _render(request, "surveys/policy.html", p=policy.model_dump(mode="json"), errors={})


_BOOLS = ("after_ticket", "after_delivery", "relationship")


@router.post("/surveys/policy", response_class=HTMLResponse)
def save_policy_page(
    request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Save the survey policy (validated as a whole; errors name the field)."""
    current = load_policy(session).model_dump(mode="json")
    data: dict[str, Any] = {}
    for key, default in current.items():
        if key in _BOOLS:
            data[key] = form.get(key) == "1"
        elif key == "milestones":
            data[key] = _milestones(str(form.get("milestones") or ""))
        else:
            raw = form.get(key)
            data[key] = default if raw is None else str(raw).strip()
    try:
        save_policy(session, policy=SurveyPolicy.model_validate(data), actor=user)
    except ValidationError as exc:
        errors = _errors(request, exc)
        for e in exc.errors():
            # Cross-field rules name their field at the start of the message.
            message = str(e.get("msg", ""))
            if ": " in message and not e.get("loc"):
                name, text = message.removeprefix("Value error, ").split(": ", 1)
                errors[name] = text
        return _render(request, "surveys/policy.html", 422, p=data, errors=errors)
    return RedirectResponse("/surveys/policy?saved=1", status_code=303)


def _milestones(text: str) -> list[dict[str, str]]:
    """Campaign dates typed one per line as ``2026-10-01 名称``."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            day, _sep, name = line.partition(" ")
            out.append({"on": day.strip(), "name": name.strip()})
    return out


# --------------------------------------------------------------------------- outlets


@router.get("/surveys/outlets", response_class=HTMLResponse)
def outlets_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Outlets with their printable QR codes."""
    return _outlets(request, session)


def _outlets(
    request: Request,
    session: Any,
    status_code: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    rows = []
    for outlet in outlets.list_outlets(session):
        read = outlets.outlet_read(session, outlet)
        rows.append((read, Markup(outlets.qr_svg(read.url, scale=4, title=read.name))))  # noqa: S704 - segno's own SVG
    return _render(
        request,
        "surveys/outlets.html",
        status_code,
        rows=rows,
        templates=service.list_templates(session, active_only=True),
        errors=errors or {},
        values=values or {},
    )


@router.post("/surveys/outlets", response_class=HTMLResponse)
def create_outlet(
    request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Add an outlet."""
    values = {k: str(form.get(k) or "").strip() for k in ("code", "name", "region", "template")}
    try:
        outlets.create_outlet(
            session,
            outlet_in=OutletCreate.model_validate({**values, "region": values["region"] or None}),
            actor=user,
        )
    except (ValidationError, ValidationFailed) as exc:
        return _outlets(request, session, 422, errors=_errors(request, exc), values=values)
    except DomainError as exc:
        return _outlets(
            request, session, 409, errors={"code": _conflict(request, exc)}, values=values
        )
    return RedirectResponse("/surveys/outlets", status_code=303)


@router.get("/surveys/outlets/{outlet_id}/qr.svg")
def outlet_qr(outlet_id: PathId, session: SessionDep, user: Manager) -> Response:
    """An outlet's QR code as an SVG file (for print shops)."""
    read = outlets.outlet_read(session, outlets.get_outlet(session, outlet_id))
    return Response(
        outlets.qr_svg(read.url, scale=10, title=read.name),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="outlet-{read.code}.svg"'},
    )


@router.post("/surveys/outlets/{outlet_id}/active", response_class=HTMLResponse)
def outlet_active(
    outlet_id: PathId, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Switch an outlet's QR code on or off."""
    outlets.set_outlet_active(
        session, outlet_id=outlet_id, active=form.get("active") == "1", actor=user
    )
    return RedirectResponse("/surveys/outlets", status_code=303)


# --------------------------------------------------------------------------- agent entry


def _entry_page(
    request: Request,
    session: Any,
    user: User,
    status_code: int = 200,
    *,
    customer_id: int | None,
    ticket_id: int | None,
    template: str | None,
    channel: str = "phone",
    errors: dict[str, str] | None = None,
    values: dict[str, list[str]] | None = None,
) -> Response:
    from guanxi.customers.service import get_customer

    templates = service.list_templates(session, active_only=True)
    code = template or ("after_ticket" if ticket_id else "relationship")
    chosen = next((t for t in templates if t.code == code), templates[0] if templates else None)
    view = None
    if chosen is not None:
        version = service.current_version(session, chosen.id)
        view = service.version_view(session, version.id) if version else None
    customer = get_customer(session, customer_id=customer_id, viewer=user) if customer_id else None
    return _render(
        request,
        "surveys/enter.html",
        status_code,
        templates=templates,
        chosen=chosen,
        view=view,
        customer=customer,
        customer_id=customer_id,
        ticket_id=ticket_id,
        channel=channel,
        scales=SCALES,
        errors=errors or {},
        values=values or {},
    )


@router.get("/surveys/enter", response_class=HTMLResponse)
def entry_page(
    request: Request,
    session: SessionDep,
    user: Enterer,
    customer_id: QueryId = None,
    ticket_id: QueryId = None,
    template: Text = None,
) -> Response:
    """Type in a customer's answers given on paper or the phone."""
    return _entry_page(
        request, session, user, customer_id=customer_id, ticket_id=ticket_id, template=template
    )


def _int_or_none(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


@router.post("/surveys/enter", response_class=HTMLResponse)
def enter(request: Request, session: SessionDep, user: Enterer, form: ParsedForm) -> Response:
    """Store the typed-in answers; errors name the question."""
    customer_id = _int_or_none(form.get("customer_id"))
    ticket_id = _int_or_none(form.get("ticket_id"))
    code = str(form.get("template") or "")[:40]
    channel = str(form.get("channel") or "phone")
    shown = {k[2:]: [str(v) for v in form.getlist(k)] for k in form if k.startswith("q_")}
    answers: dict[str, Any] = {}
    for key, raw in shown.items():
        answers[key] = raw if len(raw) > 1 else (raw[0] if raw else None)
    try:
        template = service.template_by_code(session, code)
        version = service.current_version(session, template.id)
        view = service.version_view(session, version.id) if version else None
        for q in view.questions if view else ():
            if q.kind == QuestionKind.multi.value:
                answers[q.code] = shown.get(q.code, [])
        response = responses.enter_answers(
            session,
            response_in=ResponseIn.model_validate(
                {
                    "template": code,
                    "channel": channel if channel in ("paper", "phone") else "phone",
                    "customer_id": customer_id,
                    "ticket_id": ticket_id,
                    "answers": answers,
                    "language": request_language(request),
                }
            ),
            actor=user,
        )
    except (ValidationError, ValidationFailed) as exc:
        return _entry_page(
            request, session, user, 422, customer_id=customer_id, ticket_id=ticket_id,
            template=code, channel=channel, errors=_errors(request, exc), values=shown,
        )  # fmt: skip
    return RedirectResponse(f"/surveys/responses/{response.id}?entered=1", status_code=303)


# --------------------------------------------------------------------------- one response


@router.get("/surveys/responses/{response_id}", response_class=HTMLResponse)
def response_page(
    response_id: PathId, request: Request, session: SessionDep, user: Viewer
) -> Response:
    """One response with its answers: survey readers see any; agents and account managers
    (``surveys.enter``) those of customers they may see."""
    from guanxi.core.errors import NotFound
    from guanxi.customers.service import get_customer

    response = responses.get_response(session, response_id)
    if not has_permission(user, Permission.surveys_read):
        if not has_permission(user, Permission.surveys_enter) or response.customer_id is None:
            raise NotFound("survey response not found")
        get_customer(session, customer_id=response.customer_id, viewer=user)
    read = reading.response_read(session, response)
    return _render(
        request,
        "surveys/response.html",
        r=read,
        name=service.version_view(session, response.version_id).name(request_language(request)),
        entered=request.query_params.get("entered") == "1",
    )


# --------------------------------------------------------------------------- 360 panel


@router.get("/customers/{customer_id}/surveys", response_class=HTMLResponse)
def customer_panel(
    customer_id: PathId, request: Request, session: SessionDep, user: Viewer
) -> Response:
    """The 360 view's survey panel (loaded into the page): the latest NPS and CSAT, the
    newest answers, and agent entry. For users with a survey permission who may see the
    customer."""
    from guanxi.core.errors import PermissionDenied
    from guanxi.customers.service import get_customer

    if not (
        has_permission(user, Permission.surveys_read)
        or has_permission(user, Permission.surveys_enter)
    ):
        raise PermissionDenied("missing permission surveys.read")
    get_customer(session, customer_id=customer_id, viewer=user)
    history = reading.customer_surveys(session, customer_id)
    return _render(request, "surveys/_panel.html", s=history, customer_id=customer_id)
