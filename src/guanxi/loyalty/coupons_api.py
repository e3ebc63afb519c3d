"""JSON routes of coupons (``/api/v1/coupons``): templates, issue to an audience, a
customer's coupons, redemption at the counter, voiding."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from guanxi.core.ids import BodyId
from guanxi.core.web import request_language
from guanxi.customers.service import get_customer
from guanxi.loyalty import coupons
from guanxi.loyalty.audience import issue_one, issue_to_audience
from guanxi.loyalty.models import CouponTemplate
from guanxi.loyalty.schemas import (
    CouponRead,
    CouponRedeemIn,
    CouponTemplateIn,
    CouponTemplateRead,
    CouponVoidIn,
    IssueIn,
    IssueResult,
    Key,
    TemplateCode,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/coupons", tags=["coupons"])

Reader = Annotated[User, require(Permission.loyalty_read)]
Manager = Annotated[User, require(Permission.loyalty_manage)]
Adjuster = Annotated[User, require(Permission.loyalty_adjust)]
Redeemer = Annotated[User, require(Permission.loyalty_redeem)]
CodePath = Annotated[str, Path(min_length=1, max_length=40)]


def template_read(template: CouponTemplate) -> CouponTemplateRead:
    """A template as the API shows it (tiers as a list)."""
    return CouponTemplateRead.model_validate(
        {
            **{
                c: getattr(template, c)
                for c in CouponTemplateRead.model_fields
                if c != "eligible_tiers"
            },
            "eligible_tiers": coupons.eligible_tiers(template),
        }
    )


@router.get("/templates", response_model=list[CouponTemplateRead])
def templates(session: SessionDep, user: Reader) -> list[CouponTemplateRead]:
    """Every coupon template, newest first."""
    return [template_read(t) for t in coupons.list_templates(session)]


@router.post("/templates", response_model=CouponTemplateRead)
def save_template(body: CouponTemplateIn, session: SessionDep, user: Manager) -> CouponTemplateRead:
    """Create a template, or change the one with the same code."""
    return template_read(coupons.save_template(session, template_in=body, actor=user))


@router.post("/issue", response_model=IssueResult)
def issue(body: IssueIn, session: SessionDep, user: Manager) -> IssueResult:
    """Issue a template's coupons to customers, a tier or a segment; idempotent per
    ``source_key`` (nobody gets two for the same occasion)."""
    return issue_to_audience(session, issue_in=body, actor=user)


class IssueOneIn(BaseModel):
    """One coupon to one customer (a goodwill gesture), once per ``key``."""

    model_config = ConfigDict(extra="forbid")

    customer_id: BodyId
    template_code: TemplateCode
    key: Key


@router.post("/issue-one", response_model=CouponRead, status_code=201)
def issue_single(
    body: IssueOneIn, request: Request, session: SessionDep, user: Adjuster
) -> CouponRead:
    """One coupon to one customer (supervisors' goodwill gestures)."""
    coupon = issue_one(
        session,
        customer_id=body.customer_id,
        template_code=body.template_code,
        source_key=f"goodwill:{body.key}",
        actor=user,
    )
    read: CouponRead = coupons.coupon_reads(session, [coupon], request_language(request))[0]
    return read


@router.get("", response_model=list[CouponRead])
def customer_coupons(
    request: Request,
    session: SessionDep,
    user: Reader,
    customer_id: Annotated[int, Query(ge=1, le=2**63 - 1)],
) -> list[CouponRead]:
    """A customer's coupons, newest first."""
    get_customer(session, customer_id=customer_id, viewer=user)
    found = coupons.coupons_of(session, customer_id)
    reads: list[CouponRead] = coupons.coupon_reads(session, found, request_language(request))
    return reads


def _read(request: Request, session: SessionDep, code: str, user: User) -> CouponRead:
    coupon = coupons.find_coupon(session, code)
    get_customer(session, customer_id=coupon.customer_id, viewer=user)
    read: CouponRead = coupons.coupon_reads(session, [coupon], request_language(request))[0]
    return read


@router.get("/{code}", response_model=CouponRead)
def coupon(code: CodePath, request: Request, session: SessionDep, user: Reader) -> CouponRead:
    """One coupon by its code (dashes and case do not matter)."""
    return _read(request, session, code, user)


@router.post("/{code}/redeem", response_model=CouponRead)
def redeem(
    code: CodePath, body: CouponRedeemIn, request: Request, session: SessionDep, user: Redeemer
) -> CouponRead:
    """Use the coupon once on an order / waybill; a second use is refused (409 naming
    ``code``), as are a mistyped code (422) and an order below the minimum spend."""
    coupons.redeem_coupon(
        session,
        code=code,
        reference=body.reference,
        amount_fen=body.amount_fen,
        customer_id=body.customer_id,
        actor=user,
    )
    return _read(request, session, code, user)


@router.post("/{code}/void", response_model=CouponRead)
def void(
    code: CodePath, body: CouponVoidIn, request: Request, session: SessionDep, user: Adjuster
) -> CouponRead:
    """Void an unused coupon, with the reason."""
    coupons.void_coupon(session, code=code, reason=body.reason, actor=user)
    return _read(request, session, code, user)
