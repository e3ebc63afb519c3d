"""A festival greeting to more customers than one queuing transaction holds, on both
databases: the run's bulk path (rendered while copied on PostgreSQL) queues exactly the
messages the preview composes, counts who was left out and why, and a repeat adds nothing."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from guanxi.care import run
from guanxi.care.models import CareRun
from guanxi.care.planning import CapState, compose, plan_rule, send_moment
from guanxi.care.policy import load_policy
from guanxi.care.run import collector_paused, outbound, queue_plan, run_day
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, grant_many
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.notify.models import OutboxMessage
from tests.integration.care.conftest import FESTIVAL, local, outbox, shape
from tests.integration.care.test_run import DAY

N = 1300  # three transactions of 500 (CHUNK lowered below), the last one partly filled
SH = ZoneInfo("Asia/Shanghai")


def _customers(db: Session) -> list[int]:
    """N customers in every situation: with a mobile (3 in 4), an e-mail address (1 in 3),
    SMS consent (4 in 5), e-mail consent (1 in 2), English (1 in 11)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with write_transaction(db):
        ids = list(
            db.scalars(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [
                    {
                        "kind": "individual",
                        "name": f"客户{i}",
                        "email_enc": "enc-email" if i % 3 == 0 else None,
                        "status": "active",
                        "language": "en" if i % 11 == 0 else None,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for i in range(N)
                ],
            )
        )
        db.execute(
            insert(CustomerPhone),
            [
                {
                    "customer_id": cid,
                    "kind": "mobile",
                    "phone_enc": "enc-phone",
                    "phone_bidx": f"b{cid}",
                    "last4": "0000",
                }
                for i, cid in enumerate(ids)
                if i % 4 != 0
            ],
        )
        sms = [cid for i, cid in enumerate(ids) if i % 5 != 0]
        grant_many(db, sms, [Purpose.marketing_sms], source="demo", at=at)
        email = [cid for i, cid in enumerate(ids) if i % 2 == 0]
        grant_many(db, email, [Purpose.marketing_email], source="demo", at=at)
        if db.get_bind().dialect.name == "postgresql":
            # The suite's database is shared: a table vacuumed while empty says it holds
            # no rows, and the planner then nests loops over these 1,300 for minutes.
            # Production tables have autovacuum's statistics; give the test its own.
            db.execute(text("ANALYZE customer, customer_phone, customer_consent, contact_person"))
    return ids


def _expected(ids: list[int]) -> dict[str, Any]:
    """Each customer's channel (or why none), by hand from the rules of _customers."""
    channels: dict[int, str] = {}
    left = {"no_consent": 0, "no_contact": 0}
    for i, cid in enumerate(ids):
        mobile, email = i % 4 != 0, i % 3 == 0
        if mobile and i % 5 != 0:
            channels[cid] = "sms"
        elif email and i % 2 == 0:
            channels[cid] = "email"
        elif mobile or email:
            left["no_consent"] += 1
        else:
            left["no_contact"] += 1
    return {"channels": channels, **left}


def test_a_festival_to_many_customers_queues_what_the_preview_composes(
    db: Session, make_rule: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "CHUNK", 500)
    ids = _customers(db)
    expected = _expected(ids)
    rule = make_rule(
        FESTIVAL,
        subject_en="Happy {{ festival }}",
        body_en="Happy {{ festival }}, {{ name }}! — {{ company }}",
    )
    policy = load_policy(db)
    # What the one-by-one path (preview, thanks) composes for the same plan.
    plan = plan_rule(
        db, rule, DAY, policy=policy, caps=CapState(policy, DAY, SH), tz=SH,
        default_language="zh_CN",
    )  # fmt: skip
    at = send_moment(DAY, rule.send_time or policy.default_send_time, SH)
    composed = {m.key: m for m in outbound(plan, compose(plan, policy), at)}
    db.commit()

    [outcome] = run_day(db, day=DAY, now=local(2026, 9, 25, 9), timezone="Asia/Shanghai").outcomes

    channels = expected["channels"]
    assert outcome.figures == {
        "eligible": N,
        "queued": len(channels),
        "capped": 0,
        "no_consent": expected["no_consent"],
        "no_contact": expected["no_contact"],
        "outside_audience": 0,
    }
    # 1300 customers: 780 with a mobile and SMS consent; of the other 520, 131 with an
    # e-mail address and e-mail consent; 216 with neither a mobile nor an e-mail address.
    assert (len(channels), expected["no_consent"], expected["no_contact"]) == (911, 173, 216)
    assert sum(1 for c in channels.values() if c == "sms") == 780
    rows = outbox(db)
    assert {r.customer_id: r.channel for r in rows} == channels
    assert {r.key: shape(r) for r in rows} == {
        key: {
            "customer_id": m.customer_id,
            "channel": m.channel.value,
            "category": m.category.value,
            "template": m.template,
            "params": dict(m.params),
            "subject": m.subject,
            "body": m.body,
            "source": m.source,
        }
        for key, m in composed.items()
    }
    english = next(r for r in rows if r.customer_id == ids[22])  # i = 22: English, by SMS
    assert (english.channel, english.body) == (
        "sms",
        "Happy Mid-Autumn Festival, 客户22! — Guanxi Express",
    )
    assert {r.next_attempt_at for r in rows} == {at}
    assert db.scalar(select(CareRun.status).where(CareRun.rule_id == rule.id)) == "done"

    # Queuing the plan again (a run taken over after its worker died having committed
    # every chunk) adds nothing: every key is there, each batch skips them all.
    before = db.scalar(select(func.count()).select_from(OutboxMessage))
    again = queue_plan(
        db, plan, policy, now=local(2026, 9, 25, 10), tz=SH, run_id=None, started=0.0
    )
    assert again == 0
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == before


def test_the_collector_is_paused_for_a_rule_and_restored_after() -> None:
    seen: list[bool] = []

    def failing_rule() -> None:
        with collector_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("a rule fails")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        failing_rule()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
