"""Issuing coupons to an audience an administrator picks (a list of customers, a tier, an
analytics segment) or to one customer from the 360 view; each one transaction with its
audit entry, idempotent per occasion (``source_key``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.customers.models import Customer
from guanxi.customers.service import get_customer
from guanxi.loyalty.coupons import issue_coupon, issue_coupons
from guanxi.loyalty.models import Coupon, LoyaltyMember
from guanxi.loyalty.policy import load_policy
from guanxi.loyalty.schemas import IssueIn, IssueResult
from guanxi.security.models import User

_CHUNK = 900


def _audience(session: Session, issue_in: IssueIn) -> list[int]:
    """The customer ids the request names, checked: exactly one kind of audience, known
    customers, a tier of the policy."""
    given = [bool(issue_in.customer_ids), issue_in.tier is not None, issue_in.segment is not None]
    if sum(given) != 1:
        raise ValidationFailed(
            [
                FieldError(
                    ("customer_ids",),
                    "coupon_audience",
                    "Choose one audience: customers, a tier or a segment",
                )
            ]
        )
    if issue_in.customer_ids:
        ids = sorted(set(issue_in.customer_ids))
        found: set[int] = set()
        for i in range(0, len(ids), _CHUNK):
            found.update(
                session.scalars(select(Customer.id).where(Customer.id.in_(ids[i : i + _CHUNK])))
            )
        missing = [cid for cid in ids if cid not in found]
        if missing:
            raise ValidationFailed(
                [
                    FieldError(
                        ("customer_ids", issue_in.customer_ids.index(missing[0])),
                        "customer_unknown",
                        "No such customer",
                    )
                ]
            )
        return ids
    if issue_in.tier is not None:
        if load_policy(session).tier(issue_in.tier) is None:
            raise ValidationFailed(
                [
                    FieldError(
                        ("tier",),
                        "loyalty_tier_unknown",
                        "No such tier: {code}",
                        {"code": issue_in.tier},
                    )
                ]
            )
        return list(
            session.scalars(
                select(LoyaltyMember.customer_id)
                .where(LoyaltyMember.tier == issue_in.tier)
                .order_by(LoyaltyMember.customer_id)
            )
        )
    from guanxi.analytics.policy import SEGMENTS
    from guanxi.analytics.service import segment_members

    if issue_in.segment not in SEGMENTS:
        raise ValidationFailed(
            [
                FieldError(
                    ("segment",),
                    "value_unknown",
                    "Unknown value; expected one of: {choices}",
                    {"choices": ", ".join(SEGMENTS)},
                )
            ]
        )
    members: list[int] = []
    after = None
    while True:
        page = segment_members(session, segment=issue_in.segment, after=after, limit=5000)
        if not page:
            return members
        members.extend(m.customer_id for m in page)
        after = page[-1].customer_id


def issue_to_audience(session: Session, *, issue_in: IssueIn, actor: User) -> IssueResult:
    """Issue the template's coupons to the audience (bulk, one transaction; audited)."""
    with write_transaction(session):
        ids = _audience(session, issue_in)
        coupons = issue_coupons(
            session,
            template_code=issue_in.template_code,
            customer_ids=ids,
            source_key=issue_in.source_key,
            actor=actor,
        )
    return IssueResult(template_code=issue_in.template_code, issued=len(coupons), coupons=coupons)


def issue_one(
    session: Session, *, customer_id: int, template_code: str, source_key: str, actor: User
) -> Coupon:
    """One coupon to one customer (a goodwill gesture from the 360 view); refused naming
    ``template_code`` when the template does not admit them (tier, limit)."""
    with write_transaction(session):
        get_customer(session, customer_id=customer_id, viewer=actor)
        return issue_coupon(
            session,
            template_code=template_code,
            customer_id=customer_id,
            source_key=source_key,
            actor=actor,
        )
