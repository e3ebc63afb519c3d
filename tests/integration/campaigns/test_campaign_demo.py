"""The demo's campaigns: an audience, a launched campaign with a 20 % control group and
a planted, known uplift — its report finds the effect within its interval — and a draft;
loading twice changes nothing."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from guanxi.campaigns import roi
from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.core.db import align_sequences, make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.campaigns import (
    CAMPAIGN,
    CONTROL_RATE,
    PLANTED_FEE,
    TREATED_RATE,
    seed_campaigns,
)
from guanxi.demo.generator import generate
from guanxi.notify.models import OutboxMessage


def test_demo_campaigns(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=1500, seed=5, owner_ids=owners, duplicate_rate=0.0)
    with sm() as session:
        align_sequences(session)
        session.commit()
    with sm() as session:
        first = seed_campaigns(session, seed=5)
        again = seed_campaigns(session, seed=5)
        campaign = session.scalar(select(Campaign).where(Campaign.name == CAMPAIGN))
        assert campaign is not None
        report = roi.report(session, campaign_id=campaign.id)
        n_t = session.scalar(
            select(func.count()).where(
                CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.variant != "control"
            )
        )
        queued = session.scalar(
            select(func.count()).where(OutboxMessage.source == f"campaign:{campaign.id}")
        )
        statuses = sorted(session.scalars(select(Campaign.status)))
    assert first.campaigns == 2
    assert again.campaigns == 0
    assert statuses == ["draft", "launched"]
    assert first.recipients == campaign.recipients
    assert queued == first.queued == n_t
    assert campaign.recipients > 200
    truth = (TREATED_RATE - CONTROL_RATE) * PLANTED_FEE * n_t
    inc = report.incremental_revenue_fen
    assert inc is not None
    assert inc.low < truth < inc.high
    assert inc.low > 0
    assert report.cost_fen == 42_000
    groups = {g.group for g in report.groups}
    assert groups == {"A", "B", "control", "treated"}
