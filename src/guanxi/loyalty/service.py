"""The membership programme's writes and reads: enrolment, points corrections, bonuses
and redemptions, buying coupons with points, a member's view, and the functions other
domains call (care: anniversaries and coupons; the service desk: priority; campaigns and
care audiences: tiers).

Each write is one transaction with its audit entry; the ledger rules are in
``ledger.py``, accrual in ``accrual.py``, tiers in ``tiers.py``, coupons in
``coupons.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, bindparam, select, text
from sqlalchemy.orm import Session

from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.core.types import UTCDateTime
from guanxi.customers.models import Customer
from guanxi.customers.service import get_customer
from guanxi.loyalty import coupons as coupon_rules
from guanxi.loyalty.clock import LOCAL_TZ, expiry_of, local_month_day_sql
from guanxi.loyalty.enums import PointsKind
from guanxi.loyalty.ledger import (
    dialect_of,
    ensure_member,
    expire_range,
    lock_members,
    post,
    upcoming_expiry,
)
from guanxi.loyalty.models import Coupon, LoyaltyMember, PointsEntry, TierChange
from guanxi.loyalty.policy import LoyaltyPolicy, load_policy
from guanxi.loyalty.schemas import (
    AdjustIn,
    BonusIn,
    ExpiringRead,
    MemberRead,
    ProgressRead,
    RedeemIn,
)
from guanxi.loyalty.tiers import Figures, evaluate_members, window_figures
from guanxi.security.models import User
from guanxi.security.service import actor_of

# --------------------------------------------------------------------------- contract


# Bulk coupons in the caller's transaction, idempotent per occasion (care, surveys): the
# coupon rules' own function, named here so other domains import the contract from one place.
issue_coupons = coupon_rules.issue_coupons


def anniversaries(session: Session, day: date, *, tz: str = LOCAL_TZ) -> list[tuple[int, int]]:
    """(customer_id, years as member) of members whose membership anniversary is ``day``
    (local date), at least one year on. Members who joined on 29 February celebrate on
    28 February in other years."""
    month_day = day.strftime("%m-%d")
    wanted = [month_day]
    leap = day.month == 2 and day.day == 28
    if leap and not _is_leap(day.year):
        wanted.append("02-29")
    expr = local_month_day_sql(dialect_of(session), "joined_at", tz)
    stmt = (
        text(f"SELECT customer_id, joined_at FROM loyalty_member WHERE {expr} IN :days")  # noqa: S608 - a fixed expression; the days are bound
        .bindparams(bindparam("days", expanding=True))
        .columns(customer_id=Integer, joined_at=UTCDateTime)
    )
    zone = ZoneInfo(tz)
    out: list[tuple[int, int]] = []
    rows = session.execute(stmt, {"days": wanted})
    for cid, joined in rows:
        years = day.year - joined.astimezone(zone).year
        if years >= 1:
            out.append((int(cid), years))
    return sorted(out)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def tier_of_customers() -> Select[int, str]:
    """SQL select (customer_id, tier code) of current members, for audience filters."""
    return select(LoyaltyMember.customer_id, LoyaltyMember.tier)


def has_priority_service(session: Session, customer_id: int) -> bool:
    """Whether the customer's tier grants the priority queue in the service desk."""
    tiers = load_policy(session).priority_tiers()
    if not tiers:
        return False
    tier = session.scalar(
        select(LoyaltyMember.tier).where(LoyaltyMember.customer_id == customer_id)
    )
    return tier in tiers


# The mark a priority ticket carries (tickets.service.register_priority_hook).
PRIORITY_MARK = "会员优先"


def ticket_priority_mark(session: Session, customer_id: int) -> str | None:
    """The service desk's hook: a member with priority service gets the mark (and the
    ticket at least high priority)."""
    return PRIORITY_MARK if has_priority_service(session, customer_id) else None


# --------------------------------------------------------------------------- writes


def _member_or_404(session: Session, customer_id: int) -> LoyaltyMember:
    member = session.get(LoyaltyMember, customer_id, populate_existing=True)
    if member is None:
        raise NotFound("loyalty_not_member", customer_id=customer_id)
    return member


def enrol(session: Session, *, customer_id: int, actor: User) -> LoyaltyMember:
    """Make a customer a member now (entry tier); enrolling a member again changes
    nothing."""
    with write_transaction(session):
        get_customer(session, customer_id=customer_id, viewer=actor)
        policy = load_policy(session)
        now = clock.now()
        added = ensure_member(
            session, customer_id=customer_id, tier=policy.entry.code, at=now, via="agent"
        )
        if added:
            session.add(
                TierChange(
                    customer_id=customer_id,
                    from_tier=None,
                    to_tier=policy.entry.code,
                    reason="joined",
                    at=now,
                )
            )
            record(
                session,
                actor=actor_of(actor),
                action="loyalty.enrolled",
                target_type="customer",
                target_id=customer_id,
                after={"tier": policy.entry.code},
            )
        # Shipments already in the window may qualify the new member for more.
        evaluate_members(session, [customer_id], policy=policy, now=now)
    return _member_or_404(session, customer_id)


def _key(given: str | None, prefix: str) -> str:
    """The ledger key of a manual entry: the caller's (retries add nothing) or a new
    one."""
    return f"{prefix}:{given}" if given else f"{prefix}:{uuid.uuid4().hex}"


def _prepare_debit(session: Session, customer_id: int, now: datetime) -> None:
    """Lock the member and bring expiry up to date first: points that expired are not
    spendable, even when the daily job has not run yet."""
    lock_members(session, [customer_id])
    expire_range(session, lo=customer_id, hi=customer_id, now=now)


def _manual_entry(
    session: Session,
    *,
    customer_id: int,
    kind: PointsKind,
    points: int,
    key: str | None,
    reason: str,
    action: str,
    actor: User,
) -> PointsEntry:
    """Post a ledger line an agent or manager gave (a correction, a bonus), once per key,
    and audit it. A debit brings expiry up to date first (see ``_prepare_debit``)."""
    now = clock.now()
    with write_transaction(session):
        get_customer(session, customer_id=customer_id, viewer=actor)
        _member_or_404(session, customer_id)
        policy = load_policy(session)
        if points < 0:
            _prepare_debit(session, customer_id, now)
        else:
            lock_members(session, [customer_id])
        entry, added = post(
            session,
            customer_id=customer_id,
            kind=kind,
            points=points,
            source_key=_key(key, kind.value),
            at=now,
            expires_at=expiry_of(now, policy.expiry_months),
            reason=reason,
            actor_id=actor.id,
        )
        if added:
            record(
                session,
                actor=actor_of(actor),
                action=action,
                target_type="customer",
                target_id=customer_id,
                after={
                    "points": points,
                    "reason": seal_about_customer(session, customer_id, reason),
                },
            )
    return entry


def adjust_points(
    session: Session, *, customer_id: int, adjust_in: AdjustIn, actor: User
) -> PointsEntry:
    """A manual correction (signed, with the reason; audited). A negative one beyond the
    balance is refused naming ``points``."""
    if adjust_in.points == 0:
        raise ValidationFailed(
            [FieldError(("points",), "points_zero", "An adjustment cannot be zero")]
        )
    return _manual_entry(
        session,
        customer_id=customer_id,
        kind=PointsKind.adjust,
        points=adjust_in.points,
        key=adjust_in.key,
        reason=adjust_in.reason,
        action="loyalty.points_adjusted",
        actor=actor,
    )


def grant_bonus(
    session: Session, *, customer_id: int, bonus_in: BonusIn, actor: User
) -> PointsEntry:
    """Bonus points once per key (a campaign's or a goodwill gesture's); audited."""
    return _manual_entry(
        session,
        customer_id=customer_id,
        kind=PointsKind.bonus,
        points=bonus_in.points,
        key=bonus_in.key,
        reason=bonus_in.reason,
        action="loyalty.bonus_granted",
        actor=actor,
    )


def redeem_points(
    session: Session, *, customer_id: int, redeem_in: RedeemIn, actor: User | Actor
) -> PointsEntry:
    """Spend points for the customer (refused atomically beyond the balance, naming
    ``points``); a retry with the same key spends nothing more."""
    now = clock.now()
    with write_transaction(session):
        if isinstance(actor, User):
            get_customer(session, customer_id=customer_id, viewer=actor)
        _member_or_404(session, customer_id)
        _prepare_debit(session, customer_id, now)
        entry, added = post(
            session,
            customer_id=customer_id,
            kind=PointsKind.redeem,
            points=-redeem_in.points,
            source_key=_key(redeem_in.key, "redeem"),
            at=now,
            reference=redeem_in.reference,
            actor_id=actor.id,
        )
        if added:
            record(
                session,
                actor=actor_of(actor) if isinstance(actor, User) else actor,
                action="loyalty.points_redeemed",
                target_type="customer",
                target_id=customer_id,
                after={
                    "points": redeem_in.points,
                    "reference": seal_about_customer(session, customer_id, redeem_in.reference),
                },
            )
    return entry


def buy_coupon(
    session: Session, *, customer_id: int, template_code: str, key: str | None, actor: User
) -> Coupon:
    """Spend the template's points price and issue the coupon, in one transaction: both
    happen or neither (not enough points, an exclusive offer of another tier, the limit
    reached)."""
    now = clock.now()
    key = key or uuid.uuid4().hex
    with write_transaction(session):
        get_customer(session, customer_id=customer_id, viewer=actor)
        _member_or_404(session, customer_id)
        template = coupon_rules.get_template(session, template_code)
        if template.points_price is None:
            raise Conflict("coupon_not_for_points", field="template_code")
        _prepare_debit(session, customer_id, now)
        post(
            session,
            customer_id=customer_id,
            kind=PointsKind.redeem,
            points=-template.points_price,
            source_key=f"coupon:{template.code}:{customer_id}:{key}",
            at=now,
            reference=f"coupon:{template.code}",
            actor_id=actor.id,
        )
        return coupon_rules.issue_coupon(
            session,
            template_code=template.code,
            customer_id=customer_id,
            source_key=f"points:{key}",
            actor=actor,
            now=now,
        )


# --------------------------------------------------------------------------- reads


def progress_of(policy: LoyaltyPolicy, tier: str, figures: Figures, lang: str) -> ProgressRead:
    """How far the window figures are from the tier above ``tier``."""
    rank = policy.rank(tier)
    if rank + 1 >= len(policy.tiers):
        return ProgressRead(
            next_tier=None,
            next_tier_name=None,
            spend_fen=figures.spend_fen,
            shipments=figures.shipments,
            spend_needed_fen=None,
            shipments_needed=None,
            percent=100,
        )
    nxt = policy.tiers[rank + 1]
    shares = []
    spend_needed = shipments_needed = None
    if nxt.min_spend_fen:
        spend_needed = max(0, nxt.min_spend_fen - figures.spend_fen)
        shares.append(min(1.0, figures.spend_fen / nxt.min_spend_fen))
    if nxt.min_shipments:
        shipments_needed = max(0, nxt.min_shipments - figures.shipments)
        shares.append(min(1.0, figures.shipments / nxt.min_shipments))
    share = (min(shares) if nxt.require_both else max(shares)) if shares else 1.0
    return ProgressRead(
        next_tier=nxt.code,
        next_tier_name=nxt.name(lang),
        spend_fen=figures.spend_fen,
        shipments=figures.shipments,
        spend_needed_fen=spend_needed,
        shipments_needed=shipments_needed,
        percent=int(share * 100),
    )


def member_view(
    session: Session, *, customer_id: int, viewer: User, lang: str = "zh_CN"
) -> MemberRead | None:
    """The member's panel: tier with progress to the next, balance, points expiring
    soon. None when the customer is not a member."""
    customer = get_customer(session, customer_id=customer_id, viewer=viewer)
    member = session.get(LoyaltyMember, customer_id, populate_existing=True)
    if member is None:
        return None
    policy = load_policy(session)
    now = clock.now()
    figures = window_figures(session, [customer_id], now=now, window_days=policy.window_days).get(
        customer_id, Figures()
    )
    rule = policy.tier(member.tier)
    downgrade_to = None
    if member.downgrade_due_at is not None:
        downgrade_to = policy.qualified(figures.spend_fen, figures.shipments).code
    expiring = upcoming_expiry(
        session, customer_id, until=now + timedelta(days=policy.expiring_soon_days)
    )
    return MemberRead(
        customer_id=customer_id,
        customer_name=customer.name,
        tier=member.tier,
        tier_name=rule.name(lang) if rule else member.tier,
        tier_since=member.tier_since,
        joined_at=member.joined_at,
        downgrade_due_at=member.downgrade_due_at,
        downgrade_to=downgrade_to,
        balance=member.balance,
        lifetime_points=member.lifetime_points,
        enrolled_via=member.enrolled_via,
        discount_percent=rule.discount_percent if rule else 0,
        priority_service=bool(rule and rule.priority_service),
        progress=progress_of(policy, member.tier, figures, lang),
        expiring=[ExpiringRead(at=e.at, points=e.points) for e in expiring],
    )


def ledger_of(
    session: Session, *, customer_id: int, viewer: User, limit: int = 50, before: int | None = None
) -> list[PointsEntry]:
    """A member's ledger lines, newest first (``before``: the last id of the previous
    page)."""
    get_customer(session, customer_id=customer_id, viewer=viewer)
    stmt = select(PointsEntry).where(PointsEntry.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(PointsEntry.id < before)
    return list(session.scalars(stmt.order_by(PointsEntry.id.desc()).limit(limit)))


def tier_history(session: Session, *, customer_id: int, viewer: User) -> list[TierChange]:
    """A member's tier history, newest first."""
    get_customer(session, customer_id=customer_id, viewer=viewer)
    return list(
        session.scalars(
            select(TierChange)
            .where(TierChange.customer_id == customer_id)
            .order_by(TierChange.id.desc())
            .limit(50)
        )
    )


def customer_coupons(session: Session, *, customer_id: int, viewer: User) -> list[Coupon]:
    """A customer's coupons, newest first."""
    get_customer(session, customer_id=customer_id, viewer=viewer)
    return coupon_rules.coupons_of(session, customer_id)


def names_of(session: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    """Customer names for a page of members."""
    if not customer_ids:
        return {}
    return dict(
        session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids))
        ).all()
    )
