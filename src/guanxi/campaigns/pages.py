"""HTML pages of campaigns (``/campaigns``): the list, the editor (audience with its live
count, channel, variants A / B, control share, schedule, throttle, budget), the campaign's
page with launch / stop, cost lines and its report (funnel, revenue treated vs control,
ROI with its interval, satisfaction before and after; ECharts) and export; and the public
tracked link ``/c/{code}``.

A refused change comes back to the same page with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from guanxi.campaigns import policy as campaign_policy
from guanxi.campaigns import roi, service
from guanxi.campaigns.api import export_response
from guanxi.campaigns.launch import launch
from guanxi.campaigns.models import Campaign
from guanxi.campaigns.schemas import (
    CONTROL,
    CampaignIn,
    CampaignReport,
    CampaignStatus,
    CampaignUpdate,
    CostIn,
)
from guanxi.campaigns.tracking import record_click, refresh_conversions
from guanxi.core import i18n
from guanxi.core.errors import DomainError
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import (
    field_messages,
    request_language,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render, render_error

router = APIRouter()

Reader = Annotated[User, require(Permission.campaign_read)]
Manager = Annotated[User, require(Permission.campaign_manage)]
Code = Annotated[str, Path(max_length=40)]

STATUS_LABELS = {
    CampaignStatus.draft.value: N_("Draft"),
    CampaignStatus.scheduled.value: N_("Scheduled"),
    CampaignStatus.launching.value: N_("Launching"),
    CampaignStatus.launched.value: N_("Launched"),
    CampaignStatus.stopped.value: N_("Stopped"),
}
VARIANT_FIELDS = (
    "code",
    "weight",
    "sms_template",
    "subject_zh",
    "body_zh",
    "subject_en",
    "body_en",
)
SLOTS = ("A", "B")
# Field names as the editor labels them (the banner of refused changes names the field).
FIELD_LABELS = {
    "name": N_("Name"),
    "goal": N_("Goal"),
    "audience_id": N_("Audience"),
    "channel": N_("Channel"),
    "sms_template": N_("SMS template"),
    "target_url": N_("Target URL of the link"),
    "coupon_template": N_("Coupon (offer)"),
    "send_at": N_("Send time"),
    "control_pct": N_("Control group (%)"),
    "rate_per_hour": N_("At most messages per hour"),
    "attribution_days": N_("Attribution window (days)"),
    "budget_yuan": N_("Budget (yuan)"),
    "version": N_("Version"),
}


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused change as {field: message} in the reader's language (``variants.0.body_zh``
    keeps its full path: the editor shows it beside that variant's field)."""
    return field_messages(request, exc, key=_form_key)


def _form_key(loc: tuple[str | int, ...]) -> str:
    """The editor's field of an error location: ``variants.1.body_zh`` -> ``B_body_zh``,
    amounts in fen -> the field typed in yuan."""
    parts = [str(p) for p in loc]
    if len(parts) >= 3 and parts[0] == "variants" and parts[1].isdigit() and int(parts[1]) < 2:
        name = parts[2] if parts[2] != "sms_template" else None
        return "sms_template" if name is None else f"{SLOTS[int(parts[1])]}_{name}"
    key = ".".join(parts)
    return {"budget_fen": "budget_yuan", "amount_fen": "amount_yuan"}.get(key, key)


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.timezone)


def _fen(text: str) -> int | str:
    """Yuan as typed (``12.5``) in fen; the text itself when it is no amount (pydantic
    then refuses it naming the field)."""
    try:
        return int((Decimal(text.strip() or "0") * 100).to_integral_value())
    except InvalidOperation:
        return text


def _campaign_data(form: FormData, tz: ZoneInfo) -> dict[str, Any]:
    """The editor's form as a campaign's input."""
    data: dict[str, Any] = {
        k: str(form.get(k, "")).strip()
        for k in ("name", "goal", "audience_id", "channel", "target_url", "attribution_days")
    }
    data["control_pct"] = str(form.get("control_pct", "")).strip() or "0"
    data["coupon_template"] = str(form.get("coupon_template", "")).strip() or None
    data["rate_per_hour"] = str(form.get("rate_per_hour", "")).strip() or None
    data["budget_fen"] = _fen(str(form.get("budget_yuan", "")))
    at = str(form.get("send_at", "")).strip()
    if at:
        try:
            data["send_at"] = datetime.fromisoformat(at).replace(tzinfo=tz)
        except ValueError:
            data["send_at"] = at
    else:
        data["send_at"] = None
    if form.get("version"):
        data["version"] = str(form.get("version"))
    sms_template = str(form.get("sms_template", "")).strip() or None
    variants = []
    for slot in SLOTS:
        v: dict[str, str | None] = {
            k: str(form.get(f"{slot}_{k}", "")).strip() for k in VARIANT_FIELDS[1:]
        }
        if slot != "A" and not v["body_zh"]:
            continue
        v["code"] = slot
        v["weight"] = v["weight"] or "1"
        v["sms_template"] = sms_template
        variants.append(v)
    data["variants"] = variants
    return data


def _form_of(campaign: Campaign, tz: ZoneInfo) -> dict[str, Any]:
    """A stored campaign as the editor shows it."""
    data = service.campaign_input(campaign).model_dump(mode="json")
    data["budget_yuan"] = f"{campaign.budget_fen / 100:.2f}"
    data["send_at"] = (
        campaign.send_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if campaign.send_at else ""
    )
    return data


def _editor_form(data: dict[str, Any]) -> dict[str, Any]:
    """Input data flattened for the editor's fields (variants as A_body_zh ...)."""
    form = dict(data)
    variants = data.get("variants") or []
    for n, slot in enumerate(SLOTS):
        v = variants[n] if n < len(variants) and isinstance(variants[n], dict) else {}
        for k in VARIANT_FIELDS[1:]:
            form[f"{slot}_{k}"] = v.get(k) or ("1" if k == "weight" else "")
    form["sms_template"] = (variants[0].get("sms_template") if variants else None) or ""
    if "budget_yuan" not in form:
        fen = data.get("budget_fen")
        form["budget_yuan"] = f"{fen / 100:.2f}" if isinstance(fen, int) else fen or ""
    if isinstance(form.get("send_at"), datetime):
        form["send_at"] = form["send_at"].strftime("%Y-%m-%dT%H:%M")
    return form


def _options(session: SessionDep) -> dict[str, Any]:
    """The editor's choices: audiences, marketing SMS templates, active coupon templates."""
    from guanxi.campaigns.audiences import list_audiences
    from guanxi.loyalty.coupons import list_templates as coupon_templates
    from guanxi.notify.sms.templates import list_templates as sms_templates

    return {
        "audiences": [(a.id, a.name) for a in list_audiences(session)],
        "sms_templates": [
            (t.code, f"{t.code} · {t.name}")
            for t in sms_templates(session)
            if t.category == "marketing" and t.active
        ],
        "coupon_templates": [
            (t.code, f"{t.code} · {t.name_zh}") for t in coupon_templates(session, active_only=True)
        ],
    }


def _editor(
    request: Request,
    session: SessionDep,
    *,
    campaign: Campaign | None,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "campaigns/campaign_form.html",
        status_code=status_code,
        campaign=campaign,
        form=_editor_form(form),
        errors=errors or {},
        slots=SLOTS,
        field_labels=FIELD_LABELS,
        **_options(session),
    )


def _list_view(
    request: Request,
    session: Session,
    *,
    policy_form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    from guanxi.campaigns.audiences import list_audiences

    names = {a.id: a.name for a in list_audiences(session, archived=True)}
    names.update({a.id: a.name for a in list_audiences(session)})
    return render(
        request,
        "campaigns/campaigns.html",
        status_code=status_code,
        campaigns=service.list_campaigns(session),
        audience_names=names,
        status_labels=STATUS_LABELS,
        total_cost=service.total_cost,
        policy=policy_form or campaign_policy.load_policy(session).model_dump(),
        errors=errors or {},
        saved=saved,
    )


@router.get("/campaigns", response_class=HTMLResponse)
def list_page(request: Request, session: SessionDep, user: Reader, saved: bool = False) -> Response:
    """Every campaign with its state and launch figures, and the frequency cap."""
    return _list_view(request, session, saved=saved)


@router.post("/campaigns/policy", response_class=HTMLResponse)
async def policy_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save the campaigns' frequency cap; a refused value comes back beside its field."""
    form = await request.form()
    data = {k: str(form.get(k, "")).strip() for k in ("cap_count", "cap_days")}
    try:
        policy = campaign_policy.CampaignPolicy.model_validate(data)
    except ValidationError as exc:
        return _list_view(
            request,
            session,
            policy_form=data,
            errors=_messages(request, exc),
            status_code=422,
        )
    campaign_policy.save_policy(session, policy=policy, actor=user)
    return RedirectResponse("/campaigns?saved=true", status_code=303)


@router.get("/campaigns/new", response_class=HTMLResponse)
def new_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """The editor of a new campaign."""
    form = {
        "channel": "sms",
        "control_pct": 10,
        "attribution_days": 14,
        "budget_yuan": "0.00",
        "variants": [{"code": "A", "weight": 1}],
    }
    return _editor(request, session, campaign=None, form=form)


@router.post("/campaigns/new", response_class=HTMLResponse)
async def create_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save a new campaign; on to its page."""
    data = _campaign_data(await request.form(), _zone(request))
    data.pop("version", None)
    try:
        campaign = service.create_campaign(
            session, campaign_in=CampaignIn.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _editor(
            request,
            session,
            campaign=None,
            form=data,
            errors=_messages(request, exc),
            status_code=422,
        )
    return RedirectResponse(f"/campaigns/{campaign.id}", status_code=303)


@router.get("/campaigns/audience-count", response_class=HTMLResponse)
def audience_count(
    request: Request,
    session: SessionDep,
    user: Manager,
    audience_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """The chosen audience's live count (htmx fragment of the editor)."""
    from guanxi.campaigns.audiences import count_members, definition_of, get_audience

    lang = request_language(request)
    text = ""
    if audience_id is not None:
        try:
            audience = get_audience(session, audience_id)
        except DomainError:
            text = ""
        else:
            count = count_members(session, definition_of(audience))
            text = i18n.gettext(lang, N_("{count} customers now"), count=count)
    return HTMLResponse(f'<span id="audience-count">{text}</span>')


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """A campaign: its settings, actions, cost lines and report with charts."""
    return _campaign_view(request, session, campaign_id)


def _campaign_view(
    request: Request,
    session: SessionDep,
    campaign_id: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    from guanxi.campaigns.audiences import get_audience

    campaign = service.get_campaign(session, campaign_id)
    data = roi.report(session, campaign_id=campaign_id)
    return render(
        request,
        "campaigns/campaign.html",
        status_code=status_code,
        campaign=campaign,
        audience=get_audience(session, campaign.audience_id),
        report=data,
        charts=_charts(request, data),
        status_labels=STATUS_LABELS,
        total_cost=service.total_cost(campaign),
        errors=errors or {},
        control=CONTROL,
        editable=campaign.status in service.EDITABLE,
    )


def _charts(request: Request, data: CampaignReport) -> list[dict[str, Any]]:
    """The report's charts as the analytics chart script draws them."""
    lang = request_language(request)

    def t(text: str) -> str:
        return i18n.gettext(lang, text)

    def name(group: str) -> str:
        if group == CONTROL:
            return t(N_("Control group"))
        if group == roi.TREATED:
            return t(N_("All treated"))
        return t(N_("Variant {code}")).format(code=group)

    if not data.groups:
        return []
    stages = (
        ("recipients", N_("Recipients")),
        ("sent", N_("Sent")),
        ("delivered", N_("Delivered to handset")),
        ("clicked", N_("Clicked")),
        ("converted", N_("Converted")),
    )
    charts: list[dict[str, Any]] = [
        {
            "id": "cp-funnel",
            "title": t(N_("Funnel by group")),
            "type": "bar",
            "categories": [t(label) for _k, label in stages],
            "axes": [{"suffix": ""}],
            "series": [
                {
                    "name": name(g.group),
                    "type": "bar",
                    "data": [getattr(g, k) for k, _l in stages],
                }
                for g in data.groups
            ],
        },
        {
            "id": "cp-revenue",
            "title": t(N_("Revenue per recipient (yuan)")),
            "type": "bar",
            "categories": [name(g.group) for g in data.groups],
            "axes": [{"suffix": ""}],
            "series": [
                {
                    "name": t(N_("Revenue per recipient (yuan)")),
                    "type": "bar",
                    "data": [
                        round(g.revenue_fen / g.recipients / 100, 2) if g.recipients else 0
                        for g in data.groups
                    ],
                }
            ],
        },
    ]
    estimates = [
        (N_("Incremental revenue (yuan)"), data.incremental_revenue_fen),
        (N_("Net of cost (yuan)"), data.net_fen),
    ]
    shown = [(label, i) for label, i in estimates if i is not None]
    if shown:
        charts.append(
            {
                "id": "cp-roi",
                "title": t(N_("Return with its 95% interval (yuan)")),
                "type": "bar",
                "categories": [t(label) for label, _i in shown],
                "axes": [{"suffix": ""}],
                "series": [
                    {
                        "name": t(series),
                        "type": "bar",
                        "data": [round(getattr(i, attr) / 100, 2) for _l, i in shown],
                    }
                    for series, attr in (
                        (N_("Low"), "low"),
                        (N_("Estimate"), "estimate"),
                        (N_("High"), "high"),
                    )
                ],
            }
        )
    before, after = data.satisfaction_before, data.satisfaction_after
    if before.mean_csat is not None or after.mean_csat is not None:
        charts.append(
            {
                "id": "cp-csat",
                "title": t(N_("Satisfaction of the treated (CSAT)")),
                "type": "bar",
                "categories": [t(N_("Before")), t(N_("After"))],
                "axes": [{"suffix": ""}],
                "series": [
                    {
                        "name": "CSAT",
                        "type": "bar",
                        "data": [
                            None if s.mean_csat is None else round(s.mean_csat, 2)
                            for s in (before, after)
                        ],
                    }
                ],
            }
        )
    return charts


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def edit_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """The editor of a campaign not yet launched."""
    campaign = service.get_campaign(session, campaign_id)
    return _editor(request, session, campaign=campaign, form=_form_of(campaign, _zone(request)))


@router.post("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
async def update_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Save a campaign's changes."""
    campaign = service.get_campaign(session, campaign_id)
    data = _campaign_data(await request.form(), _zone(request))
    try:
        service.update_campaign(
            session,
            campaign_id=campaign_id,
            campaign_in=CampaignUpdate.model_validate(data),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _editor(
            request,
            session,
            campaign=campaign,
            form=data,
            errors=_messages(request, exc),
            status_code=422,
        )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/launch", response_class=HTMLResponse)
def launch_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Launch now; a campaign that cannot be launched says why."""
    try:
        launch(session, campaign_id=campaign_id, actor=user)
    except DomainError as exc:
        session.rollback()
        return _campaign_view(
            request, session, campaign_id, errors=_messages(request, exc), status_code=409
        )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/stop", response_class=HTMLResponse)
def stop_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Stop: cancel the messages not yet sent."""
    try:
        service.stop_campaign(session, campaign_id=campaign_id, actor=user)
    except DomainError as exc:
        session.rollback()
        return _campaign_view(
            request, session, campaign_id, errors=_messages(request, exc), status_code=409
        )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/conversions", response_class=HTMLResponse)
def conversions_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Recompute the conversions now (the worker does it hourly)."""
    service.get_campaign(session, campaign_id)
    refresh_conversions(session, campaign_id=campaign_id)
    return RedirectResponse(f"/campaigns/{campaign_id}#roi", status_code=303)


@router.post("/campaigns/{campaign_id}/costs", response_class=HTMLResponse)
async def cost_page(
    campaign_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Add a cost line (amount in yuan)."""
    form = await request.form()
    data = {
        "label": str(form.get("label", "")).strip(),
        "amount_fen": _fen(str(form.get("amount_yuan", ""))),
    }
    try:
        service.add_cost(
            session, campaign_id=campaign_id, cost_in=CostIn.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _campaign_view(
            request, session, campaign_id, errors=_messages(request, exc), status_code=422
        )
    return RedirectResponse(f"/campaigns/{campaign_id}#costs", status_code=303)


@router.get("/campaigns/{campaign_id}/export")
def export_page(
    campaign_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the query parameter's name
) -> Response:
    """The report as CSV or XLSX."""
    service.get_campaign(session, campaign_id)
    return export_response(request, session, campaign_id, format)


@router.get("/c/{code}")
def tracked_link(code: Code, request: Request, session: SessionDep) -> Response:
    """A tracked link of a campaign message (public): record the click, then go on to the
    campaign's target; an unknown code gets the not-found page."""
    click = record_click(session, code=code)
    if click is None or not click.target_url:
        return render_error(request, 404)
    response = RedirectResponse(click.target_url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
