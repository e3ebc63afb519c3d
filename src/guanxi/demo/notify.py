"""Demo data of the outbound channels: what `guanxi serve --demo` shows on the outbox,
the SMS templates, the webhooks and the consent panels.

Runs after the care demo (which records the marketing consents customers gave at sign-up
and queues the last weeks' greetings): some customers read English, a few withdrew a
consent since -- by replying TD, through the link in a mail, or on the phone with an agent
-- the built-in SMS templates carry provider template ids as an approved account would
have, an example webhook endpoint is registered (switched off: nothing listens), and the
greetings that are due are sent through the embedded file gateway, with delivery reports
as a provider would send them back. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.customers.consent import ConsentSource, Purpose, record_consent
from guanxi.customers.models import Customer, CustomerConsent, CustomerConsentEvent
from guanxi.notify import callbacks, unsubscribe, webhooks
from guanxi.notify.models import OutboxMessage, WebhookEndpoint
from guanxi.notify.sender import send_due
from guanxi.notify.sms import gateway_from_settings
from guanxi.notify.sms.templates import BUILTIN, get_template, save_template

DEMO = Actor.system("demo")
# Shares of customers: English speakers; withdrawals of each kind (capped in number).
ENGLISH = 0.03
WITHDRAWALS = (
    (Purpose.marketing_sms, ConsentSource.sms_reply, 0.02),
    (Purpose.marketing_email, ConsentSource.email_link, 0.015),
    (Purpose.survey, ConsentSource.agent, 0.01),
)
MAX_WITHDRAWALS = 120
MAX_SENT = 300


@dataclass(frozen=True)
class NotifyDemo:
    """What the demo recorded."""

    english: int
    withdrawals: int
    templates: int
    sent: int
    delivered: int


def _share(item: int | str, salt: str, seed: int) -> float:
    """A fixed fraction in [0, 1) per item and seed: the same picks on every run."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{item}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


def seed_notify(session: Session, settings: Settings, *, seed: int = 42) -> NotifyDemo:
    """Record the demo's channel data (once per database)."""
    unsubscribe.configure(settings)
    already = session.scalar(
        select(func.count())
        .select_from(CustomerConsentEvent)
        .where(CustomerConsentEvent.source != ConsentSource.demo.value)
    )
    session.commit()
    english = _languages(session, seed)
    templates = _templates(session)
    _webhook(session)
    withdrawals = 0 if already else _withdrawals(session, seed)
    sent, delivered = _send_and_report(session, settings, seed)
    return NotifyDemo(english, withdrawals, templates, sent, delivered)


def _languages(session: Session, seed: int) -> int:
    """A few individual customers read English."""
    if session.scalar(select(func.count()).where(Customer.language.is_not(None))):
        session.commit()
        return 0
    ids = session.scalars(select(Customer.id).where(Customer.kind == "individual")).all()
    english = [cid for cid in ids if _share(cid, "lang", seed) < ENGLISH]
    with write_transaction(session):
        for i in range(0, len(english), 900):
            session.execute(
                update(Customer)
                .where(Customer.id.in_(english[i : i + 900]))
                .values(language="en")
                .execution_options(synchronize_session=False)
            )
    return len(english)


def _templates(session: Session) -> int:
    """Provider template ids as an approved Aliyun and Tencent account would have them."""
    saved = 0
    for n, (code, view) in enumerate(sorted(BUILTIN.items())):
        current = get_template(session, code)
        session.commit()
        if current is not None and current.stored:
            continue
        save_template(
            session,
            code=code,
            values={
                "name": view.name,
                "category": view.category,
                "sign": "关系快递",
                "aliyun_template": f"SMS_4738{n:05d}",
                "tencent_template": f"19{n:05d}",
                "text_zh": view.text_zh,
                "text_en": view.text_en,
                "param_order": list(view.param_order),
                "active": True,
            },
            actor=DEMO,
        )
        saved += 1
    return saved


def _webhook(session: Session) -> None:
    """An example endpoint of the data warehouse, switched off (nothing listens)."""
    if session.scalar(select(WebhookEndpoint.id).limit(1)) is not None:
        session.commit()
        return
    session.commit()
    view = webhooks.create_endpoint(
        session,
        name="数据仓库（示例）",
        url="https://dw.example.cn/hooks/guanxi",
        events=["survey.detractor", "loyalty.tier_changed", "care.run_finished"],
        actor=DEMO,
    )
    webhooks.set_active(
        session, endpoint_id=view.id, active=False, actor=DEMO, reason="demo: nothing listens"
    )


def _withdrawals(session: Session, seed: int) -> int:
    """Consents withdrawn since sign-up, each kind by its usual way."""
    granted = {
        purpose: session.scalars(
            select(CustomerConsent.customer_id).where(
                CustomerConsent.purpose == purpose.value, CustomerConsent.granted.is_(True)
            )
        ).all()
        for purpose in (Purpose.marketing_sms, Purpose.marketing_email)
    }
    everyone = session.scalars(select(Customer.id)).all()
    session.commit()
    total = 0
    now = clock.now()
    for purpose, source, share in WITHDRAWALS:
        pool = granted.get(purpose, everyone)
        chosen = [c for c in pool if _share(c, purpose.value, seed) < share][: MAX_WITHDRAWALS // 3]
        for cid in chosen:
            days = 1 + int(_share(cid, "day", seed) * 60)
            with clock.frozen(now - timedelta(days=days)), write_transaction(session):
                record_consent(
                    session,
                    customer_id=cid,
                    purpose=purpose,
                    granted=False,
                    source=source.value,
                    actor=Actor.system(source.value) if source != ConsentSource.agent else DEMO,
                )
            total += 1
    return total


def _send_and_report(session: Session, settings: Settings, seed: int) -> tuple[int, int]:
    """Send due messages through the embedded gateway, then report most as delivered."""
    engine = session.get_bind()
    session.commit()
    result = send_due(
        make_sessionmaker(engine),  # type: ignore[arg-type]
        sms=gateway_from_settings(settings.model_copy(update={"sms_provider": "file"})),
        limit=MAX_SENT,
    )
    rows = session.execute(
        select(OutboxMessage.key, OutboxMessage.provider_id).where(
            OutboxMessage.channel == "sms",
            OutboxMessage.status == "sent",
            OutboxMessage.delivery == "unknown",
        )
    ).all()
    session.commit()
    reports = []
    for key, pid in rows:
        arrived = _share(key, "delivery", seed) >= 0.04
        reports.append(
            callbacks.DeliveryReport(
                provider_id=pid,
                out_id=key,
                delivered=arrived,
                at=clock.now(),
                error=None if arrived else "MK:0001",
            )
        )
    outcome = callbacks.apply_reports(session, reports)
    delivered = sum(1 for r in reports if r.delivered)
    return result.sent, delivered if outcome.matched else 0
