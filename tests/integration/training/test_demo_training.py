"""The demo's year of training: monthly courses per team, a quarterly assessment and the
annual culture course, attendance recorded for what already happened, once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.demo.training import seed_training
from guanxi.security.models import User
from guanxi.tickets.teams import save_team, set_member
from guanxi.training.models import TrainingCourse, TrainingRecord


def test_a_year_of_plans_with_the_past_recorded(db: Session) -> None:
    users = [
        User(username=name, display_name=name, role=role, password_hash="!", is_active=True)
        for name, role in (("manager", "manager"), ("agent", "agent"), ("agent2", "agent"))
    ]
    db.add_all(users)
    db.commit()
    manager, a, b = users
    team = save_team(db, actor=manager, code="hotline", name="热线客服组")
    set_member(db, actor=manager, team_id=team.id, user_id=a.id)
    set_member(db, actor=manager, team_id=team.id, user_id=b.id)
    today = datetime(2026, 11, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    with clock.frozen(today):
        # December 2025 to November 2026: 12 monthly courses, the quarterly assessments of
        # January, April, July and October, the annual courses of 2025 and 2026.
        assert seed_training(db, seed=7, months=12) == 18
        assert seed_training(db, seed=7, months=12) == 0  # once
    courses = db.scalars(select(TrainingCourse).order_by(TrainingCourse.planned_on)).all()
    assert [c.plan_period for c in courses].count("month") == 12
    assert [c.plan_period for c in courses].count("quarter") == 4
    assert [c.plan_period for c in courses].count("year") == 2
    assert (courses[0].planned_on, courses[-1].planned_on) == (
        date(2025, 12, 8),
        date(2026, 11, 16),
    )
    assert all(c.planned_on.weekday() < 5 for c in courses)
    records = db.scalars(select(TrainingRecord)).all()
    # Everything up to today is recorded for both agents; 16 November is still ahead.
    recorded = {r.course_id for r in records}
    assert [c.planned_on for c in courses if c.id not in recorded] == [date(2026, 11, 16)]
    assert len(records) == 17 * 2
    assert {r.user_id for r in records} == {a.id, b.id}
    for r in records:
        assert (r.score is not None) == r.attended
        assert r.score is None or 55 <= r.score <= 100
    assert 0 < sum(r.attended for r in records) < len(records)
    actions = dict(
        db.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.action.like("training.%"))
            .group_by(AuditEntry.action)
        ).all()
    )
    assert actions == {"training.course_created": 18, "training.recorded": 34}
