"""JSON routes of the membership programme (``/api/v1/loyalty``): the policy, members,
their ledger and tier history, points corrections, bonuses and redemptions, buying a
coupon with points, the tier report and the ledger == balances check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from guanxi.core.errors import NotFound
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.loyalty import report, service
from guanxi.loyalty.coupons import coupon_reads
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.policy import LoyaltyPolicy, load_policy, save_policy
from guanxi.loyalty.schemas import (
    AdjustIn,
    BalanceCheckRead,
    BonusIn,
    BuyCouponIn,
    CouponRead,
    EnrolIn,
    MemberPage,
    MemberRead,
    PointsEntryRead,
    RedeemIn,
    ReportRead,
    TierChangeRead,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/loyalty", tags=["loyalty"])

Reader = Annotated[User, require(Permission.loyalty_read)]
Manager = Annotated[User, require(Permission.loyalty_manage)]
Adjuster = Annotated[User, require(Permission.loyalty_adjust)]
Redeemer = Annotated[User, require(Permission.loyalty_redeem)]


@router.get("/policy", response_model=LoyaltyPolicy)
def get_policy(session: SessionDep, user: Reader) -> LoyaltyPolicy:
    """The programme's rules in force: tiers, window, grace, earn rules, expiry."""
    return load_policy(session)


@router.put("/policy", response_model=LoyaltyPolicy)
def put_policy(body: LoyaltyPolicy, session: SessionDep, user: Manager) -> LoyaltyPolicy:
    """Replace the rules (validated as a whole; a refusal names the field)."""
    return save_policy(session, policy=body, actor=user)


@router.get("/members", response_model=MemberPage)
def members(
    session: SessionDep,
    user: Reader,
    tier: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[str, Query(pattern="^(balance|lifetime|joined|customer)$")] = "balance",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MemberPage:
    """Members by tier and search, sorted by balance (default), lifetime points, joining
    date or customer number."""
    return report.list_members(
        session, viewer=user, tier=tier, q=q, sort=sort, offset=offset, limit=limit
    )


@router.post("/members", response_model=MemberRead, status_code=201)
def enrol(body: EnrolIn, request: Request, session: SessionDep, user: Redeemer) -> MemberRead:
    """Enrol a customer (before a first shipment); enrolling a member again is harmless."""
    service.enrol(session, customer_id=body.customer_id, actor=user)
    return _member(request, session, body.customer_id, user)


def _member(request: Request, session: SessionDep, customer_id: int, user: User) -> MemberRead:
    view = service.member_view(
        session, customer_id=customer_id, viewer=user, lang=request_language(request)
    )
    if view is None:
        raise NotFound("loyalty_not_member", customer_id=customer_id)
    return view


@router.get("/members/{customer_id}", response_model=MemberRead)
def member(customer_id: PathId, request: Request, session: SessionDep, user: Reader) -> MemberRead:
    """A member: tier, progress to the next tier, balance, points expiring soon."""
    return _member(request, session, customer_id, user)


@router.get("/members/{customer_id}/ledger", response_model=list[PointsEntryRead])
def ledger(
    customer_id: PathId,
    session: SessionDep,
    user: Reader,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[PointsEntryRead]:
    """The member's ledger lines, newest first (``before``: the last id of the previous
    page)."""
    return [
        PointsEntryRead.model_validate(e)
        for e in service.ledger_of(
            session, customer_id=customer_id, viewer=user, limit=limit, before=before
        )
    ]


@router.get("/members/{customer_id}/tiers", response_model=list[TierChangeRead])
def tiers(customer_id: PathId, session: SessionDep, user: Reader) -> list[TierChangeRead]:
    """The member's tier history, newest first."""
    return [
        TierChangeRead.model_validate(t)
        for t in service.tier_history(session, customer_id=customer_id, viewer=user)
    ]


@router.post("/members/{customer_id}/adjust", response_model=PointsEntryRead, status_code=201)
def adjust(
    customer_id: PathId, body: AdjustIn, session: SessionDep, user: Adjuster
) -> PointsEntryRead:
    """A manual correction with its reason (negative: refused beyond the balance)."""
    return PointsEntryRead.model_validate(
        service.adjust_points(session, customer_id=customer_id, adjust_in=body, actor=user)
    )


@router.post("/members/{customer_id}/bonus", response_model=PointsEntryRead, status_code=201)
def bonus(
    customer_id: PathId, body: BonusIn, session: SessionDep, user: Manager
) -> PointsEntryRead:
    """Bonus points, once per key."""
    return PointsEntryRead.model_validate(
        service.grant_bonus(session, customer_id=customer_id, bonus_in=body, actor=user)
    )


@router.post("/members/{customer_id}/redeem", response_model=PointsEntryRead, status_code=201)
def redeem(
    customer_id: PathId, body: RedeemIn, session: SessionDep, user: Redeemer
) -> PointsEntryRead:
    """Spend points for the customer; refused atomically beyond the balance (409 naming
    ``points``); a retry with the same key spends nothing more."""
    return PointsEntryRead.model_validate(
        service.redeem_points(session, customer_id=customer_id, redeem_in=body, actor=user)
    )


@router.post("/members/{customer_id}/coupons", response_model=CouponRead, status_code=201)
def buy_coupon(
    customer_id: PathId, body: BuyCouponIn, request: Request, session: SessionDep, user: Redeemer
) -> CouponRead:
    """Buy a coupon with points: the points and the coupon in one transaction."""
    coupon = service.buy_coupon(
        session,
        customer_id=customer_id,
        template_code=body.template_code,
        key=body.key,
        actor=user,
    )
    read: CouponRead = coupon_reads(session, [coupon], request_language(request))[0]
    return read


@router.get("/report", response_model=ReportRead)
def tier_report(request: Request, session: SessionDep, user: Reader) -> ReportRead:
    """Members per tier, movement and points per month, the points liability."""
    return report.tier_report(session, lang=request_language(request))


@router.post("/verify", response_model=BalanceCheckRead)
def verify(session: SessionDep, user: Manager) -> BalanceCheckRead:
    """Compare every cached balance with the ledger (read-only)."""
    check = verify_balances(session)
    return BalanceCheckRead(
        ok=check.ok,
        members=check.members,
        entries=check.entries,
        balance_total=check.balance_total,
        ledger_total=check.ledger_total,
        differences=check.differences,
        lifetime_differences=check.lifetime_differences,
    )
