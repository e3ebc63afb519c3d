"""Coupons: templates validated field by field, bulk issue idempotent per occasion,
exclusive offers and limits, single redemption with the minimum spend and the discount,
voiding, expiry, buying with points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, NotFound, ValidationFailed
from guanxi.loyalty import codes
from guanxi.loyalty.coupons import (
    expire_coupons,
    issue_coupons,
    redeem_coupon,
    save_template,
    void_coupon,
)
from guanxi.loyalty.models import Coupon, CouponTemplate, LoyaltyMember, PointsEntry
from guanxi.loyalty.schemas import BonusIn, CouponTemplateIn
from guanxi.loyalty.service import buy_coupon, enrol, grant_bonus

NOW = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


def _template(**kw: Any) -> CouponTemplateIn:
    data: dict[str, Any] = {
        "code": "save10",
        "name_zh": "满50减10",
        "name_en": "10 off 50",
        "kind": "amount_off",
        "amount_off_fen": 1000,
        "min_spend_fen": 5000,
        "valid_days": 30,
    }
    data.update(kw)
    return CouponTemplateIn.model_validate(data)


@pytest.fixture
def manager(make_user: Any) -> Any:
    return make_user("manager")


def _issue(db: Session, code: str, ids: list[int], key: str, **kw: Any) -> dict[int, str]:
    with write_transaction(db):
        return issue_coupons(
            db, template_code=code, customer_ids=ids, source_key=key, actor=Actor.system("t"), **kw
        )


def test_template_rules_name_the_field(db: Session, manager: Any) -> None:
    cases = [
        (_template(amount_off_fen=None), ("amount_off_fen", "coupon_value_missing")),
        (_template(kind="percent_off"), ("percent_off", "coupon_value_missing")),
        (_template(valid_days=None), ("valid_days", "coupon_validity")),
        (
            _template(valid_from=NOW, valid_until=NOW + timedelta(days=1)),
            ("valid_days", "coupon_validity_both"),
        ),
        (_template(valid_days=None, valid_from=NOW), ("valid_until", "coupon_window_open")),
        (
            _template(valid_days=None, valid_from=NOW, valid_until=NOW),
            ("valid_until", "period_order"),
        ),
        (_template(eligible_tiers=["gold", "tin"]), ("eligible_tiers.1", "loyalty_tier_unknown")),
    ]
    for body, expected in cases:
        with pytest.raises(ValidationFailed) as info:
            save_template(db, template_in=body, actor=manager)
        assert [(".".join(map(str, e.loc)), e.code) for e in info.value.errors] == [expected]
    assert db.scalar(select(func.count()).select_from(CouponTemplate)) == 0


def test_bulk_issue_is_idempotent_per_occasion(
    db: Session, manager: Any, make_customer: Any
) -> None:
    save_template(db, template_in=_template(), actor=manager)
    ids = [make_customer(f"客户{i}").id for i in range(5)]
    first = _issue(db, "save10", ids, "2026-劳动节", now=NOW)
    assert sorted(first) == ids
    assert len(set(first.values())) == 5
    assert all(codes.normalise(c) == c for c in first.values())
    # The same occasion again (a retried job, a double click): the same codes, nothing new.
    again = _issue(db, "save10", [*ids, ids[0]], "2026-劳动节", now=NOW)
    assert again == first
    template = db.scalar(select(CouponTemplate).where(CouponTemplate.code == "save10"))
    assert template is not None
    db.refresh(template)
    assert template.issued_count == 5
    # Another occasion: new coupons.
    other = _issue(db, "save10", ids[:2], "2026-端午", now=NOW)
    assert set(other.values()).isdisjoint(first.values())
    db.refresh(template)
    assert template.issued_count == 7
    coupon = db.scalar(select(Coupon).where(Coupon.code == first[ids[0]]))
    assert coupon is not None
    assert (coupon.valid_from, coupon.valid_until, coupon.status) == (
        NOW,
        NOW + timedelta(days=30),
        "issued",
    )


def test_exclusive_offer_and_total_limit(db: Session, manager: Any, make_customer: Any) -> None:
    save_template(
        db, template_in=_template(code="gold-only", eligible_tiers=["gold"], total_limit=2),
        actor=manager,
    )  # fmt: skip
    gold = [make_customer(f"金{i}").id for i in range(3)]
    plain = make_customer("普通").id
    for cid in [*gold, plain]:
        enrol(db, customer_id=cid, actor=manager)
    db.execute(
        LoyaltyMember.__table__.update()  # type: ignore[attr-defined]
        .where(LoyaltyMember.customer_id.in_(gold))
        .values(tier="gold")
    )
    db.commit()
    issued = _issue(db, "gold-only", [plain, *gold], "vip", now=NOW)
    # Not the entry-tier member; the gold members up to the limit of two.
    assert sorted(issued) == gold[:2]
    assert _issue(db, "gold-only", gold, "vip2", now=NOW) == {}


def test_inactive_or_ended_templates_issue_nothing(
    db: Session, manager: Any, make_customer: Any
) -> None:
    cid = make_customer().id
    save_template(db, template_in=_template(active=False), actor=manager)
    with pytest.raises(Conflict) as info:
        _issue(db, "save10", [cid], "x", now=NOW)
    assert (info.value.message, info.value.params["field"]) == (
        "coupon_template_inactive",
        "template_code",
    )
    save_template(
        db,
        template_in=_template(
            code="spring", valid_days=None, valid_from=NOW - timedelta(days=10), valid_until=NOW
        ),
        actor=manager,
    )
    with pytest.raises(Conflict) as info:
        _issue(db, "spring", [cid], "x", now=NOW)
    assert info.value.message == "coupon_window_over"
    assert db.scalar(select(func.count()).select_from(Coupon)) == 0


def test_redeem_once_with_minimum_spend_and_discount(
    db: Session, manager: Any, make_customer: Any
) -> None:
    save_template(db, template_in=_template(), actor=manager)
    save_template(
        db, template_in=_template(code="pct", kind="percent_off", amount_off_fen=None,
                                  percent_off=15, min_spend_fen=0), actor=manager,
    )  # fmt: skip
    a, b = make_customer("甲").id, make_customer("乙").id
    code = _issue(db, "save10", [a], "k", now=NOW)[a]
    pct = _issue(db, "pct", [a], "k", now=NOW)[a]
    with clock.frozen(NOW + timedelta(days=1)):
        with pytest.raises(ValidationFailed) as info:
            redeem_coupon(db, code=code, reference="YT1", amount_fen=4999, actor=manager)
        assert [(e.loc, e.code, e.params) for e in info.value.errors] == [
            (("amount_fen",), "coupon_min_spend", {"min": "50.00"})
        ]
        with pytest.raises(Conflict) as other:
            redeem_coupon(db, code=code, reference="YT1", customer_id=b, actor=manager)
        assert other.value.message == "coupon_other_customer"
        typed = codes.display(code).lower()
        used = redeem_coupon(db, code=typed, reference="YT1", amount_fen=5000, actor=manager)
        assert (used.status, used.redeemed_ref, used.discount_fen) == ("redeemed", "YT1", 1000)
        with pytest.raises(Conflict) as twice:
            redeem_coupon(db, code=code, reference="YT2", amount_fen=9000, actor=manager)
        assert (twice.value.message, twice.value.params["reference"]) == ("coupon_redeemed", "YT1")
        assert (
            redeem_coupon(
                db, code=pct, reference="YT3", amount_fen=3333, actor=manager
            ).discount_fen
            == 499
        )
        # A typo is told apart from an unknown code.
        typo = code[:-1] + ("2" if code[-1] != "2" else "3")
        with pytest.raises(ValidationFailed) as bad:
            redeem_coupon(db, code=typo, reference="YT4", actor=manager)
        assert bad.value.errors[0].code == "coupon_code_invalid"
        fresh = codes.new_code()
        with pytest.raises(NotFound):
            redeem_coupon(db, code=fresh, reference="YT4", actor=manager)


def test_void_and_expiry(db: Session, manager: Any, make_customer: Any) -> None:
    save_template(db, template_in=_template(valid_days=7), actor=manager)
    ids = [make_customer(f"客户{i}").id for i in range(3)]
    issued = _issue(db, "save10", ids, "k", now=NOW)
    with clock.frozen(NOW + timedelta(days=1)):
        # Voided from another customer's view (the 360 panel): refused, nothing changes.
        with pytest.raises(Conflict) as other:
            void_coupon(db, code=issued[ids[0]], reason="x", actor=manager, customer_id=ids[1])
        assert (other.value.message, other.value.params["field"]) == (
            "coupon_other_customer",
            "code",
        )
        assert db.scalar(select(Coupon.status).where(Coupon.customer_id == ids[0])) == "issued"
        void_coupon(
            db, code=issued[ids[0]], reason="客户投诉补偿重复", actor=manager, customer_id=ids[0]
        )
        with pytest.raises(Conflict) as info:
            redeem_coupon(db, code=issued[ids[0]], reference="YT1", actor=manager)
        assert info.value.message == "coupon_void"
        redeem_coupon(db, code=issued[ids[1]], reference="YT1", amount_fen=6000, actor=manager)
    # Seven days after issue: the unused one expires, the used and void ones stay.
    assert expire_coupons(db, now=NOW + timedelta(days=7) - timedelta(seconds=1)) == 0
    assert expire_coupons(db, now=NOW + timedelta(days=7)) == 1
    assert expire_coupons(db, now=NOW + timedelta(days=8)) == 0
    statuses = dict(db.execute(select(Coupon.customer_id, Coupon.status)).all())
    assert statuses == {ids[0]: "void", ids[1]: "redeemed", ids[2]: "expired"}
    with clock.frozen(NOW + timedelta(days=8)), pytest.raises(Conflict) as late:
        redeem_coupon(db, code=issued[ids[2]], reference="YT9", actor=manager)
    assert late.value.message == "coupon_expired"


def test_buying_a_coupon_with_points_is_one_transaction(
    db: Session, manager: Any, make_customer: Any
) -> None:
    save_template(db, template_in=_template(points_price=300), actor=manager)
    save_template(db, template_in=_template(code="free"), actor=manager)
    cid = make_customer().id
    enrol(db, customer_id=cid, actor=manager)
    grant_bonus(
        db, customer_id=cid, bonus_in=BonusIn(points=500, reason="活动", key="a"), actor=manager
    )
    coupon = buy_coupon(db, customer_id=cid, template_code="save10", key="buy1", actor=manager)
    assert coupon.status == "issued"
    member = db.get(LoyaltyMember, cid, populate_existing=True)
    assert member is not None
    assert member.balance == 200
    # Not enough points for a second: neither points nor a coupon move.
    with pytest.raises(Conflict) as info:
        buy_coupon(db, customer_id=cid, template_code="save10", key="buy2", actor=manager)
    assert info.value.message == "points_insufficient"
    assert db.scalar(select(func.count()).select_from(Coupon)) == 1
    assert db.scalar(select(func.count()).where(PointsEntry.kind == "redeem")) == 1
    with pytest.raises(Conflict) as priceless:
        buy_coupon(db, customer_id=cid, template_code="free", key="buy3", actor=manager)
    assert priceless.value.message == "coupon_not_for_points"
