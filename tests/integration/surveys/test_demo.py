"""The demo's surveys: raised from the demo history (CSAT answers are the tickets' scores),
a planted driver and campaign, follow-ups for the newest detractors; loading twice adds
nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, select

from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.history import History, load_staff
from guanxi.demo.surveys import CAMPAIGN, seed_surveys
from guanxi.surveys import analysis, results
from guanxi.surveys.models import SurveyInvitation, SurveyResponse, SurveyTemplate
from guanxi.surveys.policy import load_policy
from guanxi.tickets.models import Ticket

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


def test_demo_surveys(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
        history = History(load_staff(session), timezone=TZ)
    generate(committed_engine, customers=1500, seed=4, owner_ids=owners, now=NOW, history=history)
    history.write(committed_engine)
    with sm() as session, clock.frozen(NOW):
        written = seed_surveys(session, seed=4, now=NOW)
        assert written > 300
        assert seed_surveys(session, seed=4, now=NOW) == 0  # once
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == written
        # Every answer to a ticket's survey is that ticket's satisfaction score.
        pairs = session.execute(
            select(SurveyResponse.csat, Ticket.satisfaction).join(
                Ticket, Ticket.id == SurveyResponse.ticket_id
            )
        ).all()
        assert pairs
        assert all(csat == score for csat, score in pairs)
        # Each answered invitation has its one response; the rest stayed open.
        answered = session.scalar(select(func.count()).where(SurveyInvitation.status == "answered"))
        linked = session.scalar(
            select(func.count()).where(SurveyResponse.invitation_id.is_not(None))
        )
        assert answered == linked
        year = results.Filters(date(2025, 11, 21), date(2026, 11, 20))
        sent, got = results.response_rate(session, year, TZ)
        assert 0.25 < got / sent < 0.6
        # Timeliness drives satisfaction (planted), in the after-ticket survey's five.
        tid = session.scalar(select(SurveyTemplate.id).where(SurveyTemplate.code == "after_ticket"))
        drivers = analysis.drivers(
            session, results.Filters(year.start, year.end, template_id=tid), TZ
        )
        assert drivers.drivers[0].dimension == "timeliness"
        # The campaign is a named date; delivery CSAT is higher after it.
        [milestone] = [m for m in load_policy(session).milestones if m.name == CAMPAIGN]
        assert milestone.on == date(2026, 7, 23)
        shift = analysis.compare(
            session, results.Filters(milestone.on, milestone.on, trigger="delivery"), TZ,
            at=milestone.on, days=120,
        )  # fmt: skip
        assert shift.after.csat_mean is not None
        assert shift.before.csat_mean is not None
        assert shift.after.csat_mean > shift.before.csat_mean + 0.5
        # Follow-up tickets only for the newest detractors, each opened once.
        opened = list(
            session.scalars(select(SurveyResponse).where(SurveyResponse.follow_up == "opened"))
        )
        assert opened
        assert all(r.submitted_at >= NOW - timedelta(days=30) for r in opened)
        assert all(r.follow_up_ticket_id is not None for r in opened)
        assert (
            session.scalar(select(func.count()).where(SurveyResponse.follow_up == "pending")) == 0
        )
