"""The preview of a care rule: for a chosen day, how many customers it would reach, how
many it would leave out and why, and a sample of recipients (name and address masked)
with the exact message each would get.

It is the daily run's own planning (:mod:`guanxi.care.planning`), read-only: the rules
that would run before it that day (switched on, higher priority, not yet run) are planned
first so they take their share of the frequency cap, as in the run. Coupons are not
issued by a preview; their code shows as a placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.care.enums import SCHEDULED_KINDS, RuleKind
from guanxi.care.models import CareRun
from guanxi.care.planning import CapState, Plan, compose, plan_rule
from guanxi.care.policy import load_policy
from guanxi.care.run import coupon_names, scheduled_rules, tier_names
from guanxi.care.service import get_rule
from guanxi.config import get_settings
from guanxi.security.masking import mask_email, mask_phone

SAMPLE = 20
COUPON_PLACEHOLDER = {"zh_CN": "〔券码〕", "en": "[coupon code]"}


@dataclass(frozen=True)
class SampleRecipient:
    """One recipient of the sample, masked, with the message."""

    customer_id: int
    name: str
    address: str
    channel: str
    language: str
    subject: str
    body: str


@dataclass
class Preview:
    """A rule's day as the run would see it."""

    plan: Plan
    already_ran: bool
    sample: list[SampleRecipient] = field(default_factory=list)

    @property
    def reached(self) -> int:
        """Customers who would get the message."""
        return len(self.plan.recipients)


def mask_name(name: str) -> str:
    """The first character and stars: 张** / Z***; organisations keep two characters."""
    keep = 2 if len(name) > 4 else 1
    return name[:keep] + "*" * min(3, max(1, len(name) - keep))


def preview(
    session: Session,
    *,
    rule_id: int,
    day: date,
    sample_size: int = SAMPLE,
    timezone: str | None = None,
    language: str | None = None,
) -> Preview:
    """What ``rule_id`` would do on local ``day`` (switched on or not); the site's
    timezone and default language from the process settings unless given."""
    from guanxi.customers.queries import contact_points

    if timezone is None or language is None:
        settings = get_settings()
        timezone, language = timezone or settings.timezone, language or settings.default_language
    tz = ZoneInfo(timezone)
    rule = get_rule(session, rule_id)
    policy = load_policy(session)
    caps = CapState(policy, day, tz)
    ran = set(session.scalars(select(CareRun.rule_id).where(CareRun.run_date == day)))
    if RuleKind(rule.kind) in SCHEDULED_KINDS:
        for other in scheduled_rules(session):
            earlier = (other.priority, -other.id) > (rule.priority, -rule.id)
            if other.id != rule.id and earlier and other.id not in ran:
                plan_rule(
                    session,
                    other,
                    day,
                    policy=policy,
                    caps=caps,
                    tz=tz,
                    default_language=language,
                )
    plan = plan_rule(
        session,
        rule,
        day,
        policy=policy,
        caps=caps,
        tz=tz,
        default_language=language,
    )
    result = Preview(plan=plan, already_ran=rule.id in ran)
    chosen = plan.recipients[:sample_size]
    if not chosen:
        return result
    points = contact_points(session, [r.customer_id for r in chosen])
    coupons = (
        {r.customer_id: COUPON_PLACEHOLDER[r.language] for r in chosen}
        if rule.coupon_template
        else None
    )
    names = coupon_names(session, rule.coupon_template) if rule.coupon_template else None
    tiers = tier_names(session) if "tier" in (rule.body_zh + rule.body_en) else None
    for c in compose(
        plan, policy, coupons=coupons, coupon_name=names, tier_names=tiers, recipients=chosen
    ):
        point = points.get(c.recipient.customer_id)
        address = ""
        if point is not None and c.recipient.channel == "sms" and point.mobile:
            address = mask_phone(point.mobile)
        elif point is not None and c.recipient.channel == "email" and point.email:
            address = mask_email(point.email)
        result.sample.append(
            SampleRecipient(
                customer_id=c.recipient.customer_id,
                name=mask_name(c.recipient.name),
                address=address,
                channel=c.recipient.channel,
                language=c.recipient.language,
                subject=c.subject,
                body=c.body,
            )
        )
    session.commit()
    return result
