"""The demo's customer care: the example rules switched on, consents recorded, three weeks
of daily runs; loading twice changes nothing."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from guanxi.care.models import CareRule, CareRun
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.customers.models import CustomerConsent
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.care import HISTORY_DAYS, seed_care
from guanxi.demo.generator import generate
from guanxi.notify.models import OutboxMessage
from tests.integration.care.conftest import local


def test_demo_care(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=400, seed=3, owner_ids=owners, duplicate_rate=0.0)
    # Three weeks ending the day before 2 October 2026: National Day falls inside.
    with clock.frozen(local(2026, 10, 2, 12)), sm() as session:
        first = seed_care(session, seed=3)
        again = seed_care(session, seed=3)
        on = {
            (r.kind, r.festivals)
            for r in session.scalars(select(CareRule).where(CareRule.enabled.is_(True)))
        }
        days = set(session.scalars(select(CareRun.run_date)))
        national = session.scalar(
            select(func.sum(CareRun.queued)).where(CareRun.occasion_date == date(2026, 10, 1))
        )
        consents = session.scalar(select(func.count()).select_from(CustomerConsent))
        queued = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.source.startswith("care:"))
        )
    assert first.rules_on == 6
    assert on == {
        ("birthday", "[]"),
        ("festival", '["spring_festival"]'),
        ("festival", '["mid_autumn"]'),
        ("festival", '["national_day"]'),
        ("winback", "[]"),
        ("complaint_thanks", "[]"),
    }
    assert len(days) == HISTORY_DAYS
    # Most of the 400 customers consented and have a mobile or an address: greeted.
    assert national is not None
    assert 200 < national <= 400
    assert first.queued == queued
    assert consents == first.consents
    assert (again.rules_on, again.consents, again.runs, again.queued) == (0, 0, 0, 0)
