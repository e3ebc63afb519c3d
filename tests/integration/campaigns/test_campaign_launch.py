"""Launching a campaign on both databases: the seeded snapshot split into control and
variants, exactly what is queued in the outbox, throttling around the quiet hours, the
frequency cap, a crashed launch resumed without queueing anything twice, and stopping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.campaigns import launch as launching
from guanxi.campaigns import service
from guanxi.campaigns.launch import launch, split
from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.schemas import CampaignIn
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import Category, Channel, Outbound, queue_messages
from tests.integration.campaigns.campaign_support import (
    bulk_customers,
    campaign_body,
    groups,
    make_audience,
    set_seed,
    sms_template,
)

# 10:00 in Shanghai: outside the quiet hours (21:00-08:00).
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin")


def _create(db: Session, admin: Any, audience_id: int, seed: int = 7, **overrides: Any) -> int:
    sms_template(db, admin)
    campaign = service.create_campaign(
        db, campaign_in=CampaignIn.model_validate(campaign_body(audience_id, **overrides)),
        actor=admin,
    )  # fmt: skip
    set_seed(db, campaign.id, seed)
    return campaign.id


def _outbox(db: Session, source: str) -> list[OutboxMessage]:
    db.expire_all()
    return list(
        db.scalars(
            select(OutboxMessage).where(OutboxMessage.source == source).order_by(OutboxMessage.key)
        )
    )


def test_launch_snapshots_the_audience_and_queues_the_treated(db: Session, admin: Any) -> None:
    zj = bulk_customers(db, 300, region="浙江省")
    bulk_customers(db, 20, region="江苏省", prefix="苏")
    audience = make_audience(db, admin)
    variants = [
        {"code": "A", "weight": 1, "sms_template": "campaign_offer", "body_zh": "A {link}"},
        {"code": "B", "weight": 3, "sms_template": "campaign_offer", "body_zh": "B {link}"},
    ]
    cid = _create(db, admin, audience, seed=12345, variants=variants, control_pct=25)
    with clock.frozen(NOW):
        result = launch(db, campaign_id=cid, actor=admin, now=NOW)

    expected = dict(
        zip(zj, split(zj, seed=12345, control_pct=25, weights=[("A", 1), ("B", 3)]), strict=True)
    )
    assert groups(db, cid) == expected
    control = [c for c, g in expected.items() if g == "control"]
    treated = [c for c, g in expected.items() if g != "control"]
    assert result.recipients == 300
    assert result.control == len(control)
    assert result.capped == 0
    assert result.queued == len(treated)
    assert result.status == "launched"
    # The split follows the shares (seeded): 25 % control, the rest 1:3 between A and B.
    assert 50 <= len(control) <= 100
    assert sum(1 for g in expected.values() if g == "B") > 2 * sum(
        1 for g in expected.values() if g == "A"
    )

    rows = _outbox(db, f"campaign:{cid}")
    assert sorted(r.customer_id for r in rows) == sorted(treated)
    codes = dict(
        db.execute(
            select(CampaignRecipient.customer_id, CampaignRecipient.code).where(
                CampaignRecipient.campaign_id == cid
            )
        ).all()
    )
    assert all(codes[c] is None for c in control)
    assert len({codes[c] for c in treated}) == len(treated)
    for row in rows:
        assert row.key == f"campaign:{cid}:{row.customer_id}"
        assert (row.channel, row.category, row.template) == ("sms", "marketing", "campaign_offer")
        assert row.status == "pending"
        assert row.next_attempt_at == NOW
        params = json.loads(row.params or "{}")
        assert params["link"].endswith(f"/c/{codes[row.customer_id]}")
        assert row.body == f"{expected[row.customer_id]} {params['link']}"
        assert len(codes[row.customer_id]) == 16
    campaign = db.get(Campaign, cid)
    assert campaign is not None
    assert (campaign.status, campaign.recipients, campaign.queued) == (
        "launched",
        300,
        len(treated),
    )
    actions = list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "campaign", AuditEntry.target_id == str(cid))
            .order_by(AuditEntry.id)
        )
    )
    assert actions == ["campaign.created", "campaign.launch_started", "campaign.launched"]
    with pytest.raises(Conflict):
        launch(db, campaign_id=cid, actor=admin, now=NOW)
    assert len(_outbox(db, f"campaign:{cid}")) == len(treated)


def test_a_crashed_launch_resumes_without_queueing_twice(
    db: Session, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_customers(db, 120, region="浙江省")
    cid = _create(db, admin, make_audience(db, admin), control_pct=0)
    monkeypatch.setattr(launching, "CHUNK", 50)
    real = launching.queue_bulk
    calls = {"n": 0}

    def crash_on_second(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(launching, "queue_bulk", crash_on_second)
    with pytest.raises(RuntimeError):
        launch(db, campaign_id=cid, now=NOW)
    db.rollback()
    campaign = db.get(Campaign, cid)
    assert campaign is not None
    db.refresh(campaign)
    assert (campaign.status, campaign.recipients, campaign.queued) == ("launching", 120, 50)
    assert len(_outbox(db, f"campaign:{cid}")) == 50

    monkeypatch.setattr(launching, "queue_bulk", real)
    result = launch(db, campaign_id=cid, now=NOW)
    assert (result.status, result.recipients, result.queued) == ("launched", 120, 70)
    rows = _outbox(db, f"campaign:{cid}")
    assert len(rows) == 120
    assert len({r.customer_id for r in rows}) == 120
    db.refresh(campaign)
    assert campaign.queued == 120
    # The snapshot was taken once.
    assert (
        db.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == cid)
        )
        == 120
    )


def test_throttle_spreads_the_sends_and_steps_over_the_quiet_hours(db: Session, admin: Any) -> None:
    bulk_customers(db, 7, region="浙江省")
    # 20:58 in Shanghai, two messages a minute: 20:58, 20:59, then the quiet hours
    # (21:00-08:00) push the third slot to 08:00 and the fourth follows at 08:01.
    start = datetime(2026, 12, 1, 12, 58, tzinfo=UTC)
    cid = _create(db, admin, make_audience(db, admin), control_pct=0, rate_per_hour=120)
    launch(db, campaign_id=cid, now=start)
    times = sorted(r.next_attempt_at for r in _outbox(db, f"campaign:{cid}"))
    morning = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert times == [
        start,
        start,
        start + timedelta(minutes=1),
        start + timedelta(minutes=1),
        morning,
        morning,
        morning + timedelta(minutes=1),
    ]


def test_the_frequency_cap_leaves_customers_out_of_both_groups(db: Session, admin: Any) -> None:
    ids = bulk_customers(db, 10, region="浙江省")
    tired = ids[0]
    queue_messages(
        db,
        [
            Outbound(
                key=f"campaign:999:{tired}:{n}",
                channel=Channel.sms,
                category=Category.marketing,
                customer_id=tired,
                template="campaign_offer",
                source="campaign:999",
            )
            for n in range(4)
        ],
        now=NOW - timedelta(days=3),
    )
    db.commit()
    cid = _create(db, admin, make_audience(db, admin), control_pct=0)
    result = launch(db, campaign_id=cid, now=NOW)
    assert (result.recipients, result.capped, result.queued) == (9, 1, 9)
    assert tired not in groups(db, cid)


def test_stop_cancels_what_is_not_sent_and_halts_the_campaign(db: Session, admin: Any) -> None:
    bulk_customers(db, 30, region="浙江省")
    cid = _create(db, admin, make_audience(db, admin), control_pct=0, rate_per_hour=600)
    launch(db, campaign_id=cid, now=NOW)
    rows = _outbox(db, f"campaign:{cid}")
    first = rows[0]
    with write_transaction(db):
        first.status = "sent"
    campaign = service.stop_campaign(db, campaign_id=cid, actor=admin)
    assert campaign.status == "stopped"
    statuses = sorted(r.status for r in _outbox(db, f"campaign:{cid}"))
    assert statuses == ["cancelled"] * 29 + ["sent"]
    entry = db.scalar(
        select(AuditEntry)
        .where(AuditEntry.action == "campaign.stopped")
        .order_by(AuditEntry.id.desc())
    )
    assert entry is not None
    assert entry.after == {"status": "stopped", "cancelled": 29}
    with pytest.raises(Conflict):
        service.stop_campaign(db, campaign_id=cid, actor=admin)
    with pytest.raises(Conflict):
        launch(db, campaign_id=cid, now=NOW)


def test_the_worker_launches_scheduled_campaigns_when_due_and_refreshes_conversions(
    db: Session, admin: Any, session_factory: Any
) -> None:
    from guanxi.campaigns.jobs import launch_due, refresh_all

    bulk_customers(db, 12, region="浙江省")
    at = NOW + timedelta(hours=2)
    with clock.frozen(NOW):
        cid = _create(db, admin, make_audience(db, admin), control_pct=0, send_at=at.isoformat())
    campaign = db.get(Campaign, cid)
    assert campaign is not None
    assert campaign.status == "scheduled"
    assert launch_due(session_factory, now=NOW) == {"launched": 0, "queued": 0}
    assert launch_due(session_factory, now=at) == {"launched": 1, "queued": 12}
    assert launch_due(session_factory, now=at + timedelta(minutes=1)) == {
        "launched": 0,
        "queued": 0,
    }
    db.expire_all()
    assert db.get(Campaign, cid).status == "launched"  # type: ignore[union-attr]
    assert {r.next_attempt_at for r in _outbox(db, f"campaign:{cid}")} == {at}
    assert refresh_all(session_factory, now=at + timedelta(days=1)) == {
        "campaigns": 1,
        "converted": 0,
    }
    # Once the window has closed and been counted, the campaign is left alone.
    assert refresh_all(session_factory, now=at + timedelta(days=15)) == {
        "campaigns": 1,
        "converted": 0,
    }
    assert refresh_all(session_factory, now=at + timedelta(days=16)) == {
        "campaigns": 0,
        "converted": 0,
    }


def test_an_email_campaign_with_a_coupon_speaks_each_customers_language(
    db: Session, admin: Any
) -> None:
    from guanxi.customers.models import Customer
    from guanxi.loyalty.coupons import save_template
    from guanxi.loyalty.models import Coupon
    from guanxi.loyalty.schemas import CouponTemplateIn

    ids = bulk_customers(db, 2, region="浙江省")
    with write_transaction(db):
        db.get(Customer, ids[1]).language = "en"  # type: ignore[union-attr]
    save_template(
        db,
        template_in=CouponTemplateIn(
            code="fair5", name_zh="5元寄件券", name_en="5-yuan coupon", kind="amount_off",
            amount_off_fen=500, valid_days=30,
        ),
        actor=admin,
    )  # fmt: skip
    variants = [
        {
            "code": "A",
            "subject_zh": "{name}的专属券",
            "body_zh": "{name}您好，{company}送您{coupon_name}：{coupon_code}",
            "subject_en": "A coupon for {name}",
            "body_en": "Dear {name}, {company} sends you a {coupon_name}: {coupon_code}",
        }
    ]
    cid = _create(
        db, admin, make_audience(db, admin), control_pct=0, channel="email",
        variants=variants, coupon_template="fair5", target_url="",
    )  # fmt: skip
    result = launch(db, campaign_id=cid, now=NOW)
    assert result.queued == 2
    codes = dict(
        db.execute(
            select(Coupon.customer_id, Coupon.code).where(Coupon.source_key == f"campaign:{cid}")
        ).all()
    )
    assert sorted(codes) == ids
    rows = {r.customer_id: r for r in _outbox(db, f"campaign:{cid}")}
    zh, en = rows[ids[0]], rows[ids[1]]
    assert (zh.channel, zh.template, zh.params) == ("email", None, None)
    assert zh.subject == "客户0的专属券"
    assert zh.body == f"客户0您好，关系速递送您5元寄件券：{codes[ids[0]]}"
    assert en.subject == "A coupon for 客户1"
    assert en.body == f"Dear 客户1, Guanxi Express sends you a 5-yuan coupon: {codes[ids[1]]}"
    # Launched again after a crash, nothing more is issued or queued.
    with write_transaction(db):
        db.get(Campaign, cid).status = "launching"  # type: ignore[union-attr]
    assert launch(db, campaign_id=cid, now=NOW).queued == 0
    assert db.scalar(select(func.count()).where(Coupon.source_key == f"campaign:{cid}")) == 2


def test_edits_before_launch_only_and_with_the_version_read(db: Session, admin: Any) -> None:
    bulk_customers(db, 3, region="浙江省")
    audience = make_audience(db, admin)
    cid = _create(db, admin, audience)
    from guanxi.campaigns.schemas import CampaignUpdate

    edit = CampaignUpdate.model_validate({**campaign_body(audience, name="改名"), "version": 1})
    campaign = service.update_campaign(db, campaign_id=cid, campaign_in=edit, actor=admin)
    assert (campaign.name, campaign.version) == ("改名", 2)
    with pytest.raises(Conflict):  # stale version
        service.update_campaign(db, campaign_id=cid, campaign_in=edit, actor=admin)
    launch(db, campaign_id=cid, now=NOW)
    fresh = CampaignUpdate.model_validate({**campaign_body(audience), "version": 3})
    with pytest.raises(Conflict) as refused:
        service.update_campaign(db, campaign_id=cid, campaign_in=fresh, actor=admin)
    assert refused.value.message == "campaign_not_editable"
    entry = db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "campaign.changed", AuditEntry.target_id == str(cid)
        )
    )
    assert entry is not None
    assert (entry.before, entry.after) == ({"name": "双十二寄件优惠"}, {"name": "改名"})


def test_a_launch_halts_at_the_next_chunk_once_stopped(
    db: Session, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    bulk_customers(db, 120, region="浙江省")
    cid = _create(db, admin, make_audience(db, admin), control_pct=0)
    monkeypatch.setattr(launching, "CHUNK", 50)
    real = launching.queue_bulk

    def stopped_meanwhile(session: Session, *args: Any, **kwargs: Any) -> int:
        added = real(session, *args, **kwargs)
        # Someone stops the campaign while the first chunk is being queued.
        session.execute(update(Campaign).where(Campaign.id == cid).values(status="stopped"))
        return added

    monkeypatch.setattr(launching, "queue_bulk", stopped_meanwhile)
    result = launch(db, campaign_id=cid, now=NOW)
    assert (result.status, result.recipients, result.queued) == ("stopped", 120, 50)
    assert len(_outbox(db, f"campaign:{cid}")) == 50
    db.expire_all()
    campaign = db.get(Campaign, cid)
    assert campaign is not None
    assert (campaign.status, campaign.queued, campaign.finished_at) == ("stopped", 50, None)
