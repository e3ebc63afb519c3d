"""Audiences, consent, frequency caps and win-back on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.models import AnalyticsRun, AnalyticsStep, CustomerChurn, CustomerClass
from guanxi.care import service
from guanxi.care.policy import CarePolicy, save_policy
from guanxi.care.run import run_day
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.customers.consent import Purpose, record_consent
from guanxi.loyalty.models import LoyaltyMember
from guanxi.loyalty.service import enrol
from guanxi.notify.models import OutboxMessage
from tests.integration.care.conftest import BIRTHDAY, FESTIVAL, local, outbox

DAY = date(2026, 9, 25)


def _analytics(db: Session, step: str, rows: list[Any]) -> None:
    """A succeeded analytics run of ``step`` with its result rows."""
    with write_transaction(db):
        run = AnalyticsRun(as_of=datetime(2026, 9, 1, tzinfo=UTC), status="succeeded")
        db.add(run)
        db.flush()
        db.add(AnalyticsStep(run_id=run.id, step=step, status="succeeded"))
        for row in rows:
            row.run_id = run.id
            db.add(row)


def _class(customer_id: int, segment: str, value_tier: str) -> CustomerClass:
    return CustomerClass(
        customer_id=customer_id,
        segment=segment,
        frequency_class="medium",
        value_tier=value_tier,
        relationship="loyal",
    )


def test_audience_filters_each_narrow_the_festival_greeting(
    db: Session, make_customer: Any, make_user: Any, grant: Any, make_rule: Any
) -> None:
    admin = make_user("admin")
    a = make_customer("甲", phones=["13912340001"], region="浙江省", tags=["VIP"])
    b = make_customer("乙", phones=["13912340002"], region="浙江省")
    c = make_customer("丙公司", kind="enterprise", phones=["13912340003"], region="浙江省")
    d = make_customer("丁", phones=["13912340004"], region="江苏省", tags=["VIP"])
    grant(a, b, c, d)
    _analytics(
        db,
        "rfm",
        [
            _class(a.id, "champions", "high"),
            _class(b.id, "lost", "low"),
            _class(d.id, "loyal", "high"),
        ],
    )
    for customer in (a, d):
        enrol(db, customer_id=customer.id, actor=admin)
    with write_transaction(db):
        member = db.get(LoyaltyMember, d.id)
        assert member is not None
        member.tier = "gold"

    def reached(**audience: Any) -> list[int]:
        rule = make_rule(FESTIVAL, audience=audience)
        with clock.frozen(local(2026, 9, 25, 8)):
            [o] = run_day(db, day=DAY, dry_run=True, rule_ids=[rule.id]).outcomes
        from guanxi.care.preview import preview

        seen = preview(db, rule_id=rule.id, day=DAY)
        assert seen.plan.figures() == o.figures
        # Off again: the next rule's day is its own (no shared cap).
        service.set_enabled(db, rule_id=rule.id, enabled=False, actor=admin)
        return sorted(r.customer_id for r in seen.plan.recipients)

    everyone = reached()
    assert set(everyone) >= {a.id, b.id, c.id, d.id}
    assert reached(kinds=["enterprise"]) == [c.id]
    assert reached(regions=["浙江省"], kinds=["individual"]) == [a.id, b.id]
    assert reached(tags=["VIP"]) == [a.id, d.id]
    assert reached(tags=["VIP"], regions=["浙江省"]) == [a.id]
    assert reached(segments=["champions", "loyal"]) == [a.id, d.id]
    assert reached(value_tiers=["low"]) == [b.id]
    assert reached(tiers=["gold"]) == [d.id]
    assert reached(tiers=["member"]) == [a.id]


def test_frequency_cap_across_rules_with_a_frozen_clock(
    db: Session, make_customer: Any, grant: Any, make_rule: Any, admin: Any
) -> None:
    # One customer with a birthday on 20 September and every festival after it.
    c = make_customer("郑十", phones=["13912340010"], birthday=date(1990, 9, 20))
    grant(c)
    save_policy(db, policy=CarePolicy(cap_count=2, cap_days=30), actor=admin)
    birthday = make_rule(BIRTHDAY, priority=80)
    mid_autumn = make_rule(FESTIVAL, priority=60)
    national = make_rule(FESTIVAL, festivals=["national_day"], priority=50, name="国庆")
    double_ninth = make_rule(FESTIVAL, festivals=["double_ninth"], priority=50, name="重阳")
    for day in (date(2026, 9, 20), DAY, date(2026, 10, 1), date(2026, 10, 18)):
        at = local(day.year, day.month, day.day, 9)
        with clock.frozen(at):
            run_day(db, day=day, now=at)
    sent = [(r.source, r.key.split(":")[2]) for r in outbox(db)]
    # Birthday (9-20) and Mid-Autumn (9-25) fill the cap of two in 30 days: National Day
    # (10-1, 11 days after the birthday) is capped; by Double Ninth (10-18) the birthday
    # is 28 days back — still inside — so it is capped too.
    assert sorted(sent) == [
        (f"care:{birthday.id}:birthday", "2026-09-20"),
        (f"care:{mid_autumn.id}:festival", "2026-09-25"),
    ]
    from guanxi.care.models import CareRun

    capped = {r.rule_id: r.capped for r in db.scalars(select(CareRun).where(CareRun.capped > 0))}
    assert capped == {national.id: 1, double_ninth.id: 1}
    # The birthday message leaves the window 30 days on: 20 October is free again.
    from guanxi.care.planning import CapState
    from tests.integration.care.conftest import SH

    window = CapState(CarePolicy(cap_count=2, cap_days=30), date(2026, 10, 20), SH)
    window.load(db, [c.id])
    assert not window.full(c.id)


def test_rules_of_one_day_take_the_cap_by_priority(
    db: Session, make_customer: Any, grant: Any, make_rule: Any, admin: Any
) -> None:
    c = make_customer("冯十一", phones=["13912340011"], birthday=date(1990, 9, 25))
    grant(c)
    save_policy(db, policy=CarePolicy(cap_count=1, cap_days=7), actor=admin)
    low = make_rule(BIRTHDAY, priority=10, name="低优先生日")
    high = make_rule(FESTIVAL, priority=90)
    from guanxi.care.preview import preview

    # The preview of the lower rule already counts the higher one's message.
    assert preview(db, rule_id=low.id, day=DAY).plan.capped == 1
    assert preview(db, rule_id=high.id, day=DAY).reached == 1
    with clock.frozen(local(2026, 9, 25, 9)):
        result = run_day(db, day=DAY)
    assert [(o.rule_id, o.figures["queued"], o.figures["capped"]) for o in result.outcomes] == [
        (high.id, 1, 0),
        (low.id, 0, 1),
    ]


def test_withdrawn_consent_excludes_and_a_withdrawal_after_queueing_cancels_at_send(
    committed_engine: Any, tmp_path: Path
) -> None:
    from guanxi.audit.service import Actor
    from guanxi.care.schemas import CareRuleIn
    from guanxi.customers.consent import grant_many
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer
    from guanxi.notify.sender import send_due
    from guanxi.notify.sms.local import FileSms
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    factory = make_sessionmaker(committed_engine)
    actor = Actor.system("test")
    with factory() as s:
        admin = create_user(
            s,
            user_in=UserCreate(
                username="careadmin", display_name="a", role="admin", password="long enough 1"
            ),  # type: ignore[arg-type]
            actor=actor,
        )
        keep, withdrawn, later = (
            create_customer(
                s,
                customer_in=CustomerCreate(name=n, phones=[p], birthday=date(1990, 9, 25)),
                actor=actor,
            )
            for n, p in (("留", "13912340021"), ("撤", "13912340022"), ("后撤", "13912340023"))
        )
        with write_transaction(s):
            grant_many(
                s,
                [keep.id, withdrawn.id, later.id],
                [Purpose.marketing_sms],
                source="demo",
                at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        with write_transaction(s):
            record_consent(
                s,
                customer_id=withdrawn.id,
                purpose=Purpose.marketing_sms,
                granted=False,
                source="agent",
                actor=admin,
            )
        rule = service.create_rule(
            s, rule_in=CareRuleIn.model_validate({**BIRTHDAY, "channel": "sms"}), actor=admin
        )
        service.set_enabled(s, rule_id=rule.id, enabled=True, actor=admin)
        now = local(2026, 9, 25, 9)
        [o] = run_day(s, day=DAY, now=now).outcomes
        assert (o.figures["queued"], o.figures["no_consent"]) == (2, 1)
        # Withdrawn after the greeting was queued, before it was sent.
        with write_transaction(s):
            record_consent(
                s,
                customer_id=later.id,
                purpose=Purpose.marketing_sms,
                granted=False,
                source="sms_reply",
                actor=actor,
            )
    gateway = FileSms(tmp_path / "sms.jsonl", default_sign="关系速递", clear_numbers=True)
    send_due(factory, sms=gateway, now=local(2026, 9, 25, 10))
    with factory() as s:
        status = dict(
            s.execute(
                select(OutboxMessage.customer_id, OutboxMessage.status).where(
                    OutboxMessage.key.startswith("care:")
                )
            ).all()
        )
    assert status == {keep.id: "sent", later.id: "cancelled"}
    lines = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert "+8613912340021" in lines[0]


def _churn(customer_id: int, risk: float) -> CustomerChurn:
    band = "high" if risk >= 0.6 else "medium" if risk >= 0.35 else "low"
    return CustomerChurn(customer_id=customer_id, risk=risk, band=band)


def test_winback_reaches_high_risk_customers_at_most_once_per_window(
    db: Session, make_customer: Any, grant: Any, make_rule: Any, admin: Any
) -> None:
    high = make_customer("高危", phones=["13912340031"])
    medium = make_customer("中危", phones=["13912340032"])
    grant(high, medium)
    save_policy(db, policy=CarePolicy(cap_count=10, cap_days=30), actor=admin)
    make_rule(
        {
            "name": "流失挽回",
            "kind": "winback",
            "channel": "sms",
            "sms_template": "care_winback",
            "body_zh": "{{ name }}，好久不见！",
            "winback_days": 30,
        }
    )
    # Before the first churn run nobody is at risk.
    [none] = run_day(db, day=DAY, dry_run=True).outcomes
    assert none.figures["eligible"] == 0
    _analytics(db, "churn", [_churn(high.id, 0.82), _churn(medium.id, 0.41)])
    queued = []
    for offset in (0, 10, 29, 30):
        day = DAY + timedelta(days=offset)
        at = local(day.year, day.month, day.day, 10)
        with clock.frozen(at):
            [o] = run_day(db, day=day, now=at).outcomes
        queued.append((offset, o.figures["queued"], o.figures["capped"]))
    # Sent on day 0; days 10 and 29 fall within 30 days of it; day 30 is a new window.
    assert queued == [(0, 1, 0), (10, 0, 1), (29, 0, 1), (30, 1, 0)]
    assert {r.customer_id for r in outbox(db)} == {high.id}


@pytest.mark.parametrize("lead", [0, 2])
def test_anniversary_with_a_coupon(
    db: Session, make_customer: Any, grant: Any, make_rule: Any, admin: Any, lead: int
) -> None:
    from guanxi.loyalty.coupons import save_template
    from guanxi.loyalty.models import Coupon
    from guanxi.loyalty.schemas import CouponTemplateIn

    member = make_customer("会员", phones=["13912340041"], language="en")
    grant(member)
    with clock.frozen(local(2023, 9, 25, 15)):
        enrol(db, customer_id=member.id, actor=admin)
    save_template(
        db,
        template_in=CouponTemplateIn(
            code="thanks5",
            name_zh="5元寄件券",
            name_en="5-yuan shipping coupon",
            kind="amount_off",
            amount_off_fen=500,
            valid_days=30,
        ),
        actor=admin,
    )
    rule = make_rule(
        {
            "name": "入会周年",
            "kind": "anniversary",
            "channel": "sms",
            "sms_template": "care_greeting",
            "body_zh": "{{ name }}，入会{{ years }}周年！{{ coupon_name }}：{{ coupon_code }}",
            "body_en": "{{ years }} years, {{ name }}! {{ coupon_name }}: {{ coupon_code }}",
            "coupon_template": "thanks5",
            "lead_days": lead,
        }
    )
    day = DAY - timedelta(days=lead)
    at = local(day.year, day.month, day.day, 9)
    with clock.frozen(at):
        run_day(db, day=day, now=at)
    code = db.scalar(select(Coupon.code).where(Coupon.customer_id == member.id))
    [row] = outbox(db)
    assert row.key == f"care:{rule.id}:2026-09-25:{member.id}"
    assert row.body == f"3 years, 会员! 5-yuan shipping coupon: {code}"
