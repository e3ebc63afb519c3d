"""The demo's data-subject requests: one in every state, with their audit trails."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.privacy import seed_privacy
from guanxi.privacy.models import PrivacyRequest

# A Wednesday with no holiday within the demo's five weeks.
NOW = datetime(2026, 6, 24, 3, 0, tzinfo=UTC)


def test_demo_requests_in_every_state(db: Session, make_customer: Any) -> None:
    ensure_demo_users(db)
    for i in range(8):
        make_customer(f"演示客户{i}")
    db.commit()
    with clock.frozen(NOW):
        outcome = seed_privacy(db, seed=3)
    assert (outcome.requests, outcome.open, outcome.overdue) == (6, 3, 1)
    rows = db.scalars(select(PrivacyRequest).order_by(PrivacyRequest.id)).all()
    assert Counter((r.kind, r.status) for r in rows) == Counter(
        {
            ("deletion", "in_progress"): 1,
            ("access", "in_progress"): 1,
            ("copy", "completed"): 1,
            ("correction", "completed"): 1,
            ("objection", "rejected"): 1,
            ("access", "received"): 1,
        }
    )
    assert [r.corrected_fields for r in rows if r.kind == "correction"] == ['["region"]']
    assert sum(r.exported_at is not None for r in rows) == 1
    trail = db.scalar(select(func.count()).where(AuditEntry.target_type == "privacy_request"))
    # 6 registered, 3 taken on, 1 export, 1 correction, 2 completed, 1 rejected.
    assert trail == 14
