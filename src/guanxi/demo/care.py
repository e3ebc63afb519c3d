"""Demo customer care (客户关怀): the example rules a company would switch on first — the
birthday greeting with a 5-yuan coupon, the Spring Festival, Mid-Autumn and National Day
greetings, win-back of customers at high churn risk and thanks after a complaint — the
marketing consent most customers gave when they signed up, and the last weeks of daily
runs, so the rules page, the previews and the run history show real figures.

Everything goes through the services (audited): rules are switched on by the demo
administrator, consents granted in bulk with source "demo", and each past day is run with
the clock set to its send time. Idempotent: a second call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.care import service
from guanxi.care.models import CareRule, CareRun
from guanxi.care.run import run_day
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.customers.consent import Purpose, grant_many
from guanxi.customers.models import Customer, CustomerConsent
from guanxi.security.models import User

# The example rules (migration 0018) the demo switches on, by kind and festival.
SWITCHED_ON = {
    ("birthday", "[]"),
    ("festival", '["spring_festival"]'),
    ("festival", '["mid_autumn"]'),
    ("festival", '["national_day"]'),
    ("winback", "[]"),
    ("complaint_thanks", "[]"),
}
BIRTHDAY_COUPON = "birthday"
# Share of customers who gave marketing consent at sign-up (SMS; e-mail a little fewer).
SMS_SHARE = 0.78
EMAIL_SHARE = 0.6
HISTORY_DAYS = 21


@dataclass(frozen=True)
class CareDemo:
    """What the demo seeding did."""

    rules_on: int
    consents: int
    runs: int
    queued: int


def seed_care(session: Session, *, seed: int = 42, timezone: str = "Asia/Shanghai") -> CareDemo:
    """Switch on the example rules, record consents and run the last weeks (once)."""
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None:
        return CareDemo(0, 0, 0, 0)
    _birthday_coupon(session, admin)
    rules_on = 0
    for rule in session.scalars(select(CareRule).order_by(CareRule.id)).all():
        if (rule.kind, rule.festivals) in SWITCHED_ON and not rule.enabled:
            try:
                service.set_enabled(session, rule_id=rule.id, enabled=True, actor=admin)
                rules_on += 1
            except ValidationFailed:  # a rule that does not pass its checks stays off
                session.rollback()
    consents = _consents(session, seed)
    if session.scalar(select(func.count()).select_from(CareRun)):
        return CareDemo(rules_on, consents, 0, 0)
    zone = ZoneInfo(timezone)
    today = clock.now().astimezone(zone).date()
    runs = queued = 0
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        at = datetime.combine(day, time(10, 0), tzinfo=zone).astimezone(UTC)
        with clock.frozen(at):
            result = run_day(session, day=day, now=at, timezone=timezone)
        runs += len(result.outcomes)
        queued += sum(o.figures.get("queued", 0) for o in result.outcomes)
    return CareDemo(rules_on, consents, runs, queued)


def _birthday_coupon(session: Session, admin: User) -> None:
    """The coupon the birthday greeting carries (a loyalty coupon template)."""
    from guanxi.loyalty.coupons import get_template, save_template
    from guanxi.loyalty.schemas import CouponTemplateIn

    try:
        get_template(session, BIRTHDAY_COUPON)
        session.commit()
        return
    except NotFound:
        session.rollback()
    save_template(
        session,
        template_in=CouponTemplateIn(
            code=BIRTHDAY_COUPON,
            name_zh="生日5元寄件券",
            name_en="5-yuan birthday shipping coupon",
            kind="amount_off",
            amount_off_fen=500,
            min_spend_fen=1000,
            valid_days=30,
        ),
        actor=admin,
    )


def _consents(session: Session, seed: int) -> int:
    """Marketing consent of most customers, given at sign-up (only on a database where no
    marketing consent was recorded yet)."""
    marketing = [Purpose.marketing_sms.value, Purpose.marketing_email.value]
    if session.scalar(
        select(func.count())
        .select_from(CustomerConsent)
        .where(CustomerConsent.purpose.in_(marketing))
    ):
        session.commit()
        return 0
    ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    session.commit()

    def share(cid: int, salt: int) -> float:
        # A fixed hash of the id and seed: the same customers consent on every run.
        return ((cid * 2654435761 + seed * 40503 + salt) % 1000) / 1000

    sms = [cid for cid in ids if share(cid, 1) < SMS_SHARE]
    email = [cid for cid in ids if share(cid, 2) < EMAIL_SHARE]
    at = clock.now() - timedelta(days=400)
    with write_transaction(session):
        total = grant_many(session, sms, [Purpose.marketing_sms], source="demo", at=at)
        total += grant_many(session, email, [Purpose.marketing_email], source="demo", at=at)
    return total
