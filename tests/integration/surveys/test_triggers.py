"""The worker's survey triggers with a frozen clock: after delivery (sampled, at most once
per customer per N days, consent respected), the periodic relationship survey (once per
period), the one reminder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, record_consent
from guanxi.notify.models import OutboxMessage
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.surveys import responses, triggers
from guanxi.surveys.models import SurveyInvitation, SurveySetting
from guanxi.surveys.policy import SurveyPolicy
from tests.integration.surveys.helpers import invite

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
ALL = SurveyPolicy(delivery_rate=1.0, min_days_between=30, relationship=False)


def _ship(db: Session, agent: Any, customer_id: int, waybill: str, delivered: datetime) -> int:
    shipment = create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no=waybill,
            customer_id=customer_id,
            service_type="express",  # type: ignore[arg-type]
            dest_province="江苏省",
            created_at=delivered - timedelta(days=2),
            delivered_at=delivered,
        ),
        actor=agent,
    )
    return int(shipment.id)


def _delivery_invites(db: Session) -> list[tuple[int | None, int | None]]:
    return [
        (r.customer_id, r.shipment_id)
        for r in db.execute(
            select(SurveyInvitation.customer_id, SurveyInvitation.shipment_id)
            .where(SurveyInvitation.trigger == "delivery")
            .order_by(SurveyInvitation.id)
        )
    ]


def test_delivery_survey_at_most_once_per_customer_per_window(
    db: Session, agent: Any, make_customer: Any
) -> None:
    x = make_customer(name="常客", phones=["13600136000"])
    y = make_customer(name="拒访", phones=["13600136001"])
    x1 = _ship(db, agent, x.id, "SV0000000001", T0 - timedelta(hours=20))
    _ship(db, agent, x.id, "SV0000000002", T0 - timedelta(hours=3))  # the same customer
    _ship(db, agent, y.id, "SV0000000003", T0 - timedelta(hours=5))
    _ship(db, agent, x.id, "SV0000000004", T0 - timedelta(hours=30))  # delivered too long ago
    with write_transaction(db):
        record_consent(
            db, customer_id=y.id, purpose=Purpose.survey, granted=False, source="agent",
            actor=Actor.system("test"),
        )  # fmt: skip
    with clock.frozen(T0):
        first = triggers.invite_after_delivery(db, now=T0, policy=ALL)
        again = triggers.invite_after_delivery(db, now=T0, policy=ALL)
    assert (first.candidates, first.invited) == (1, 1)
    assert (again.invited, again.skipped_recent) == (0, 1)
    assert _delivery_invites(db) == [(x.id, x1)]
    [sms] = db.scalars(select(OutboxMessage).where(OutboxMessage.source.startswith("survey:")))
    assert (sms.channel, sms.template, sms.customer_id) == ("sms", "survey_invite", x.id)
    # Ten days later another delivery: still within the 30 days, no survey.
    later = T0 + timedelta(days=10)
    _ship(db, agent, x.id, "SV0000000005", later - timedelta(hours=2))
    with clock.frozen(later):
        assert triggers.invite_after_delivery(db, now=later, policy=ALL).invited == 0
    # After 30 days, again.
    month = T0 + timedelta(days=30, hours=1)
    x6 = _ship(db, agent, x.id, "SV0000000006", month - timedelta(hours=2))
    with clock.frozen(month):
        assert triggers.invite_after_delivery(db, now=month, policy=ALL).invited == 1
    assert _delivery_invites(db) == [(x.id, x1), (x.id, x6)]


def test_delivery_sampling_is_stable_and_near_the_rate() -> None:
    keys = [f"delivery:{n}" for n in range(20_000)]
    picked = [k for k in keys if triggers.sampled(k, 0.05)]
    assert 900 < len(picked) < 1100
    assert picked == [k for k in keys if triggers.sampled(k, 0.05)]  # the same on a re-run
    assert set(picked) <= {k for k in keys if triggers.sampled(k, 0.2)}  # nested
    assert not any(triggers.sampled(k, 0) for k in keys[:100])


def test_relationship_survey_once_per_quarter(db: Session, agent: Any, make_customer: Any) -> None:
    customers = [make_customer(name=f"关系{n}", email=f"r{n}@example.cn") for n in range(6)]
    for n, c in enumerate(customers[:5]):
        _ship(db, agent, c.id, f"RL00000000{n}", T0 - timedelta(days=20))
    policy = SurveyPolicy(relationship_rate=1.0, relationship_months=3, after_delivery=False)
    # One of them was surveyed a week ago: skipped (at most once per 30 days).
    invite(db, customers[0].id, "after_ticket", now=T0 - timedelta(days=7))
    with clock.frozen(T0):
        result = triggers.invite_relationship(db, now=T0, policy=policy)
        assert (result.candidates, result.invited, result.skipped_recent) == (5, 4, 1)
        assert triggers.invite_relationship(db, now=T0, policy=policy).invited == 0
    keys = sorted(
        db.scalars(select(SurveyInvitation.key).where(SurveyInvitation.trigger == "relationship"))
    )
    assert keys == sorted(f"relationship:2026-10:{c.id}" for c in customers[1:5])
    done = db.get(SurveySetting, "relationship:2026-10")
    assert done is not None
    assert json.loads(done.value) == {"invited": 4, "candidates": 5}
    assert triggers.period_of(datetime(2026, 12, 31, 16, 0, tzinfo=UTC), 3, "Asia/Shanghai") == (
        "2027-01"
    )


def test_one_reminder_to_those_who_have_not_answered(
    db: Session, mobile_customer: Any, email_customer: Any, make_customer: Any
) -> None:
    sent = T0 - timedelta(days=4)
    silent = invite(db, mobile_customer.id, "relationship", now=sent)
    answered = invite(db, email_customer.id, "relationship", now=sent)
    fresh = invite(db, make_customer(name="新", phones=["13500135000"]).id, now=T0)
    with clock.frozen(T0):
        responses.answer_link(db, token=answered.token, answers={"nps": 8}, lang="zh_CN")
        policy = SurveyPolicy(reminder_after_days=3)
        assert triggers.send_reminders(db, now=T0, policy=policy) == 1
        assert triggers.send_reminders(db, now=T0 + timedelta(days=1), policy=policy) == 0
    reminders = list(
        db.scalars(select(OutboxMessage).where(OutboxMessage.key.startswith("survey-reminder:")))
    )
    assert [m.key for m in reminders] == [f"survey-reminder:{silent.id}"]
    assert reminders[0].template == "survey_reminder"
    # The reminder's link is a second secret for the same invitation; the first works too.
    link = json.loads(reminders[0].params or "{}")["link"]
    token = link.rsplit("/q/", 1)[1]
    assert token != silent.token
    with clock.frozen(T0 + timedelta(hours=1)):
        response = responses.answer_link(db, token=token, answers={"nps": 10}, lang="zh_CN")
    assert response.invitation_id == silent.id
    assert db.get(SurveyInvitation, fresh.id).reminded_at is None  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.key.startswith("survey-reminder:"))) == 1  # fmt: skip
