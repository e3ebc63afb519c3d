"""Upgrades, downgrades and coupon redemptions reach subscribed webhook endpoints through
the outbox (queued in the same transaction, once per change)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.loyalty.coupons import issue_coupons, redeem_coupon, save_template
from guanxi.loyalty.jobs import run_accrual
from guanxi.loyalty.schemas import CouponTemplateIn
from guanxi.loyalty.tiers import evaluate
from guanxi.notify.models import OutboxMessage
from guanxi.notify.webhooks import create_endpoint

from .conftest import add_shipment

T0 = datetime(2026, 2, 2, 2, 0, tzinfo=UTC)


def _events(db: Session) -> list[tuple[str, dict[str, Any]]]:
    rows = db.scalars(
        select(OutboxMessage).where(OutboxMessage.channel == "webhook").order_by(OutboxMessage.id)
    )
    return [(m.subject, json.loads(m.body)["data"]) for m in rows]


def test_tier_changes_and_redemptions_are_announced(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    manager = make_user("manager")
    create_endpoint(
        db,
        name="ERP",
        url="https://erp.example.com/hooks",
        events=["loyalty.tier_changed", "loyalty.coupon_redeemed"],
        actor=manager,
    )
    cid = make_customer().id
    add_shipment(db, cid, fee_fen=30_000, at=T0)
    db.commit()
    run_accrual(db, now=T0)
    run_accrual(db, now=T0)  # nothing new: nothing announced twice
    evaluate(db, now=T0 + timedelta(days=365))  # grace starts: not a tier change
    evaluate(db, now=T0 + timedelta(days=455))  # downgrade
    save_template(
        db,
        template_in=CouponTemplateIn(
            code="c5",
            name_zh="五元券",
            name_en="5 off",
            kind="amount_off",  # type: ignore[arg-type]
            amount_off_fen=500,
            valid_days=10,
        ),  # fmt: skip
        actor=manager,
    )
    with write_transaction(db):
        code = issue_coupons(
            db, template_code="c5", customer_ids=[cid], source_key="k", actor=Actor.system("t"),
            now=T0 + timedelta(days=460),
        )[cid]  # fmt: skip
    with clock.frozen(T0 + timedelta(days=461)):
        redeem_coupon(db, code=code, reference="YT1", amount_fen=2000, actor=manager)
    events = _events(db)
    assert [(e, d.get("from_tier"), d.get("to_tier")) for e, d in events] == [
        ("loyalty.tier_changed", "member", "silver"),
        ("loyalty.tier_changed", "silver", "member"),
        ("loyalty.coupon_redeemed", None, None),
    ]
    assert events[0][1]["direction"] == "up"
    assert events[1][1]["direction"] == "down"
    assert (events[2][1]["customer_id"], events[2][1]["discount_fen"]) == (cid, 500)
