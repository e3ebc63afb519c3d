"""What other domains call: anniversaries (care), issue_coupons (care, surveys),
tier_of_customers (audiences), has_priority_service and the service desk's priority
hook (a member's ticket is at least high, marked 会员优先)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core.db import write_transaction
from guanxi.loyalty.coupons import save_template
from guanxi.loyalty.ledger import ensure_member
from guanxi.loyalty.models import LoyaltyMember
from guanxi.loyalty.schemas import CouponTemplateIn
from guanxi.loyalty.service import (
    anniversaries,
    has_priority_service,
    issue_coupons,
    tier_of_customers,
)
from guanxi.tickets.enums import Severity, TicketChannel, TicketType
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.service import create_ticket


def _member(db: Session, cid: int, joined: datetime, tier: str = "member") -> None:
    with write_transaction(db):
        ensure_member(db, customer_id=cid, tier=tier, at=joined, via="agent")


def test_anniversaries_in_local_time(db: Session, make_customer: Any) -> None:
    a, b, c, d, e = (make_customer(n).id for n in "甲乙丙丁戊")
    # 2024-03-04 17:00 UTC is 5 March 01:00 in Shanghai.
    _member(db, a, datetime(2024, 3, 4, 17, 0, tzinfo=UTC))
    _member(db, b, datetime(2025, 3, 5, 8, 0, tzinfo=UTC))
    _member(db, c, datetime(2026, 3, 5, 8, 0, tzinfo=UTC))  # joined this very day: not yet
    _member(db, d, datetime(2024, 2, 29, 4, 0, tzinfo=UTC))  # a leap-day member
    _member(db, e, datetime(2025, 3, 4, 8, 0, tzinfo=UTC))
    assert anniversaries(db, date(2026, 3, 5)) == [(a, 2), (b, 1)]
    # 2026 has no 29 February: the leap-day member celebrates on the 28th.
    assert anniversaries(db, date(2026, 2, 28)) == [(d, 2)]
    assert anniversaries(db, date(2028, 2, 28)) == []
    assert anniversaries(db, date(2028, 2, 29)) == [(d, 4)]


def test_tiers_and_priority(db: Session, make_customer: Any) -> None:
    plain, gold = make_customer("普通").id, make_customer("金卡").id
    outsider = make_customer("非会员").id
    _member(db, plain, datetime(2025, 1, 1, tzinfo=UTC))
    _member(db, gold, datetime(2025, 1, 1, tzinfo=UTC), tier="gold")
    rows = dict(
        db.execute(
            tier_of_customers().where(LoyaltyMember.customer_id.in_([plain, gold, outsider]))
        ).all()
    )
    assert rows == {plain: "member", gold: "gold"}
    assert (has_priority_service(db, gold), has_priority_service(db, plain)) == (True, False)
    assert has_priority_service(db, outsider) is False


def test_member_ticket_is_at_least_high_and_marked(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    agent = make_user("agent")
    plain, gold = make_customer("普通").id, make_customer("金卡").id
    _member(db, plain, datetime(2025, 1, 1, tzinfo=UTC))
    _member(db, gold, datetime(2025, 1, 1, tzinfo=UTC), tier="gold")

    def ticket(cid: int, severity: Severity = Severity.minor) -> Any:
        return create_ticket(
            db,
            ticket_in=TicketCreate(
                type=TicketType.inquiry,
                channel=TicketChannel.hotline,
                customer_id=cid,
                subject="查询运费",
                severity=severity,
                tags=["来电"],
            ),  # fmt: skip
            actor=agent,
        )

    # A minor inquiry is low priority by the matrix; the gold member's is high and marked.
    assert (ticket(plain).priority, ticket(plain).tags) == ("low", "来电")
    lifted = ticket(gold)
    assert (lifted.priority, lifted.tags) == ("high", "来电,会员优先")
    # Never lowered: a critical case stays urgent.
    assert ticket(gold, Severity.critical).priority == "urgent"
    # After a downgrade the mark is gone.
    db.execute(update(LoyaltyMember).where(LoyaltyMember.customer_id == gold).values(tier="silver"))
    db.commit()
    assert ticket(gold).priority == "low"


def test_issue_coupons_contract(db: Session, make_customer: Any, make_user: Any) -> None:
    manager = make_user("manager")
    save_template(
        db,
        template_in=CouponTemplateIn(
            code="birthday",
            name_zh="生日券",
            name_en="Birthday",
            kind="amount_off",  # type: ignore[arg-type]
            amount_off_fen=800,
            valid_days=30,
        ),  # fmt: skip
        actor=manager,
    )
    ids = [make_customer(f"寿星{i}").id for i in range(3)]
    care = Actor.system("care")
    with write_transaction(db):
        first = issue_coupons(
            db, template_code="birthday", customer_ids=ids, source_key="care:1:2026", actor=care
        )
    with write_transaction(db):
        second = issue_coupons(
            db, template_code="birthday", customer_ids=ids, source_key="care:1:2026", actor=care
        )
    assert first == second
    assert sorted(first) == ids
