"""The daily care run: every switched-on birthday, festival, anniversary and win-back rule,
once a day, highest priority first, into notify's outbox.

Per rule and day a ``care_run`` row is first claimed (unique per rule and day: a second
worker, or the job again, finds it and moves on; a claim whose worker died is taken over
after :data:`LEASE`). The rule is then planned with set-based SQL
(:mod:`guanxi.care.planning`), its coupons issued in one call, and its messages queued in
bulk, ``CHUNK`` per transaction so a festival greeting to a million customers never holds
SQLite's write lock for long; the last transaction records the figures. Outbox keys
``care:<rule>:<occasion>:<customer>`` make every step safe to repeat: a run taken over
after a crash queues nothing twice.
"""

from __future__ import annotations

import gc
import time as timer
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.care.enums import SCHEDULED_KINDS, RuleKind, RunStatus
from guanxi.care.models import CareRule, CareRun
from guanxi.care.planning import (
    CapState,
    Composed,
    Plan,
    Recipient,
    occasion_of,
    plan_rule,
    rendered,
    send_moment,
)
from guanxi.care.policy import CarePolicy, load_policy
from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.core.db import is_unique_violation, write_transaction
from guanxi.notify.outbox import BulkItem, Category, Channel, Outbound, queue_bulk

# A claim older than this whose run never finished is taken over (its worker died).
LEASE = timedelta(minutes=30)
# Messages queued per transaction.
CHUNK = 50_000
ACTOR = Actor.system("care")


@dataclass
class RuleOutcome:
    """What the run did with one rule."""

    rule_id: int
    name: str
    occasion: date
    figures: dict[str, int]
    seconds: float
    status: str  # queued | dry_run | skipped (another worker has it, or it ran already)


@dataclass
class DayResult:
    """One daily run, rule by rule."""

    day: date
    dry_run: bool
    outcomes: list[RuleOutcome] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """Totals for the worker's log and ``guanxi worker --once``."""
        queued = sum(o.figures.get("queued", 0) for o in self.outcomes if o.status != "skipped")
        return {
            "day": self.day.isoformat(),
            "rules": sum(1 for o in self.outcomes if o.status != "skipped"),
            "queued": queued,
        }


def _zone(timezone: str | None) -> ZoneInfo:
    return ZoneInfo(timezone or get_settings().timezone)


def scheduled_rules(session: Session, *, rule_ids: Sequence[int] | None = None) -> list[CareRule]:
    """Switched-on rules of the daily run, in the order they run (priority, then id)."""
    stmt = (
        select(CareRule)
        .where(CareRule.enabled.is_(True), CareRule.kind.in_([k.value for k in SCHEDULED_KINDS]))
        .order_by(CareRule.priority.desc(), CareRule.id)
    )
    if rule_ids is not None:
        stmt = stmt.where(CareRule.id.in_(list(rule_ids)))
    return list(session.scalars(stmt))


def pending_rules(session: Session, day: date, now: datetime) -> list[CareRule]:
    """Scheduled rules with no run on ``day`` (or only a claim whose lease ran out)."""
    stale = now - LEASE
    taken = select(CareRun.rule_id).where(
        CareRun.run_date == day,
        or_(CareRun.status == RunStatus.done.value, CareRun.started_at >= stale),
    )
    return [r for r in scheduled_rules(session) if r.id not in set(session.scalars(taken))]


def run_if_due(
    session: Session, *, now: datetime | None = None, timezone: str | None = None
) -> DayResult | None:
    """The worker's job: run today's rules once the earliest send time among those not yet
    run has come (all of them together, so priorities share the cap as planned)."""
    now = now or clock.now()
    tz = _zone(timezone)
    local = now.astimezone(tz)
    rules = pending_rules(session, local.date(), now)
    session.commit()
    if not rules:
        return None
    policy = load_policy(session)
    earliest = min(r.send_time or policy.default_send_time for r in rules)
    if local.time() < earliest:
        return None
    return run_day(session, day=local.date(), now=now, timezone=timezone)


def run_day(
    session: Session,
    *,
    day: date,
    now: datetime | None = None,
    dry_run: bool = False,
    rule_ids: Sequence[int] | None = None,
    timezone: str | None = None,
    language: str | None = None,
) -> DayResult:
    """Run the switched-on scheduled rules for local ``day`` (``rule_ids``: only those).

    A rule that already ran that day is skipped. ``dry_run`` plans and counts without
    writing anything (coupons are not issued, nothing is queued or recorded).
    """
    now = now or clock.now()
    tz = _zone(timezone)
    lang = language or get_settings().default_language
    policy = load_policy(session)
    result = DayResult(day=day, dry_run=dry_run)
    caps = CapState(policy, day, tz)
    for rule in scheduled_rules(session, rule_ids=rule_ids):
        occasion = occasion_of(rule, day)
        run_id = None if dry_run else _claim(session, rule, day, now)
        if not dry_run and run_id is None:
            result.outcomes.append(RuleOutcome(rule.id, rule.name, occasion, {}, 0.0, "skipped"))
            continue
        started = timer.perf_counter()
        with collector_paused():
            plan = plan_rule(
                session, rule, day, policy=policy, caps=caps, tz=tz, default_language=lang
            )
            session.commit()  # end the read transaction before the writes
            if run_id is not None:
                queue_plan(session, plan, policy, now=now, tz=tz, run_id=run_id, started=started)
        outcome_status = "dry_run" if dry_run else "queued"
        result.outcomes.append(
            RuleOutcome(
                rule.id,
                rule.name,
                occasion,
                plan.figures(),
                timer.perf_counter() - started,
                outcome_status,
            )
        )
    return result


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a rule is planned and queued.

    A festival holds a million rows and builds a million messages, none of them in a
    reference cycle, so the collector frees nothing; but every 700 new objects it runs,
    and each of its full passes walks the whole growing heap: a few seconds of a
    30-second run. Reference counting frees everything as before; the collector is
    switched back on (if it was on) when the rule is done, even if it failed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _claim(session: Session, rule: CareRule, day: date, now: datetime) -> int | None:
    """Take the rule's run of ``day``: a new row, or a stale claim taken over; None when it
    ran already or another worker has it."""
    try:
        with write_transaction(session):
            row = session.scalar(
                select(CareRun).where(CareRun.rule_id == rule.id, CareRun.run_date == day)
            )
            if row is None:
                row = CareRun(
                    rule_id=rule.id,
                    run_date=day,
                    occasion_date=occasion_of(rule, day),
                    status=RunStatus.running.value,
                    started_at=now,
                )
                session.add(row)
                session.flush()
                return row.id
            if row.status == RunStatus.done.value or row.started_at >= now - LEASE:
                return None
            # The worker that claimed it died: take over if nobody else did meanwhile.
            taken = session.execute(
                update(CareRun)
                .where(
                    CareRun.id == row.id,
                    CareRun.status == RunStatus.running.value,
                    CareRun.started_at == row.started_at,
                )
                .values(started_at=now)
                .execution_options(synchronize_session=False)
            )
            return row.id if taken.rowcount == 1 else None  # type: ignore[attr-defined]
    except IntegrityError as exc:  # a concurrent worker inserted the claim first
        if not is_unique_violation(exc):
            raise
        return None


def _category(rule: CareRule) -> Category:
    """Thanks after a complaint is a service message; every other care message marketing."""
    if rule.kind == RuleKind.complaint_thanks.value:
        return Category.service
    return Category.marketing


def _key_prefix(plan: Plan) -> str:
    """Outbox keys ``care:<rule>:<occasion>:<customer>``: one message per rule, occasion
    and customer, however often the run is repeated."""
    return f"care:{plan.rule.id}:{plan.occasion.isoformat()}:"


def _source(rule: CareRule) -> str:
    return f"care:{rule.id}:{rule.kind}"


def outbound(
    plan: Plan, composed: Iterable[Composed], not_before: datetime | None
) -> Iterator[Any]:
    """The outbox messages of a plan's composed messages."""
    rule = plan.rule
    category = _category(rule)
    prefix = _key_prefix(plan)
    source = _source(rule)
    sms, email = Channel.sms, Channel.email
    template = rule.sms_template
    for c in composed:
        is_sms = c.recipient.channel == "sms"
        yield Outbound(
            key=f"{prefix}{c.recipient.customer_id}",
            channel=sms if is_sms else email,
            category=category,
            customer_id=c.recipient.customer_id,
            template=template if is_sms else None,
            params=c.params,
            subject=c.subject,
            body=c.body,
            not_before=not_before,
            source=source,
        )


def coupon_names(session: Session, code: str) -> dict[str, str]:
    """The coupon template's name per language (its code when the template is gone)."""
    from guanxi.core.errors import NotFound
    from guanxi.loyalty.coupons import get_template

    try:
        template = get_template(session, code)
    except NotFound:
        return {"zh_CN": code, "en": code}
    return {"zh_CN": template.name_zh, "en": template.name_en}


def tier_names(session: Session) -> dict[str, dict[str, str]]:
    """Loyalty tier names per code and language, from the loyalty policy."""
    from guanxi.loyalty.policy import load_policy as loyalty_policy

    return {t.code: {"zh_CN": t.name_zh, "en": t.name_en} for t in loyalty_policy(session).tiers}


def queue_plan(
    session: Session,
    plan: Plan,
    policy: CarePolicy,
    *,
    now: datetime,
    tz: ZoneInfo,
    run_id: int | None,
    started: float,
) -> int:
    """Issue the plan's coupons and queue its messages (``CHUNK`` per transaction); the last
    transaction finishes the run row ``run_id`` and audits the run. Returns rows queued."""
    rule = plan.rule
    coupons: dict[int, str] = {}
    names: dict[str, str] | None = None
    if rule.coupon_template and plan.recipients:
        from guanxi.loyalty.service import issue_coupons

        with write_transaction(session):
            coupons = issue_coupons(
                session,
                template_code=rule.coupon_template,
                customer_ids=[r.customer_id for r in plan.recipients],
                source_key=f"care:{rule.id}:{plan.occasion.isoformat()}",
                actor=ACTOR,
                now=now,
            )
        names = coupon_names(session, rule.coupon_template)
        session.commit()
    tiers = tier_names(session) if "tier" in (rule.body_zh + rule.body_en) else None
    at = send_moment(plan.day, rule.send_time or policy.default_send_time, tz)
    added = 0
    recipients = plan.recipients
    category, source, prefix = _category(rule), _source(rule), _key_prefix(plan)
    starts = range(0, len(recipients), CHUNK) if recipients else range(1)
    for start in starts:
        chunk = recipients[start : start + CHUNK]
        with write_transaction(session):
            # One bulk per channel, each rendered while it is written (queue_bulk).
            for channel in (Channel.sms, Channel.email):
                wanted = channel.value
                messages = rendered(
                    plan,
                    policy,
                    coupons=coupons,
                    coupon_name=names,
                    tier_names=tiers,
                    recipients=[r for r in chunk if r.channel == wanted],
                )
                added += queue_bulk(
                    session,
                    _bulk_items(prefix, messages),
                    channel=channel,
                    category=category,
                    template=rule.sms_template if channel is Channel.sms else None,
                    source=source,
                    not_before=at,
                    now=now,
                )
            if start == starts[-1]:
                _finish(session, plan, run_id, now, timer.perf_counter() - started)
    return added


def _bulk_items(
    prefix: str, messages: Iterable[tuple[Recipient, str, str, dict[str, str]]]
) -> Iterator[BulkItem]:
    """Rendered messages as outbox bulk items ``(key, customer, params, subject, body)``,
    with the keys of :func:`outbound`."""
    for recipient, subject, body, params in messages:
        cid = recipient.customer_id
        yield (f"{prefix}{cid}", cid, params, subject, body)


def _finish(
    session: Session, plan: Plan, run_id: int | None, now: datetime, seconds: float
) -> None:
    """Record the run's figures, audit it and tell webhook subscribers (same transaction)."""
    from guanxi.notify.webhooks import emit

    figures = plan.figures()
    if run_id is not None:
        session.execute(
            update(CareRun)
            .where(CareRun.id == run_id)
            .values(
                status=RunStatus.done.value,
                finished_at=clock.now(),
                seconds=round(seconds, 3),
                **figures,
            )
            .execution_options(synchronize_session=False)
        )
    payload = {
        "rule_id": plan.rule.id,
        "rule": plan.rule.name,
        "kind": plan.rule.kind,
        "day": plan.day.isoformat(),
        "occasion": plan.occasion.isoformat(),
        **figures,
    }
    record(
        session,
        actor=ACTOR,
        action="care.run_finished",
        target_type="care_rule",
        target_id=plan.rule.id,
        after=payload,
    )
    emit(session, "care.run_finished", payload)
