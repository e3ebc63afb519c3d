"""Thanks after a complaint closes: the tickets' closed hook (wired in ``guanxi.domains``).

When a complaint is closed, the first switched-on thanks rule (by priority) whose audience
holds the customer queues one message — a service message, so it needs no marketing
consent (only that the customer has not opted out of service messages) and the frequency
cap never holds it back, though it counts toward the cap of later greetings. It goes out
``lead_days`` after the closing day at the rule's send time (at once if that has passed).
The outbox key ``care:<rule>:<closing day>:<customer>`` thanks a customer once a day
however many of their complaints close; the figures add up in the rule's run of the day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.care.enums import RuleKind, RunStatus
from guanxi.care.models import CareRule, CareRun
from guanxi.care.planning import CapState, Plan, compose, plan_rule, send_moment
from guanxi.care.policy import load_policy
from guanxi.care.run import ACTOR, outbound
from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction


def thank_after_complaint(session: Session, ticket: Any) -> None:
    """Queue the thanks for a closed complaint (called after the closing committed)."""
    if ticket.type != "complaint" or ticket.customer_id is None or ticket.closed_at is None:
        return
    rules = list(
        session.scalars(
            select(CareRule)
            .where(CareRule.enabled.is_(True), CareRule.kind == RuleKind.complaint_thanks.value)
            .order_by(CareRule.priority.desc(), CareRule.id)
        )
    )
    if not rules:
        return
    settings = get_settings()
    tz = ZoneInfo(settings.timezone)
    closed_on = ticket.closed_at.astimezone(tz).date()
    policy = load_policy(session)
    now = clock.now()
    for rule in rules:
        day = date.fromordinal(closed_on.toordinal() + rule.lead_days)
        plan = plan_rule(
            session,
            rule,
            day,
            policy=policy,
            caps=CapState(policy, day, tz),
            tz=tz,
            default_language=settings.default_language,
            customer_id=ticket.customer_id,
        )
        session.commit()
        if plan.eligible == 0:
            continue  # outside this rule's audience: the next rule may hold the customer
        at = send_moment(day, rule.send_time or policy.default_send_time, tz)
        _queue(session, plan, policy, at=at if at > now else None, now=now, ticket_id=ticket.id)
        return


def _queue(
    session: Session,
    plan: Plan,
    policy: Any,
    *,
    at: datetime | None,
    now: datetime,
    ticket_id: int,
) -> None:
    from guanxi.notify.outbox import queue_messages

    with write_transaction(session):
        added = queue_messages(session, list(outbound(plan, compose(plan, policy), at)), now=now)
        if plan.recipients and not added:
            return  # thanked already today (another complaint of theirs closed)
        _add_to_run(session, plan, plan.figures(), now)
        if added:
            recipient = plan.recipients[0]
            record(
                session,
                actor=ACTOR,
                action="care.thanks_queued",
                target_type="customer",
                target_id=recipient.customer_id,
                after={
                    "rule_id": plan.rule.id,
                    "ticket_id": ticket_id,
                    "channel": recipient.channel,
                },
            )


def _add_to_run(session: Session, plan: Plan, figures: dict[str, int], now: datetime) -> None:
    """Add one customer's figures to the rule's run of the day (created at the first)."""
    table = table_of(CareRun)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(
        rule_id=plan.rule.id,
        run_date=plan.day,
        occasion_date=plan.occasion,
        status=RunStatus.done.value,
        started_at=now,
        finished_at=now,
        seconds=0.0,
        **figures,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.rule_id, table.c.run_date],
        set_={name: table.c[name] + stmt.excluded[name] for name in figures} | {"finished_at": now},
    )
    session.execute(stmt)
