"""The demo audiences on both databases: saved once through the service (audited), one
archived, each definition counted without error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.campaigns.audiences import count_members, definition_of, list_audiences
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, grant_many
from guanxi.demo.audiences import DEMO_AUDIENCES, seed_audiences


def test_the_demo_audiences_are_saved_once(db: Session, make_user: Any, make_customer: Any) -> None:
    make_user("admin", username="admin")
    pooled = make_customer("公海物流有限公司", kind="enterprise")
    make_customer("无同意客户")
    owned = make_customer("有主企业", kind="enterprise", owner_id=make_user("sales").id)
    with write_transaction(db):
        grant_many(
            db,
            [pooled.id, owned.id],
            [Purpose.marketing_sms],
            source="demo",
            at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    assert seed_audiences(db) == 5
    assert seed_audiences(db) == 0
    current = list_audiences(db)
    archived = list_audiences(db, archived=True)
    assert sorted(a.name for a in current) == sorted(n for n, _, _, a in DEMO_AUDIENCES if not a)
    assert [a.name for a in archived] == ["去年双十一名单"]
    counts = {a.name: count_members(db, definition_of(a)) for a in current}
    # No analytics run and no members in this database: only the pool counts, and in it
    # only the customer who accepts marketing SMS.
    assert counts == {
        "公海客户": 1,
        "长三角沉睡会员": 0,
        "月结及电商大客户（邮件）": 0,
        "高价值流失风险客户": 0,
    }
    assert list(
        db.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.target_type == "campaign_audience")
            .group_by(AuditEntry.action)
            .order_by(AuditEntry.action)
        )
    ) == [("campaign.audience_archived", 1), ("campaign.audience_created", 5)]
