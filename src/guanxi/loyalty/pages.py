"""HTML pages of the membership programme: the members list, the tier report (with the
ledger == balances check), coupon templates with the issue-to-audience form, and the
policy (tiers, earn rules, expiry)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.analytics.policy import SEGMENTS
from guanxi.core import i18n
from guanxi.core.errors import DomainError
from guanxi.core.web import request_language
from guanxi.loyalty import coupons, report
from guanxi.loyalty.audience import issue_to_audience
from guanxi.loyalty.enums import CouponKind, FreeService
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.policy import LoyaltyPolicy, load_policy, save_policy
from guanxi.loyalty.schemas import CouponTemplateIn, IssueIn
from guanxi.loyalty.web import fen_of, labeller, refusal, text_of
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.shipments.enums import ServiceType
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.loyalty_read)]
Manager = Annotated[User, require(Permission.loyalty_manage)]

PAGE = 50


@router.get("/loyalty", response_class=HTMLResponse)
def members_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    tier: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[str, Query(pattern="^(balance|lifetime|joined|customer)$")] = "balance",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Members by tier and search, sorted by balance, lifetime points or joining date."""
    page = report.list_members(
        session, viewer=user, tier=tier or None, q=q or None, sort=sort, offset=offset, limit=PAGE
    )
    policy = load_policy(session)
    lang = request_language(request)
    return render(
        request,
        "loyalty/members.html",
        page=page,
        tiers=[(t.code, t.name(lang)) for t in policy.tiers],
        tier_names={t.code: t.name(lang) for t in policy.tiers},
        tier=tier or "",
        q=q or "",
        sort=sort,
        offset=offset,
        size=PAGE,
    )


def _report(
    request: Request, session: SessionDep, check: Any = None, status: int = 200
) -> Response:
    data = report.tier_report(session, lang=request_language(request))
    peak = max(
        [m.issued for m in data.months] + [m.redeemed + m.expired for m in data.months] + [1]
    )
    return render(
        request,
        "loyalty/report.html",
        status_code=status,
        r=data,
        peak=peak,
        check=check,
    )


@router.get("/loyalty/report", response_class=HTMLResponse)
def report_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """Members per tier, monthly movement and points, the outstanding liability."""
    return _report(request, session)


@router.post("/loyalty/verify", response_class=HTMLResponse)
def verify_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Run the ledger == balances check and show it on the report."""
    return _report(request, session, check=verify_balances(session))


# --------------------------------------------------------------------------- coupons


def _coupons_page(
    request: Request,
    session: SessionDep,
    *,
    errors: list[str] | None = None,
    done: str | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    lang = request_language(request)
    policy = load_policy(session)
    return render(
        request,
        "loyalty/coupons.html",
        status_code=status,
        templates=coupons.list_templates(session),
        tiers=[(t.code, t.name(lang)) for t in policy.tiers],
        segments=SEGMENTS,
        kinds=[k.value for k in CouponKind],
        services=[s.value for s in FreeService],
        errors=errors or [],
        done=done,
        values=values or {},
        llabel=labeller(request),
        eligible=coupons.eligible_tiers,
    )


@router.get("/loyalty/coupons", response_class=HTMLResponse)
def coupons_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """Coupon templates, how many were issued, and the forms to add one and to issue."""
    return _coupons_page(request, session)


def _template_data(form: FormData) -> dict[str, Any]:
    """The template form as the API body (amounts typed in yuan, dates local)."""
    data: dict[str, Any] = {
        "code": text_of(form, "code"),
        "name_zh": text_of(form, "name_zh"),
        "name_en": text_of(form, "name_en"),
        "kind": text_of(form, "kind"),
        "amount_off_fen": fen_of(form, "amount_off"),
        "percent_off": text_of(form, "percent_off"),
        "free_service": text_of(form, "free_service"),
        "min_spend_fen": fen_of(form, "min_spend") or 0,
        "valid_from": _local(text_of(form, "valid_from")),
        "valid_until": _local(text_of(form, "valid_until")),
        "valid_days": text_of(form, "valid_days"),
        "total_limit": text_of(form, "total_limit"),
        "eligible_tiers": form.getlist("eligible_tiers"),
        "points_price": text_of(form, "points_price"),
        "active": form.get("active") == "1",
    }
    return data


def _local(day: str | None) -> str | None:
    """A date typed in the form (local) as the start of that day in Asia/Shanghai."""
    if day is None:
        return None
    return f"{day}T00:00:00+08:00" if len(day) == 10 else day


@router.post("/loyalty/coupons/templates", response_class=HTMLResponse)
async def save_template(request: Request, session: SessionDep, user: Manager) -> Response:
    """Add a template, or change the one with the same code."""
    form = await request.form()
    data = _template_data(form)
    try:
        coupons.save_template(
            session, template_in=CouponTemplateIn.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        return _coupons_page(
            request, session, errors=refusal(request, exc), values=dict(form), status=422
        )
    return RedirectResponse("/loyalty/coupons", status_code=303)


@router.post("/loyalty/coupons/issue", response_class=HTMLResponse)
async def issue(request: Request, session: SessionDep, user: Manager) -> Response:
    """Issue a template's coupons to a tier or a segment (or listed customers)."""
    form = await request.form()
    audience = text_of(form, "audience") or ""
    kind, _, value = audience.partition(":")
    ids = [
        p for p in (text_of(form, "customer_ids") or "").replace("，", ",").split(",") if p.strip()
    ]
    data: dict[str, Any] = {
        "template_code": text_of(form, "template_code"),
        "source_key": text_of(form, "source_key"),
        "tier": value if kind == "tier" else None,
        "segment": value if kind == "segment" else None,
        "customer_ids": [p.strip() for p in ids] if kind == "customers" else [],
    }
    try:
        result = issue_to_audience(session, issue_in=IssueIn.model_validate(data), actor=user)
    except (ValidationError, DomainError) as exc:
        return _coupons_page(request, session, errors=refusal(request, exc), status=422)
    lang = request_language(request)
    done = i18n.gettext(lang, "{n} customers hold a coupon of this occasion", n=result.issued)
    return _coupons_page(request, session, done=done)


# --------------------------------------------------------------------------- policy


def _policy_page(
    request: Request,
    session: SessionDep,
    *,
    errors: list[str] | None = None,
    shown: LoyaltyPolicy | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "loyalty/policy.html",
        status_code=status,
        policy=shown or load_policy(session),
        services=[s.value for s in ServiceType],
        errors=errors or [],
        # Yuan as the form takes them back (no thousands separators).
        yuan=lambda fen: f"{fen / 100:.2f}".removesuffix(".00"),
    )


@router.get("/loyalty/policy", response_class=HTMLResponse)
def policy_page(request: Request, session: SessionDep, user: Reader) -> Response:
    """The programme's rules (editable with ``loyalty.manage``)."""
    return _policy_page(request, session)


def _policy_data(form: FormData) -> dict[str, Any]:
    """The policy form as the API body (amounts in yuan, one row per tier; rows without a
    code are left out)."""
    tiers = []
    for i in range(int(text_of(form, "tier_rows") or 0)):
        code = text_of(form, f"tiers.{i}.code")
        if code is None:
            continue
        templates = text_of(form, f"tiers.{i}.coupon_templates") or ""
        tiers.append(
            {
                "code": code,
                "name_zh": text_of(form, f"tiers.{i}.name_zh"),
                "name_en": text_of(form, f"tiers.{i}.name_en"),
                "min_spend_fen": fen_of(form, f"tiers.{i}.min_spend"),
                "min_shipments": text_of(form, f"tiers.{i}.min_shipments"),
                "require_both": form.get(f"tiers.{i}.require_both") == "1",
                "discount_percent": text_of(form, f"tiers.{i}.discount_percent") or 0,
                "priority_service": form.get(f"tiers.{i}.priority_service") == "1",
                "coupon_templates": [t.strip() for t in templates.split(",") if t.strip()],
            }
        )
    multipliers = {
        s.value: text_of(form, f"earn.multipliers.{s.value}")
        for s in ServiceType
        if text_of(form, f"earn.multipliers.{s.value}") not in (None, "1", "1.0", "1.00")
    }
    return {
        "tiers": tiers,
        "window_days": text_of(form, "window_days"),
        "grace_days": text_of(form, "grace_days"),
        "expiry_months": text_of(form, "expiry_months"),
        "expiring_soon_days": text_of(form, "expiring_soon_days"),
        "earn": {
            "points_per_yuan": text_of(form, "earn.points_per_yuan"),
            "multipliers": multipliers,
            "shipment_bonus": text_of(form, "earn.shipment_bonus") or 0,
            "min_fee_fen": fen_of(form, "earn.min_fee") or 0,
        },
    }


@router.post("/loyalty/policy", response_class=HTMLResponse)
async def save_policy_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save the rules; a refusal comes back with every offending field named."""
    form = await request.form()
    data = _policy_data(form)
    try:
        policy = LoyaltyPolicy.model_validate(data)
        save_policy(session, policy=policy, actor=user)
    except (ValidationError, DomainError) as exc:
        return _policy_page(request, session, errors=refusal(request, exc), status=422)
    return RedirectResponse("/loyalty/policy?saved=1", status_code=303)
