"""Helpers of the campaign tests: many customers at once, an audience, the campaigns' SMS
template and a campaign's input."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from guanxi.campaigns import audiences
from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn
from guanxi.core.db import write_transaction
from guanxi.customers.models import Customer

TEMPLATE = "campaign_offer"


def bulk_customers(db: Session, count: int, *, region: str, prefix: str = "客户") -> list[int]:
    """``count`` active individual customers in ``region``; their ids in order."""
    with write_transaction(db):
        ids = db.scalars(
            insert(Customer).returning(Customer.id),
            [
                {"kind": "individual", "name": f"{prefix}{n}", "region": region}
                for n in range(count)
            ],
        ).all()
    return sorted(ids)


def make_audience(db: Session, actor: Any, name: str = "浙江客户", **definition: Any) -> int:
    """A saved audience (default: customers in 浙江省); its id."""
    definition = definition or {"regions": ["浙江省"]}
    audience = audiences.save_audience(
        db,
        audience_in=AudienceIn(name=name, definition=AudienceDefinition(**definition)),
        actor=actor,
    )
    return audience.id


def sms_template(db: Session, actor: Any) -> str:
    """The campaigns' SMS template (as the demo creates it)."""
    from guanxi.demo.campaigns import ensure_sms_template

    ensure_sms_template(db, actor)
    return TEMPLATE


def campaign_body(audience_id: int, **overrides: Any) -> dict[str, Any]:
    """A campaign's input: an SMS with one variant and a 20 % control group."""
    body: dict[str, Any] = {
        "name": "双十二寄件优惠",
        "goal": "唤醒老客户",
        "audience_id": audience_id,
        "channel": "sms",
        "target_url": "https://example.com/promo",
        "control_pct": 20,
        "variants": [
            {"code": "A", "sms_template": TEMPLATE, "body_zh": "{name}您好，寄件8折：{link}"}
        ],
    }
    body.update(overrides)
    return body


def set_seed(db: Session, campaign_id: int, seed: int) -> None:
    """Fix a campaign's split seed (tests assert exact groups)."""
    with write_transaction(db):
        campaign = db.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.seed = seed


def groups(db: Session, campaign_id: int) -> dict[int, str]:
    """customer id -> variant code or "control"."""
    db.expire_all()
    rows = db.execute(
        select(CampaignRecipient.customer_id, CampaignRecipient.variant).where(
            CampaignRecipient.campaign_id == campaign_id
        )
    ).all()
    return {int(c): str(v) for c, v in rows}
