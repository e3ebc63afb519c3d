"""Demo marketing campaigns (营销活动): an audience, its SMS template, and a launched
campaign with a 20 % control group whose effect is KNOWN — the demo plants conversions
(shipments in the attribution window) among exactly ``TREATED_RATE`` of the treated and
``CONTROL_RATE`` of the control recipients, each worth ``PLANTED_FEE`` fen, so its report
must find a per-capita uplift of ``(TREATED_RATE − CONTROL_RATE) × PLANTED_FEE`` within its
confidence interval — and a draft for the next month.

Everything but the planted shipments goes through the services (audited). Idempotent: a
second call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.schemas import CONTROL
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.security.models import User

SMS_TEMPLATE = "campaign_offer"
AUDIENCE = "近一年活跃客户"
CAMPAIGN = "双十二寄件优惠"
TREATED_RATE = 0.35
CONTROL_RATE = 0.10
PLANTED_FEE = 5000


@dataclass(frozen=True)
class CampaignDemo:
    """What the demo seeding did."""

    campaigns: int
    recipients: int
    queued: int
    conversions: int


def ensure_sms_template(session: Session, actor: User) -> None:
    """The campaigns' SMS template (a marketing template with the tracked link)."""
    from guanxi.notify.sms.templates import get_template, save_template

    if get_template(session, SMS_TEMPLATE) is not None:
        session.commit()
        return
    session.commit()
    save_template(
        session,
        code=SMS_TEMPLATE,
        values={
            "name": "营销活动",
            "category": "marketing",
            "text_zh": "{name}您好，{company}为您准备了寄件优惠：{link}",
            "text_en": "Dear {name}, {company} has a shipping offer for you: {link}",
            "param_order": [],
        },
        actor=actor,
    )


def plant_conversions(
    session: Session,
    *,
    campaign_id: int,
    treated_rate: float,
    control_rate: float,
    fee_fen: int,
    at: datetime,
) -> int:
    """Give exactly ``round(rate × n)`` recipients of each group (the first by customer
    id) one shipment of ``fee_fen`` created at ``at``; how many shipments were planted.
    The effect is then known exactly: a per-capita revenue uplift of
    ``(treated_rate − control_rate) × fee_fen``, up to the rounding of the counts."""
    from guanxi.shipments.models import Shipment

    rows = session.execute(
        select(CampaignRecipient.customer_id, CampaignRecipient.variant)
        .where(CampaignRecipient.campaign_id == campaign_id)
        .order_by(CampaignRecipient.customer_id)
    ).all()
    treated = [cid for cid, v in rows if v != CONTROL]
    control = [cid for cid, v in rows if v == CONTROL]
    chosen = treated[: round(treated_rate * len(treated))]
    chosen += control[: round(control_rate * len(control))]
    if not chosen:
        return 0
    with write_transaction(session):
        session.execute(
            insert(Shipment),
            [
                {
                    "waybill_no": f"CMP{campaign_id:04d}{cid:09d}",
                    "customer_id": cid,
                    "kind": "waybill",
                    "status": "created",
                    "service_type": "standard",
                    "fee_fen": fee_fen,
                    "created_at": at,
                }
                for cid in chosen
            ],
        )
    return len(chosen)


def seed_campaigns(session: Session, *, seed: int = 42) -> CampaignDemo:
    """Create the demo audience and campaigns (once)."""
    from guanxi.campaigns import audiences, service
    from guanxi.campaigns.launch import launch
    from guanxi.campaigns.schemas import (
        AudienceDefinition,
        AudienceIn,
        CampaignIn,
        CostIn,
        VariantIn,
    )
    from guanxi.campaigns.tracking import refresh_conversions

    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None or session.scalar(select(func.count()).select_from(Campaign)):
        session.commit()
        return CampaignDemo(0, 0, 0, 0)
    ensure_sms_template(session, admin)
    audience = audiences.save_audience(
        session,
        audience_in=AudienceIn(
            name=AUDIENCE,
            description="近一年寄过件的客户",
            definition=AudienceDefinition(shipped_within_days=365),
        ),
        actor=admin,
    )
    now = clock.now()
    body_zh = "{name}您好，{company}双十二寄件8折，点此领取：{link}"
    body_en = "Dear {name}, 20% off your shipments this 12.12 from {company}: {link}"
    campaign = service.create_campaign(
        session,
        campaign_in=CampaignIn(
            name=CAMPAIGN,
            goal="促进老客户在双十二期间多寄件",
            audience_id=audience.id,
            channel="sms",
            target_url="https://example.com/promo/1212",
            budget_fen=300_000,
            control_pct=20,
            rate_per_hour=6000,
            attribution_days=14,
            variants=[
                VariantIn(code="A", weight=1, sms_template=SMS_TEMPLATE,
                          body_zh=body_zh, body_en=body_en),
                VariantIn(code="B", weight=1, sms_template=SMS_TEMPLATE,
                          body_zh="{name}，双十二专享寄件优惠，限时领取：{link}",
                          body_en="{name}, a 12.12 shipping offer just for you: {link}"),
            ],
        ),
        actor=admin,
    )  # fmt: skip
    # The seed fixes the split, so every demo database shows the same figures.
    with write_transaction(session):
        session.get(Campaign, campaign.id).seed = seed  # type: ignore[union-attr]
    for label, fen in (("短信费", 12_000), ("设计与文案", 30_000)):
        service.add_cost(
            session,
            campaign_id=campaign.id,
            cost_in=CostIn(label=label, amount_fen=fen),
            actor=admin,
        )
    sent_at = now - timedelta(days=10)
    with clock.frozen(sent_at):
        result = launch(session, campaign_id=campaign.id, actor=admin, now=sent_at)
    planted = plant_conversions(
        session,
        campaign_id=campaign.id,
        treated_rate=TREATED_RATE,
        control_rate=CONTROL_RATE,
        fee_fen=PLANTED_FEE,
        at=sent_at + timedelta(days=2),
    )
    refresh_conversions(session, campaign_id=campaign.id, now=now)
    service.create_campaign(
        session,
        campaign_in=CampaignIn(
            name="元旦新客关怀",
            goal="新客户首单后的二次寄件",
            audience_id=audience.id,
            channel="sms",
            target_url="https://example.com/promo/newyear",
            budget_fen=100_000,
            control_pct=10,
            variants=[VariantIn(code="A", sms_template=SMS_TEMPLATE, body_zh=body_zh)],
        ),
        actor=admin,
    )
    return CampaignDemo(2, result.recipients, result.queued, planted)
