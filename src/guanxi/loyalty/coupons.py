"""Coupons (优惠券): templates, issue (one customer, a list, a tier, a segment; bulk and
idempotent per occasion), single redemption, voiding, expiry.

Redemption and voiding are one conditional UPDATE from ``issued``: of two counters
redeeming the same code at once, exactly one succeeds and the other is told the coupon is
already used. A template's total limit is a counter moved in the same transaction as the
coupons it counts, checked by the database as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.loyalty import codes
from guanxi.loyalty.enums import CouponKind, CouponStatus
from guanxi.loyalty.ledger import dialect_of
from guanxi.loyalty.models import Coupon, CouponTemplate, LoyaltyMember
from guanxi.loyalty.policy import load_policy
from guanxi.loyalty.schemas import CouponTemplateIn
from guanxi.loyalty.tiers import webhook_emitter
from guanxi.security.models import User
from guanxi.security.service import actor_of

_IN_CHUNK = 900  # bound parameters per IN list (SQLite's default limit is 32766)


def _actor(actor: Actor | User) -> Actor:
    return actor_of(actor) if isinstance(actor, User) else actor


# --------------------------------------------------------------------------- templates


def template_errors(template_in: CouponTemplateIn, tiers: set[str]) -> list[FieldError]:
    """The rules between a template's fields, each with the field it concerns."""
    errors: list[FieldError] = []
    needs = {
        CouponKind.amount_off: ("amount_off_fen", template_in.amount_off_fen),
        CouponKind.percent_off: ("percent_off", template_in.percent_off),
        CouponKind.free_service: ("free_service", template_in.free_service),
    }
    name, value = needs[template_in.kind]
    if value is None:
        errors.append(
            FieldError((name,), "coupon_value_missing", "Say what this kind of coupon takes off")
        )
    fixed = template_in.valid_from is not None or template_in.valid_until is not None
    if fixed and (template_in.valid_from is None or template_in.valid_until is None):
        missing = "valid_until" if template_in.valid_until is None else "valid_from"
        errors.append(
            FieldError((missing,), "coupon_window_open", "A fixed window needs a start and an end")
        )
    elif (
        template_in.valid_from is not None
        and template_in.valid_until is not None
        and template_in.valid_until <= template_in.valid_from
    ):
        errors.append(
            FieldError(("valid_until",), "period_order", "The end must be after the start")
        )
    if not fixed and template_in.valid_days is None:
        errors.append(
            FieldError(
                ("valid_days",),
                "coupon_validity",
                "Give a fixed window or a number of days from issue",
            )
        )
    if fixed and template_in.valid_days is not None:
        errors.append(
            FieldError(
                ("valid_days",),
                "coupon_validity_both",
                "Give a fixed window or a number of days, not both",
            )
        )
    for i, tier in enumerate(template_in.eligible_tiers):
        if tier not in tiers:
            errors.append(
                FieldError(
                    ("eligible_tiers", i),
                    "loyalty_tier_unknown",
                    "No such tier: {code}",
                    {"code": tier},
                )
            )
    return errors


def save_template(
    session: Session, *, template_in: CouponTemplateIn, actor: User
) -> CouponTemplate:
    """Create a template or change the one with the same code (its issued coupons keep
    their own validity); audited."""
    with write_transaction(session):
        tiers = {t.code for t in load_policy(session).tiers}
        errors = template_errors(template_in, tiers)
        if errors:
            raise ValidationFailed(errors)
        template = session.scalar(
            select(CouponTemplate).where(CouponTemplate.code == template_in.code)
        )
        values = template_in.model_dump(exclude={"eligible_tiers"})
        values["eligible_tiers"] = ",".join(template_in.eligible_tiers) or None
        values["kind"] = template_in.kind.value
        values["free_service"] = (
            template_in.free_service.value if template_in.free_service else None
        )
        now = clock.now()
        created = template is None
        if template is None:
            template = CouponTemplate(issued_count=0, created_at=now, **values)
            session.add(template)
        else:
            if (
                template_in.total_limit is not None
                and template_in.total_limit < template.issued_count
            ):
                raise ValidationFailed(
                    [
                        FieldError(
                            ("total_limit",),
                            "coupon_limit_below_issued",
                            "Already {issued} issued: the limit cannot be lower",
                            {"issued": template.issued_count},
                        )
                    ]
                )
            for key, value in values.items():
                setattr(template, key, value)
        template.updated_at = now
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="coupon.template_created" if created else "coupon.template_changed",
            target_type="coupon_template",
            target_id=template.id,
            after=template_in.model_dump(mode="json"),
        )
    return template


def list_templates(session: Session, *, active_only: bool = False) -> list[CouponTemplate]:
    """Every template, newest first."""
    stmt = select(CouponTemplate).order_by(CouponTemplate.id.desc())
    if active_only:
        stmt = stmt.where(CouponTemplate.active.is_(True))
    return list(session.scalars(stmt))


def get_template(session: Session, code: str, *, lock: bool = False) -> CouponTemplate:
    """One template by code, or ``NotFound``."""
    stmt = select(CouponTemplate).where(CouponTemplate.code == code)
    if lock and dialect_of(session) == "postgresql":
        stmt = stmt.with_for_update()
    template = session.scalar(stmt.execution_options(populate_existing=True))
    if template is None:
        raise NotFound("coupon_template_unknown", code=code)
    return template


def eligible_tiers(template: CouponTemplate) -> list[str]:
    """The tiers an exclusive template is limited to (empty: anyone)."""
    return [t for t in (template.eligible_tiers or "").split(",") if t]


# --------------------------------------------------------------------------- issue


def _window(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    if template.valid_days is not None:
        return now, now + timedelta(days=template.valid_days)
    if template.valid_from is None or template.valid_until is None:  # pragma: no cover
        raise Conflict("coupon_validity", field="template_code")  # refused on save
    return template.valid_from, template.valid_until


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def _fresh_codes(session: Session, count: int) -> list[str]:
    """``count`` new codes, none already in use (drawn again on the rare clash)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        batch = [c for c in (codes.new_code() for _ in range(count - len(out))) if c not in seen]
        taken: set[str] = set()
        for part in _chunks(batch):  # type: ignore[arg-type]
            taken.update(session.scalars(select(Coupon.code).where(Coupon.code.in_(part))))
        for code in batch:
            if code not in taken:
                out.append(code)
                seen.add(code)
    return out


def issue_coupons(
    session: Session,
    *,
    template_code: str,
    customer_ids: Sequence[int],
    source_key: str,
    actor: Actor | User,
    now: datetime | None = None,
) -> dict[int, str]:
    """Issue one coupon of the template to each customer (customer_id -> coupon code), in
    the caller's transaction, bulk; idempotent per (template, customer, source_key): a
    second call returns the same codes.

    Customers an exclusive template does not admit (their tier is not eligible) get none,
    nor do customers beyond the template's total limit: they are missing from the
    result. An inactive template or a fixed window that has ended issues nothing and is
    refused (``Conflict`` naming ``template_code``).
    """
    now = now or clock.now()
    template = get_template(session, template_code, lock=True)
    ids = sorted(set(customer_ids))
    existing: dict[int, str] = {}
    for part in _chunks(ids):
        existing.update(
            session.execute(
                select(Coupon.customer_id, Coupon.code).where(
                    Coupon.template_id == template.id,
                    Coupon.source_key == source_key,
                    Coupon.customer_id.in_(part),
                )
            ).all()
        )
    todo = [cid for cid in ids if cid not in existing]
    if not todo:
        return existing
    if not template.active:
        raise Conflict("coupon_template_inactive", field="template_code")
    valid_from, valid_until = _window(template, now)
    if valid_until <= now:
        raise Conflict("coupon_window_over", field="template_code")
    tiers = eligible_tiers(template)
    if tiers:
        admitted: set[int] = set()
        for part in _chunks(todo):
            admitted.update(
                session.scalars(
                    select(LoyaltyMember.customer_id).where(
                        LoyaltyMember.customer_id.in_(part), LoyaltyMember.tier.in_(tiers)
                    )
                )
            )
        todo = [cid for cid in todo if cid in admitted]
    if template.total_limit is not None:
        todo = todo[: max(0, template.total_limit - template.issued_count)]
    if not todo:
        return existing
    fresh = _fresh_codes(session, len(todo))
    actor_ = _actor(actor)
    session.execute(
        table_of(Coupon).insert(),
        [
            {
                "code": code,
                "template_id": template.id,
                "customer_id": cid,
                "source_key": source_key,
                "status": CouponStatus.issued.value,
                "issued_at": now,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "issued_by": actor_.id,
            }
            for cid, code in zip(todo, fresh, strict=True)
        ],
    )
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == template.id)
        .values(issued_count=CouponTemplate.issued_count + len(todo))
        .execution_options(synchronize_session=False)
    )
    one = len(todo) == 1
    record(
        session,
        actor=actor_,
        action="coupon.issued",
        target_type="customer" if one else "coupon_template",
        target_id=todo[0] if one else template.id,
        after={
            "template": template.code,
            "source_key": source_key,
            "count": len(todo),
            **({"code": codes.display(fresh[0])} if one else {}),
        },
    )
    return {**existing, **dict(zip(todo, fresh, strict=True))}


def issue_coupon(
    session: Session,
    *,
    template_code: str,
    customer_id: int,
    source_key: str,
    actor: Actor | User,
    now: datetime | None = None,
) -> Coupon:
    """One coupon of the template to one customer, in the caller's transaction (see
    :func:`issue_coupons`); refused naming ``template_code`` when the template does not
    admit them (tier, limit)."""
    issued = issue_coupons(
        session,
        template_code=template_code,
        customer_ids=[customer_id],
        source_key=source_key,
        actor=actor,
        now=now,
    )
    if customer_id not in issued:
        raise Conflict("coupon_not_available", field="template_code")
    return session.scalars(select(Coupon).where(Coupon.code == issued[customer_id])).one()


# --------------------------------------------------------------------------- use


def find_coupon(session: Session, typed: str) -> Coupon:
    """A coupon by its code as typed (dashes, spaces, lower case all fine); a code that
    cannot be one is refused naming ``code``; an unknown one is ``NotFound``."""
    code = codes.normalise(typed)
    if code is None:
        raise ValidationFailed(
            [FieldError(("code",), "coupon_code_invalid", "Not a coupon code (check for typos)")]
        )
    coupon = session.scalar(
        select(Coupon).where(Coupon.code == code).execution_options(populate_existing=True)
    )
    if coupon is None:
        raise NotFound("coupon_unknown", code=code)
    return coupon


def discount_of(template: CouponTemplate, amount_fen: int | None) -> int | None:
    """What the coupon takes off an order of ``amount_fen`` (None: not known)."""
    if amount_fen is None:
        return None
    if template.kind == CouponKind.amount_off.value:
        return min(amount_fen, template.amount_off_fen or 0)
    if template.kind == CouponKind.percent_off.value:
        return amount_fen * (template.percent_off or 0) // 100
    return 0


def _why_not(coupon: Coupon, now: datetime) -> Conflict:
    """Why a coupon could not be used (after the conditional UPDATE found nothing)."""
    if coupon.status == CouponStatus.redeemed.value:
        return Conflict("coupon_redeemed", field="code", reference=coupon.redeemed_ref or "")
    if coupon.status == CouponStatus.void.value:
        return Conflict("coupon_void", field="code")
    if coupon.status == CouponStatus.expired.value or coupon.valid_until <= now:
        return Conflict("coupon_expired", field="code")
    return Conflict("coupon_not_yet_valid", field="code")


def redeem_coupon(
    session: Session,
    *,
    code: str,
    reference: str,
    actor: User | Actor,
    amount_fen: int | None = None,
    customer_id: int | None = None,
    now: datetime | None = None,
) -> Coupon:
    """Use a coupon once on an order / waybill (``reference``). Refused naming the field:
    an unknown or mistyped code, another customer's coupon (when ``customer_id`` is
    given), an order below the minimum spend, or a coupon already used, void, expired or
    not yet valid."""
    now = now or clock.now()
    with write_transaction(session):
        coupon = find_coupon(session, code)
        if customer_id is not None and coupon.customer_id != customer_id:
            raise Conflict("coupon_other_customer", field="code")
        template = session.get(CouponTemplate, coupon.template_id)
        if template is None:  # pragma: no cover - a foreign key keeps it
            raise NotFound("coupon_template_unknown", code=str(coupon.template_id))
        if amount_fen is not None and amount_fen < template.min_spend_fen:
            raise ValidationFailed(
                [
                    FieldError(
                        ("amount_fen",),
                        "coupon_min_spend",
                        "This coupon needs an order of at least {min} yuan",
                        {"min": f"{template.min_spend_fen / 100:.2f}"},
                    )
                ]
            )
        actor_ = actor_of(actor) if isinstance(actor, User) else actor
        discount = discount_of(template, amount_fen)
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Coupon)
                .where(
                    Coupon.id == coupon.id,
                    Coupon.status == CouponStatus.issued.value,
                    Coupon.valid_from <= now,
                    Coupon.valid_until > now,
                )
                .values(
                    status=CouponStatus.redeemed.value,
                    redeemed_at=now,
                    redeemed_ref=reference,
                    redeemed_by=actor_.id,
                    discount_fen=discount,
                )
                .execution_options(synchronize_session=False)
            ),
        )
        session.refresh(coupon)
        if result.rowcount != 1:
            raise _why_not(coupon, now)
        record(
            session,
            actor=actor_,
            action="coupon.redeemed",
            target_type="customer",
            target_id=coupon.customer_id,
            after={
                "code": codes.display(coupon.code),
                "template": template.code,
                "reference": reference,
                "discount_fen": discount,
            },
        )
        emit = webhook_emitter()
        if emit is not None:
            emit(
                session,
                "loyalty.coupon_redeemed",
                {
                    "customer_id": coupon.customer_id,
                    "template": template.code,
                    "reference": reference,
                    "discount_fen": discount,
                    "redeemed_at": now.isoformat(),
                },
            )
    return coupon


def void_coupon(
    session: Session,
    *,
    code: str,
    reason: str,
    actor: User,
    customer_id: int | None = None,
    now: datetime | None = None,
) -> Coupon:
    """Void an unused coupon, saying why (audited); a used, expired or void one, or
    another customer's (when ``customer_id`` is given), is refused naming ``code``."""
    now = now or clock.now()
    with write_transaction(session):
        coupon = find_coupon(session, code)
        if customer_id is not None and coupon.customer_id != customer_id:
            raise Conflict("coupon_other_customer", field="code")
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Coupon)
                .where(Coupon.id == coupon.id, Coupon.status == CouponStatus.issued.value)
                .values(
                    status=CouponStatus.void.value,
                    voided_at=now,
                    void_reason=reason,
                    voided_by=actor.id,
                )
                .execution_options(synchronize_session=False)
            ),
        )
        session.refresh(coupon)
        if result.rowcount != 1:
            raise _why_not(coupon, now)
        record(
            session,
            actor=actor_of(actor),
            action="coupon.voided",
            target_type="customer",
            target_id=coupon.customer_id,
            after={
                "code": codes.display(coupon.code),
                "reason": seal_about_customer(session, coupon.customer_id, reason),
            },
        )
    return coupon


def expire_coupons(session: Session, *, now: datetime | None = None) -> int:
    """Mark every unused coupon past its window expired (the daily job; idempotent)."""
    now = now or clock.now()
    with write_transaction(session):
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Coupon)
                .where(Coupon.status == CouponStatus.issued.value, Coupon.valid_until <= now)
                .values(status=CouponStatus.expired.value)
                .execution_options(synchronize_session=False)
            ),
        )
    return int(result.rowcount)


def coupons_of(session: Session, customer_id: int, *, limit: int = 50) -> list[Coupon]:
    """A customer's coupons, newest first."""
    return list(
        session.scalars(
            select(Coupon)
            .where(Coupon.customer_id == customer_id)
            .order_by(Coupon.id.desc())
            .limit(limit)
        )
    )


def coupon_reads(session: Session, coupons: Sequence[Coupon], lang: str = "zh_CN") -> list[Any]:
    """Coupons as the API shows them, with their templates' names."""
    from guanxi.loyalty.schemas import CouponRead

    ids = {c.template_id for c in coupons}
    templates = {
        t.id: t for t in session.scalars(select(CouponTemplate).where(CouponTemplate.id.in_(ids)))
    }
    now = clock.now()
    out = []
    for c in coupons:
        t = templates[c.template_id]
        out.append(
            CouponRead(
                code=c.code,
                display_code=codes.display(c.code),
                template_code=t.code,
                template_name=t.name_zh if lang.startswith("zh") else t.name_en,
                kind=t.kind,
                customer_id=c.customer_id,
                status=c.status,
                issued_at=c.issued_at,
                valid_from=c.valid_from,
                valid_until=c.valid_until,
                redeemed_at=c.redeemed_at,
                redeemed_ref=c.redeemed_ref,
                discount_fen=c.discount_fen,
                void_reason=c.void_reason,
                usable=c.status == CouponStatus.issued.value
                and c.valid_from <= now < c.valid_until,
            )
        )
    return out
