"""The loyalty panel of the customer 360 view (``/customers/{id}/loyalty``): tier with the
progress to the next, balance, points expiring soon, recent ledger lines, coupons, and
the counter's actions by permission (enrol, adjust, spend points, buy or issue a coupon,
redeem or void a coupon).

The 360 page loads the panel with htmx after it has shown (the 360 view's own reads stay
as measured); each action posts here and gets the panel back with what happened, or
why it was refused naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from guanxi.core import i18n
from guanxi.core.errors import DomainError, FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.loyalty import codes, coupons, service
from guanxi.loyalty.audience import issue_one
from guanxi.loyalty.policy import load_policy
from guanxi.loyalty.schemas import AdjustIn, RedeemIn
from guanxi.loyalty.web import fen_of, labeller, refusal, text_of
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.loyalty_read)]
Adjuster = Annotated[User, require(Permission.loyalty_adjust)]
Redeemer = Annotated[User, require(Permission.loyalty_redeem)]


def _panel(
    request: Request,
    session: SessionDep,
    customer_id: int,
    user: User,
    *,
    done: str | None = None,
    errors: list[str] | None = None,
) -> Response:
    lang = request_language(request)
    member = service.member_view(session, customer_id=customer_id, viewer=user, lang=lang)
    ledger = service.ledger_of(session, customer_id=customer_id, viewer=user, limit=10)
    found = service.customer_coupons(session, customer_id=customer_id, viewer=user)
    templates = coupons.list_templates(session, active_only=True)
    # htmx swaps the panel in place (and only swaps successful responses: a refusal is
    # 200 there); anything else gets a whole page, a refusal with 422.
    htmx = "hx-request" in request.headers
    status = 422 if errors and not htmx else 200
    return render(
        request,
        "loyalty/_panel.html" if htmx else "loyalty/member.html",
        status_code=status,
        customer_id=customer_id,
        m=member,
        ledger=ledger,
        coupons=coupons.coupon_reads(session, found[:10], lang),
        templates=templates,
        buyable=[t for t in templates if t.points_price],
        done=done,
        errors=errors or [],
        llabel=labeller(request),
        window_days=load_policy(session).window_days,
        # A fresh key per rendered form: a double click or a retried post is one entry.
        new_key=lambda: uuid.uuid4().hex,
    )


@router.get("/customers/{customer_id}/loyalty", response_class=HTMLResponse)
def panel(customer_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """The loyalty panel of one customer."""
    return _panel(request, session, customer_id, user)


def _said(request: Request, message: str, **params: Any) -> str:
    return i18n.gettext(request_language(request), message, **params)


def _outcome(
    request: Request, session: SessionDep, customer_id: int, user: User, step: Callable[[], str]
) -> Response:
    """Run one counter action (``step`` returns what happened, in the user's language)
    and give the panel back with that, or with why it was refused."""
    try:
        done = step()
    except (ValidationError, DomainError) as exc:
        return _panel(request, session, customer_id, user, errors=refusal(request, exc))
    return _panel(request, session, customer_id, user, done=done)


@router.post("/customers/{customer_id}/loyalty/enrol", response_class=HTMLResponse)
def enrol(customer_id: PathId, request: Request, session: SessionDep, user: Redeemer) -> Response:
    """Make the customer a member now."""

    def step() -> str:
        service.enrol(session, customer_id=customer_id, actor=user)
        return _said(request, N_("Enrolled"))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/adjust", response_class=HTMLResponse)
async def adjust(
    customer_id: PathId, request: Request, session: SessionDep, user: Adjuster
) -> Response:
    """A manual correction of the points, with the reason."""
    form = await request.form()

    def step() -> str:
        body = AdjustIn.model_validate(
            {
                "points": text_of(form, "points"),
                "reason": text_of(form, "reason"),
                "key": text_of(form, "key"),
            }
        )
        service.adjust_points(session, customer_id=customer_id, adjust_in=body, actor=user)
        return _said(request, N_("Points adjusted"))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/redeem", response_class=HTMLResponse)
async def redeem(
    customer_id: PathId, request: Request, session: SessionDep, user: Redeemer
) -> Response:
    """Spend the customer's points on an order or waybill."""
    form = await request.form()

    def step() -> str:
        body = RedeemIn.model_validate(
            {
                "points": text_of(form, "points"),
                "reference": text_of(form, "reference"),
                "key": text_of(form, "key"),
            }
        )
        service.redeem_points(session, customer_id=customer_id, redeem_in=body, actor=user)
        return _said(request, N_("Points redeemed"))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/buy", response_class=HTMLResponse)
async def buy(
    customer_id: PathId, request: Request, session: SessionDep, user: Redeemer
) -> Response:
    """Buy a coupon with the customer's points."""
    form = await request.form()

    def step() -> str:
        coupon = service.buy_coupon(
            session,
            customer_id=customer_id,
            template_code=text_of(form, "template_code") or "",
            key=text_of(form, "key"),
            actor=user,
        )
        return _said(request, N_("Coupon {code} issued"), code=codes.display(coupon.code))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/issue", response_class=HTMLResponse)
async def issue(
    customer_id: PathId, request: Request, session: SessionDep, user: Adjuster
) -> Response:
    """Give the customer one coupon (a goodwill gesture)."""
    form = await request.form()

    def step() -> str:
        coupon = issue_one(
            session,
            customer_id=customer_id,
            template_code=text_of(form, "template_code") or "",
            source_key=f"goodwill:{text_of(form, 'key') or uuid.uuid4().hex}",
            actor=user,
        )
        return _said(request, N_("Coupon {code} issued"), code=codes.display(coupon.code))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/use", response_class=HTMLResponse)
async def use_coupon(
    customer_id: PathId, request: Request, session: SessionDep, user: Redeemer
) -> Response:
    """Redeem one of the customer's coupons on an order or waybill."""
    form = await request.form()
    reference = text_of(form, "reference")
    amount = fen_of(form, "amount")

    def step() -> str:
        if reference is None:
            raise ValidationFailed(
                [FieldError(("reference",), "missing", "This field is required")]
            )
        if isinstance(amount, str) or (amount is not None and amount < 0):
            raise ValidationFailed(
                [FieldError(("amount_fen",), "amount_invalid", "Not an amount in yuan")]
            )
        coupons.redeem_coupon(
            session,
            code=text_of(form, "code") or "",
            reference=reference[:80],
            amount_fen=amount,
            customer_id=customer_id,
            actor=user,
        )
        return _said(request, N_("Coupon redeemed"))

    return _outcome(request, session, customer_id, user, step)


@router.post("/customers/{customer_id}/loyalty/void", response_class=HTMLResponse)
async def void(
    customer_id: PathId, request: Request, session: SessionDep, user: Adjuster
) -> Response:
    """Void one of the customer's coupons, with the reason."""
    form = await request.form()
    reason = text_of(form, "reason")

    def step() -> str:
        if reason is None:
            raise ValidationFailed([FieldError(("reason",), "missing", "This field is required")])
        coupons.void_coupon(
            session,
            code=text_of(form, "code") or "",
            reason=reason[:300],
            actor=user,
            customer_id=customer_id,
        )
        return _said(request, N_("Coupon voided"))

    return _outcome(request, session, customer_id, user, step)
