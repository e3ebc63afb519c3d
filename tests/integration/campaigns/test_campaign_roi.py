"""ROI on a planted effect, on both databases: the demo generator's planting (an exact
share of treated and control recipients convert, each shipment worth a known fee) gives
a campaign a known per-capita uplift; the report must find it within its interval, and a
campaign with no effect must have an interval containing 0. Conversions count only
shipments inside the attribution window; satisfaction before and after reads surveys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from guanxi.campaigns import roi, service
from guanxi.campaigns.launch import launch
from guanxi.campaigns.schemas import CampaignIn, CostIn
from guanxi.campaigns.tracking import refresh_conversions
from guanxi.core.db import write_transaction
from guanxi.demo.campaigns import plant_conversions
from guanxi.shipments.models import Shipment
from tests.integration.campaigns.campaign_support import (
    bulk_customers,
    campaign_body,
    groups,
    make_audience,
    set_seed,
    sms_template,
)

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
FEE = 1500


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin")


def _launched(db: Session, admin: Any, count: int = 1000, control_pct: int = 30) -> int:
    bulk_customers(db, count, region="浙江省")
    sms_template(db, admin)
    audience = make_audience(db, admin)
    campaign = service.create_campaign(
        db,
        campaign_in=CampaignIn.model_validate(campaign_body(audience, control_pct=control_pct)),
        actor=admin,
    )
    set_seed(db, campaign.id, 2026)
    launch(db, campaign_id=campaign.id, now=START)
    return campaign.id


def test_the_report_finds_a_planted_uplift_within_its_interval(db: Session, admin: Any) -> None:
    cid = _launched(db, admin)
    service.add_cost(
        db, campaign_id=cid, cost_in=CostIn(label="短信费", amount_fen=50_000), actor=admin
    )
    planted = plant_conversions(
        db, campaign_id=cid, treated_rate=0.30, control_rate=0.10, fee_fen=FEE,
        at=START + timedelta(days=2),
    )  # fmt: skip
    split = groups(db, cid)
    n_t = sum(1 for g in split.values() if g != "control")
    n_c = len(split) - n_t
    k_t, k_c = round(0.30 * n_t), round(0.10 * n_c)
    assert planted == k_t + k_c
    assert refresh_conversions(db, campaign_id=cid, now=START + timedelta(days=20)) == k_t + k_c

    report = roi.report(db, campaign_id=cid)
    by = {g.group: g for g in report.groups}
    assert (by["A"].recipients, by["A"].converted, by["A"].revenue_fen) == (n_t, k_t, k_t * FEE)
    assert (by["control"].recipients, by["control"].converted) == (n_c, k_c)
    # The planted effect: (0.30 − 0.10) × 15 yuan per treated recipient, scaled to them.
    truth = (0.30 - 0.10) * FEE * n_t
    inc = report.incremental_revenue_fen
    assert inc is not None
    assert inc.low < truth < inc.high
    assert inc.low > 0  # clearly found, not only "not excluded"
    exact = (k_t * FEE / n_t - k_c * FEE / n_c) * n_t
    assert inc.estimate == pytest.approx(exact)
    assert report.net_fen is not None
    assert report.net_fen.estimate == pytest.approx(exact - 50_000)
    assert report.roi is not None
    assert report.roi.estimate == pytest.approx((exact - 50_000) / 50_000)
    uplift = report.conversion_uplift
    assert uplift is not None
    assert uplift.low < 0.20 < uplift.high
    assert uplift.estimate == pytest.approx(k_t / n_t - k_c / n_c)


def test_a_campaign_without_effect_has_an_interval_containing_zero(db: Session, admin: Any) -> None:
    cid = _launched(db, admin)
    plant_conversions(
        db, campaign_id=cid, treated_rate=0.15, control_rate=0.15, fee_fen=FEE,
        at=START + timedelta(days=1),
    )  # fmt: skip
    refresh_conversions(db, campaign_id=cid, now=START + timedelta(days=20))
    report = roi.report(db, campaign_id=cid)
    inc = report.incremental_revenue_fen
    assert inc is not None
    assert inc.low < 0 < inc.high
    uplift = report.conversion_uplift
    assert uplift is not None
    assert uplift.low < 0 < uplift.high


def test_only_shipments_in_the_attribution_window_convert(db: Session, admin: Any) -> None:
    cid = _launched(db, admin, count=20, control_pct=0)
    ids = sorted(groups(db, cid))
    with write_transaction(db):
        db.execute(
            insert(Shipment),
            [
                # Before the start, inside the 14 days, after them.
                {"waybill_no": "W-BEFORE", "customer_id": ids[0], "fee_fen": 700,
                 "created_at": START - timedelta(minutes=1)},
                {"waybill_no": "W-IN-1", "customer_id": ids[1], "fee_fen": 800,
                 "created_at": START},
                {"waybill_no": "W-IN-2", "customer_id": ids[1], "fee_fen": 900,
                 "created_at": START + timedelta(days=13)},
                {"waybill_no": "W-AFTER", "customer_id": ids[2], "fee_fen": 1000,
                 "created_at": START + timedelta(days=14)},
            ],
        )  # fmt: skip
    assert refresh_conversions(db, campaign_id=cid, now=START + timedelta(days=30)) == 1
    report = roi.report(db, campaign_id=cid)
    (treated,) = report.groups
    assert (treated.group, treated.converted, treated.revenue_fen) == ("A", 1, 1700)
    # No control group: nothing to compare against.
    assert report.incremental_revenue_fen is None
    assert report.roi is None


def test_satisfaction_before_and_after_reads_the_treated_customers_answers(
    db: Session, admin: Any
) -> None:
    from guanxi.surveys.models import SurveyResponse
    from guanxi.surveys.service import current_version
    from tests.integration.surveys.helpers import template

    cid = _launched(db, admin, count=12, control_pct=25)
    split = groups(db, cid)
    treated = sorted(c for c, g in split.items() if g != "control")
    control = sorted(c for c, g in split.items() if g == "control")
    tpl = template(db, "after_ticket")
    version = current_version(db, tpl.id)
    assert version is not None
    answers = [
        (treated[0], START - timedelta(days=100), 1),  # too early: not counted
        (treated[0], START - timedelta(days=30), 6),
        (treated[1], START - timedelta(days=1), 7),
        (treated[0], START + timedelta(days=3), 9),
        (treated[2], START + timedelta(days=13), 10),
        (treated[1], START + timedelta(days=14), 2),  # after the window
        (control[0], START + timedelta(days=2), 1),  # the control group is not asked here
    ]
    with write_transaction(db):
        for customer, at, csat in answers:
            db.add(
                SurveyResponse(
                    template_id=tpl.id, version_id=version.id, customer_id=customer,
                    trigger="ticket", channel="sms", language="zh_CN", follow_up="none",
                    submitted_at=at, csat=csat,
                )
            )  # fmt: skip
    report = roi.report(db, campaign_id=cid)
    assert report.satisfaction_before.model_dump() == {"responses": 2, "mean_csat": 6.5}
    assert report.satisfaction_after.model_dump() == {"responses": 2, "mean_csat": 9.5}
