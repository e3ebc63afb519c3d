"""Audience filters on both databases: each filter alone selects exactly the customers
planted for it, filters AND together, archived customers never belong, and the count,
the id select and the sample agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.analytics.models import (
    AnalyticsRun,
    AnalyticsStep,
    CustomerChurn,
    CustomerClass,
    CustomerClv,
)
from guanxi.campaigns.audiences import count_members, member_ids, sample_members
from guanxi.campaigns.schemas import AudienceDefinition
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, record_consent
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.service import set_status
from guanxi.loyalty.models import LoyaltyMember
from guanxi.security.service import actor_of
from guanxi.shipments.models import Shipment

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


@dataclass
class World:
    """The planted customers (d is archived and would match nearly every filter) and the
    two salespeople owning a and b."""

    a: int
    b: int
    c: int
    d: int
    e: int
    s1: int
    s2: int


def _run(db: Session, step: str, rows: list[Any]) -> None:
    """A succeeded analytics run of ``step`` with its result rows."""
    run = AnalyticsRun(as_of=NOW - timedelta(days=1), status="succeeded")
    db.add(run)
    db.flush()
    db.add(AnalyticsStep(run_id=run.id, step=step, status="succeeded"))
    for row in rows:
        row.run_id = run.id
        db.add(row)


def _class(customer_id: int, segment: str, relationship: str, tier: str) -> CustomerClass:
    return CustomerClass(
        customer_id=customer_id,
        segment=segment,
        relationship=relationship,
        value_tier=tier,
        frequency_class=tier,
    )


def _clv(customer_id: int, fen: int) -> CustomerClv:
    return CustomerClv(
        customer_id=customer_id,
        frequency=1.0,
        recency=1.0,
        age=1.0,
        p_alive=0.9,
        expected_purchases=1.0,
        expected_spend_fen=fen,
        clv_fen=fen,
    )


def _churn(customer_id: int, band: str) -> CustomerChurn:
    return CustomerChurn(customer_id=customer_id, risk=0.5, band=band)


def _ship(db: Session, customer_id: int, days_ago: int, n: int) -> None:
    db.add(
        Shipment(
            waybill_no=f"AUD{customer_id:06d}{n:04d}",
            customer_id=customer_id,
            service_type="standard",
            status="delivered",
            fee_fen=1000,
            created_at=NOW - timedelta(days=days_ago),
        )
    )


def _member(db: Session, customer_id: int, tier: str, balance: int) -> None:
    db.add(
        LoyaltyMember(
            customer_id=customer_id,
            tier=tier,
            tier_since=NOW,
            joined_at=NOW,
            balance=balance,
            lifetime_points=balance,
        )
    )


@pytest.fixture
def world(db: Session, make_customer: Any, make_user: Any) -> World:
    s1, s2 = make_user("sales"), make_user("sales")
    admin = make_user("admin")
    a = make_customer(
        "甲一",
        source="wechat",
        industry="电商",
        lifecycle_stage="active",
        language="en",
        region="浙江省",
        tags=["VIP"],
        owner_id=s1.id,
        phones=["13912345671"],
    )
    b = make_customer(
        "乙二公司",
        kind="enterprise",
        source="website",
        industry="制造",
        lifecycle_stage="prospect",
        region="江苏省",
        tags=["月结"],
        owner_id=s2.id,
    )
    c = make_customer(
        "丙三局",
        kind="government",
        source="referral",
        lifecycle_stage="dormant",
        language="zh_CN",
        region="浙江省",
        tags=["VIP", "黑名单"],
    )
    d = make_customer(
        "丁四",
        source="wechat",
        industry="电商",
        lifecycle_stage="active",
        language="en",
        region="浙江省",
        tags=["VIP"],
        owner_id=s1.id,
    )
    e = make_customer("戊五")
    with write_transaction(db):
        _run(
            db,
            "rfm",
            [
                _class(a.id, "champions", "loyal", "high"),
                _class(b.id, "lost", "at_risk", "low"),
                _class(c.id, "prospect", "potential", "medium"),
                _class(d.id, "champions", "loyal", "high"),
            ],
        )
        _run(db, "clv", [_clv(a.id, 500_000), _clv(b.id, 10_000), _clv(d.id, 500_000)])
        # An older churn run says otherwise: only the newest counts.
        _run(db, "churn", [_churn(a.id, "high"), _churn(b.id, "low")])
        _run(db, "churn", [_churn(a.id, "low"), _churn(b.id, "high"), _churn(c.id, "medium")])
        _ship(db, a.id, 5, 1)
        _ship(db, a.id, 400, 2)
        _ship(db, b.id, 100, 1)
        _ship(db, b.id, 150, 2)
        _ship(db, d.id, 1, 1)
        _member(db, a.id, "gold", 1200)
        _member(db, b.id, "member", 50)
        _member(db, d.id, "gold", 5000)
        actor = actor_of(admin)
        for customer_id, purpose, granted in (
            (a.id, Purpose.marketing_sms, True),
            (b.id, Purpose.marketing_sms, True),
            (b.id, Purpose.marketing_email, True),
            (c.id, Purpose.survey, False),
            (d.id, Purpose.marketing_sms, True),
            (d.id, Purpose.marketing_email, True),
        ):
            record_consent(
                db,
                customer_id=customer_id,
                purpose=purpose,
                granted=granted,
                source="agent",
                actor=actor,
            )
    set_status(db, customer_id=d.id, status=CustomerStatus.archived, actor=admin)
    return World(a.id, b.id, c.id, d.id, e.id, s1.id, s2.id)


def _members(db: Session, **filters: Any) -> list[int]:
    """The audience's ids (sorted) — checked against its count first."""
    definition = AudienceDefinition.model_validate(filters)
    with clock.frozen(NOW):
        ids = sorted(db.scalars(member_ids(db, definition)))
        assert count_members(db, definition) == len(ids)
    return ids


def test_each_filter_alone_selects_exactly_its_customers(db: Session, world: World) -> None:
    w = world
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({}, [w.a, w.b, w.c, w.e]),
        ({"kinds": ["enterprise"]}, [w.b]),
        ({"kinds": ["individual"]}, [w.a, w.e]),
        ({"kinds": ["enterprise", "government"]}, [w.b, w.c]),
        ({"sources": ["wechat"]}, [w.a]),
        ({"industries": ["制造"]}, [w.b]),
        ({"lifecycle_stages": ["dormant"]}, [w.c]),
        ({"languages": ["en"]}, [w.a]),
        # No language recorded: the site's default (zh_CN).
        ({"languages": ["zh_CN"]}, [w.b, w.c, w.e]),
        ({"regions": ["浙江省"]}, [w.a, w.c]),
        ({"tags_any": ["VIP"]}, [w.a, w.c]),
        ({"tags_any": ["VIP", "月结"]}, [w.a, w.b, w.c]),
        ({"tags_none": ["黑名单"]}, [w.a, w.b, w.e]),
        ({"segments": ["champions"]}, [w.a]),
        ({"segments": ["prospect"]}, [w.c]),
        ({"relationships": ["at_risk"]}, [w.b]),
        ({"value_tiers": ["high"]}, [w.a]),
        ({"frequency_classes": ["medium"]}, [w.c]),
        ({"clv_min_fen": 100_000}, [w.a]),
        ({"clv_max_fen": 10_000}, [w.b]),
        ({"clv_min_fen": 10_000, "clv_max_fen": 10_000}, [w.b]),
        ({"churn_bands": ["high"]}, [w.b]),
        ({"churn_bands": ["medium", "low"]}, [w.a, w.c]),
        ({"shipped_within_days": 30}, [w.a]),
        ({"shipped_within_days": 120}, [w.a, w.b]),
        ({"no_shipment_for_days": 30}, [w.b]),
        ({"no_shipment_for_days": 120}, []),
        ({"points_min": 100}, [w.a]),
        ({"points_max": 100}, [w.b]),
        ({"points_min": 50, "points_max": 1200}, [w.a, w.b]),
        ({"tiers": ["gold"]}, [w.a]),
        ({"tiers": ["member", "gold"]}, [w.a, w.b]),
        ({"consents": ["marketing_sms"]}, [w.a, w.b]),
        ({"consents": ["marketing_sms", "marketing_email"]}, [w.b]),
        # Surveys are allowed unless withdrawn.
        ({"consents": ["survey"]}, [w.a, w.b, w.e]),
        ({"unowned": True}, [w.c, w.e]),
        ({"owner_ids": [w.s1]}, [w.a]),
        ({"unowned": True, "owner_ids": [w.s2]}, [w.b, w.c, w.e]),
    ]
    for filters, expected in cases:
        assert _members(db, **filters) == sorted(expected), filters


def test_filters_and_together(db: Session, world: World) -> None:
    w = world
    assert _members(db, regions=["浙江省"], tags_any=["VIP"], kinds=["individual"]) == [w.a]
    assert _members(db, regions=["浙江省"], tags_none=["黑名单"]) == [w.a]
    assert _members(db, consents=["marketing_sms"], churn_bands=["high"]) == [w.b]
    assert _members(db, shipped_within_days=200, no_shipment_for_days=30) == [w.b]
    assert _members(db, tiers=["gold"], segments=["lost"]) == []
    assert _members(
        db,
        kinds=["individual"],
        regions=["浙江省"],
        segments=["champions"],
        tiers=["gold"],
        consents=["marketing_sms"],
        clv_min_fen=1,
        shipped_within_days=10,
    ) == [w.a]


def test_analytics_filters_read_the_newest_run_and_match_nobody_before_one(
    db: Session, make_customer: Any
) -> None:
    x = make_customer("己六")
    # No run of any step yet.
    assert _members(db, segments=["champions"]) == []
    assert _members(db, clv_min_fen=0) == []
    assert _members(db, churn_bands=["high", "medium", "low"]) == []
    with write_transaction(db):
        _run(db, "churn", [_churn(x.id, "high")])
    with write_transaction(db):
        _run(db, "churn", [_churn(x.id, "low")])
    assert _members(db, churn_bands=["high"]) == []
    assert _members(db, churn_bands=["low"]) == [x.id]


def test_the_sample_is_masked_and_newest_first(db: Session, world: World) -> None:
    with clock.frozen(NOW):
        sample = sample_members(db, AudienceDefinition(regions=["浙江省"]))
    assert [(m.id, m.name, m.kind, m.region, m.phone) for m in sample] == [
        (world.c, "丙**", "government", "浙江省", None),
        (world.a, "甲*", "individual", "浙江省", "****5671"),
    ]
