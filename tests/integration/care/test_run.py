"""The daily care run on both databases: who is greeted, who is left out and why, what
exactly is queued, and that a second run of the day adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.care.models import CareRun
from guanxi.care.preview import preview
from guanxi.care.run import run_day
from guanxi.core import clock
from guanxi.notify.models import OutboxMessage
from tests.integration.care.conftest import BIRTHDAY, FESTIVAL, SH, local, outbox, shape

DAY = date(2026, 9, 25)  # 中秋节 2026


def _people(make_customer: Any, grant: Any) -> dict[str, Any]:
    """Birthdays on 25 September in every situation a run meets."""
    zj = "浙江省"
    people = {
        "sms": make_customer("张三", phones=["13912345678"], birthday=date(1990, 9, 25), region=zj),
        "email_only_consent": make_customer(
            "李四",
            phones=["13800138000"],
            email="lisi@example.cn",
            birthday=date(1985, 9, 25),
            region=zj,
        ),
        "no_consent": make_customer(
            "王五", phones=["13700137000"], birthday=date(1992, 9, 25), region=zj
        ),
        "no_contact": make_customer("赵六", birthday=date(1988, 9, 25), region=zj),
        "elsewhere": make_customer(
            "孙七", phones=["13600136000"], birthday=date(1991, 9, 25), region="广东省"
        ),
        "tomorrow": make_customer(
            "周八", phones=["13500135000"], birthday=date(1993, 9, 26), region=zj
        ),
        "english": make_customer(
            "Lucy Li",
            phones=["13400134000"],
            birthday=date(1995, 9, 25),
            region=zj,
            language="en",
        ),
    }
    grant(people["sms"], people["no_contact"], people["elsewhere"], people["tomorrow"])
    grant(people["english"])
    from guanxi.customers.consent import Purpose

    grant(people["email_only_consent"], purposes=[Purpose.marketing_email])
    return people


def test_birthday_run_queues_exactly_who_may_be_greeted(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    p = _people(make_customer, grant)
    rule = make_rule(BIRTHDAY, audience={"regions": ["浙江省"]})
    now = local(2026, 9, 25, 9, 0)
    with clock.frozen(now):
        result = run_day(db, day=DAY, now=now)
    [outcome] = result.outcomes
    assert outcome.status == "queued"
    assert outcome.figures == {
        "eligible": 5,
        "queued": 3,
        "capped": 0,
        "no_consent": 1,
        "no_contact": 1,
        "outside_audience": 1,
    }
    rows = outbox(db)
    source = f"care:{rule.id}:birthday"
    assert [r.key for r in rows] == [
        f"care:{rule.id}:2026-09-25:{p[k].id}" for k in ("sms", "email_only_consent", "english")
    ]
    assert [shape(r) for r in rows] == [
        {
            "customer_id": p["sms"].id,
            "channel": "sms",
            "category": "marketing",
            "template": "care_birthday",
            "params": {"name": "张三", "company": "关系速递"},
            "subject": "",
            "body": "张三，关系速递祝您生日快乐！",
            "source": source,
        },
        {
            "customer_id": p["email_only_consent"].id,
            "channel": "email",
            "category": "marketing",
            "template": None,
            "params": {},
            "subject": "生日快乐",
            "body": "李四，关系速递祝您生日快乐！",
            "source": source,
        },
        {
            "customer_id": p["english"].id,
            "channel": "sms",
            "category": "marketing",
            "template": "care_birthday",
            "params": {"name": "Lucy Li", "company": "Guanxi Express"},
            "subject": "",
            "body": "Happy birthday, Lucy Li! — Guanxi Express",
            "source": source,
        },
    ]
    # Held until the rule's send time, 09:30 in Shanghai.
    assert {r.next_attempt_at for r in rows} == {datetime(2026, 9, 25, 1, 30, tzinfo=UTC)}
    run = db.scalar(select(CareRun).where(CareRun.rule_id == rule.id))
    assert run is not None
    assert (run.status, run.run_date, run.occasion_date) == ("done", DAY, DAY)
    assert (run.eligible, run.queued, run.capped, run.no_consent, run.no_contact) == (
        5,
        3,
        0,
        1,
        1,
    )
    assert run.outside_audience == 1
    audit = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "care.run_finished", AuditEntry.target_id == str(rule.id)
        )
    ).all()
    assert [a.after["queued"] for a in audit] == [3]


def test_a_second_run_of_the_day_adds_nothing(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    _people(make_customer, grant)
    rule = make_rule(BIRTHDAY)
    now = local(2026, 9, 25, 9, 0)
    first = run_day(db, day=DAY, now=now)
    count = db.scalar(select(func.count()).select_from(OutboxMessage))
    again = run_day(db, day=DAY, now=local(2026, 9, 25, 11, 0))
    assert [o.figures["queued"] for o in first.outcomes] == [4]
    assert [(o.rule_id, o.status) for o in again.outcomes] == [(rule.id, "skipped")]
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == count
    assert db.scalar(select(func.count()).select_from(CareRun)) == 1


def test_preview_equals_what_the_run_queues(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    _people(make_customer, grant)
    rule = make_rule(BIRTHDAY, audience={"regions": ["浙江省"]})
    seen = preview(db, rule_id=rule.id, day=DAY)
    assert not seen.already_ran
    figures = seen.plan.figures()
    with clock.frozen(local(2026, 9, 25, 9, 0)):
        [outcome] = run_day(db, day=DAY).outcomes
    assert figures == outcome.figures
    rows = outbox(db)
    assert [(s.customer_id, s.channel, s.subject, s.body) for s in seen.sample] == [
        (r.customer_id, r.channel, r.subject, r.body) for r in rows
    ]
    # Masked on screen: the first character of the name, the phone's middle digits.
    assert [(s.name, s.address) for s in seen.sample] == [
        ("张*", "139****5678"),
        ("李*", "l***@example.cn"),
        ("Lu***", "134****4000"),
    ]
    after = preview(db, rule_id=rule.id, day=DAY)
    assert after.already_ran


def test_leap_day_birthdays_are_greeted_on_february_28_in_other_years(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    leap = make_customer("闰日生", phones=["13912340229"], birthday=date(2000, 2, 29))
    feb28 = make_customer("二八生", phones=["13912340228"], birthday=date(1999, 2, 28))
    grant(leap, feb28)
    rule = make_rule(BIRTHDAY)
    # 2027 has no 29 February: both are greeted on the 28th.
    run_day(db, day=date(2027, 2, 28), now=local(2027, 2, 28, 9))
    assert [r.customer_id for r in outbox(db)] == [leap.id, feb28.id]
    # 2028 has one: the 28th is only for those born on it, the 29th for the leap-day born.
    run_day(db, day=date(2028, 2, 28), now=local(2028, 2, 28, 9))
    run_day(db, day=date(2028, 2, 29), now=local(2028, 2, 29, 9))
    keys = {r.key for r in outbox(db, f"care:{rule.id}:2028-")}
    assert keys == {
        f"care:{rule.id}:2028-02-28:{feb28.id}",
        f"care:{rule.id}:2028-02-29:{leap.id}",
    }


def test_festival_greeting_days_ahead_and_a_dry_run_writes_nothing(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    a = make_customer("钱一", phones=["13912340001"])
    b = make_customer("钱二", email="qian2@example.cn")
    grant(a, b)
    rule = make_rule(FESTIVAL, lead_days=1)
    # The day before Mid-Autumn, a dry run counts and writes nothing.
    dry = run_day(db, day=date(2026, 9, 24), now=local(2026, 9, 24, 8), dry_run=True)
    assert [(o.status, o.occasion, o.figures["queued"]) for o in dry.outcomes] == [
        ("dry_run", DAY, 2)
    ]
    assert outbox(db) == []
    assert db.scalar(select(func.count()).select_from(CareRun)) == 0
    run_day(db, day=date(2026, 9, 24), now=local(2026, 9, 24, 8))
    rows = outbox(db)
    assert [(r.customer_id, r.channel, r.subject, r.body) for r in rows] == [
        (a.id, "sms", "", "钱一，关系速递祝您中秋节快乐！"),
        (b.id, "email", "中秋快乐", "钱二，关系速递祝您中秋节快乐！"),
    ]
    assert rows[0].key == f"care:{rule.id}:2026-09-25:{a.id}"
    # Not a festival of the rule the next day: nothing, but the day is recorded as run.
    [quiet] = run_day(db, day=DAY, now=local(2026, 9, 25, 8)).outcomes
    assert quiet.figures["eligible"] == 0
    assert len(outbox(db)) == 2


def test_a_dead_workers_claim_is_taken_over_and_a_live_one_is_left_alone(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    grant(make_customer("吴九", phones=["13912340009"], birthday=date(1990, 9, 25)))
    rule = make_rule(BIRTHDAY)
    with clock.frozen(local(2026, 9, 25, 9)):
        db.add(
            CareRun(
                rule_id=rule.id,
                run_date=DAY,
                occasion_date=DAY,
                status="running",
                started_at=local(2026, 9, 25, 9),
            )
        )
        db.commit()
    # Ten minutes later the claim is live: another worker is at it.
    [busy] = run_day(db, day=DAY, now=local(2026, 9, 25, 9, 10)).outcomes
    assert busy.status == "skipped"
    # An hour later its worker is presumed dead: the run is taken over and finished.
    [taken] = run_day(db, day=DAY, now=local(2026, 9, 25, 10)).outcomes
    assert (taken.status, taken.figures["queued"]) == ("queued", 1)
    run = db.scalar(select(CareRun).where(CareRun.rule_id == rule.id))
    assert run is not None
    assert (run.status, run.queued) == ("done", 1)


def test_organisations_are_reached_at_their_contact_persons(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    contact_mobile = make_customer(
        "杭州顺达物流有限公司",
        kind="enterprise",
        phones=["0571-88881234"],
        contacts=[{"name": "陈经理", "phone": "13700137001"}],
    )
    contact_landline = make_customer(
        "宁波海运有限公司",
        kind="enterprise",
        phones=["0574-88881234"],
        contacts=[{"name": "林经理", "phone": "0574-88885678"}],
    )
    contact_email = make_customer(
        "温州鞋业有限公司",
        kind="enterprise",
        contacts=[{"name": "黄经理", "email": "huang@wzshoes.cn"}],
    )
    grant(contact_mobile, contact_landline, contact_email)
    make_rule(FESTIVAL)
    [o] = run_day(db, day=DAY, now=local(2026, 9, 25, 9)).outcomes
    assert (o.figures["queued"], o.figures["no_contact"]) == (2, 1)
    assert [(r.customer_id, r.channel) for r in outbox(db)] == [
        (contact_mobile.id, "sms"),
        (contact_email.id, "email"),
    ]


def test_the_worker_job_runs_once_the_send_time_has_come(
    db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    from guanxi.care.jobs import care_daily

    grant(make_customer("卫十二", phones=["13912340012"], birthday=date(1990, 9, 25)))
    make_rule(BIRTHDAY)  # 09:30
    make_rule(FESTIVAL)  # 10:00

    def job(hour: int, minute: int) -> dict[str, Any]:
        return care_daily(
            lambda: db, now=local(2026, 9, 25, hour, minute), timezone="Asia/Shanghai"
        )

    assert job(9, 29) == {}
    # At the earliest send time every rule of the day runs, each message held to its time.
    assert job(9, 30) == {"day": "2026-09-25", "rules": 2, "queued": 2}
    assert job(10, 5) == {}
    assert sorted(r.next_attempt_at.astimezone(SH).strftime("%H:%M") for r in outbox(db)) == [
        "09:30",
        "10:00",
    ]
