"""Thanks after a complaint closes, through the tickets' closed hook, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.care.models import CareRun
from guanxi.care.preview import preview
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, record_consent
from guanxi.tickets import service as tickets
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.schemas import TicketCreate
from tests.integration.care.conftest import local, outbox, shape

THANKS = {
    "name": "投诉关闭后致谢",
    "kind": "complaint_thanks",
    "channel": "sms_or_email",
    "sms_template": "care_thanks",
    "subject_zh": "感谢您的反馈",
    "body_zh": "{{ name }}，感谢您的反馈，问题已处理完毕。",
    "send_time": "10:00",
    "lead_days": 1,
}


def _close(db: Session, agent: Any, customer: Any, type_: str = "complaint") -> Any:
    ticket = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(
            type=type_,  # type: ignore[arg-type]
            channel="hotline",  # type: ignore[arg-type]
            subject="快件延误",
            customer_id=customer.id,
        ),
        actor=agent,
    )
    ticket = tickets.take(db, ticket_id=ticket.id, actor=agent)
    for action in (TicketAction.start, TicketAction.resolve, TicketAction.close):
        ticket = tickets.act(
            db, ticket_id=ticket.id, action=action, actor=agent, version=ticket.version
        )
    return ticket


def test_a_closed_complaint_is_thanked_the_next_morning_once(
    db: Session, make_user: Any, make_customer: Any, make_rule: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer("投诉人", phones=["13912340051"])
    rule = make_rule(THANKS)
    closed_at = local(2026, 11, 3, 16, 20)
    with clock.frozen(closed_at):
        _close(db, agent, customer)
        _close(db, agent, customer)  # a second complaint of theirs closes the same day
        _close(db, agent, customer, type_="inquiry")  # inquiries are not thanked
    [row] = outbox(db)
    assert row.key == f"care:{rule.id}:2026-11-03:{customer.id}"
    # A service message: no marketing consent needed; sent the day after at 10:00.
    assert shape(row) == {
        "customer_id": customer.id,
        "channel": "sms",
        "category": "service",
        "template": "care_thanks",
        "params": {"name": "投诉人", "company": "关系速递"},
        "subject": "",
        "body": "投诉人，感谢您的反馈，问题已处理完毕。",
        "source": f"care:{rule.id}:complaint_thanks",
    }
    assert row.next_attempt_at == datetime(2026, 11, 4, 2, 0, tzinfo=UTC)
    run = db.scalar(select(CareRun).where(CareRun.rule_id == rule.id))
    assert run is not None
    assert (run.run_date, run.occasion_date, run.eligible, run.queued) == (
        date(2026, 11, 4),
        date(2026, 11, 3),
        1,
        1,
    )
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "care.thanks_queued")).all()
    assert [(a.target_id, a.after["rule_id"]) for a in audit] == [(str(customer.id), rule.id)]
    # The preview of the day after shows the same customer and message.
    seen = preview(db, rule_id=rule.id, day=date(2026, 11, 4))
    assert [(s.customer_id, s.body) for s in seen.sample] == [(customer.id, row.body)]


def test_thanks_respect_an_opt_out_and_audiences(
    db: Session, make_user: Any, make_customer: Any, make_rule: Any
) -> None:
    agent = make_user("agent")
    opted_out = make_customer("不打扰", phones=["13912340052"], region="浙江省")
    elsewhere = make_customer("外省", phones=["13912340053"], region="广东省")
    with write_transaction(db):
        record_consent(
            db,
            customer_id=opted_out.id,
            purpose=Purpose.survey,
            granted=False,
            source="agent",
            actor=agent,
        )
    zhejiang = make_rule(THANKS, audience={"regions": ["浙江省"]}, priority=90)
    fallback = make_rule(THANKS, name="其他地区致谢", channel="email", priority=10)
    with clock.frozen(local(2026, 11, 3, 16)):
        _close(db, agent, opted_out)
        _close(db, agent, elsewhere)
    # 不打扰 opted out of service messages: nothing. 外省 is outside the first rule's
    # audience; the second rule holds everyone but writes e-mail, and 外省 has none.
    assert outbox(db) == []
    runs = {
        r.rule_id: (r.eligible, r.queued, r.no_consent, r.no_contact)
        for r in db.scalars(select(CareRun))
    }
    assert runs == {zhejiang.id: (1, 0, 1, 0), fallback.id: (1, 0, 0, 1)}


def test_a_thanks_sent_when_the_send_time_has_passed_goes_at_once(
    db: Session, make_user: Any, make_customer: Any, make_rule: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer("即时", phones=["13912340054"])
    make_rule(THANKS, lead_days=0, send_time="09:00")
    closed_at = local(2026, 11, 3, 15)
    with clock.frozen(closed_at):
        _close(db, agent, customer)
    [row] = outbox(db)
    assert row.next_attempt_at == closed_at.astimezone(UTC)
