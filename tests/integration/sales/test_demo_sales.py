"""The demo's sales pipeline: a team, opportunities spread over stages, owners and months,
won and lost ones (with reasons), pool leads and web leads; loading twice changes nothing."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from guanxi.core.db import make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.sales import SalesDemo, seed_sales
from guanxi.sales.models import Opportunity, SalesTeam, StageChange


def test_demo_sales(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=400, seed=3, owner_ids=owners, duplicate_rate=0.0)
    with sm() as session:
        first = seed_sales(session, seed=3)
        again = seed_sales(session, seed=3)
        assert again == first
        # 40 of enterprise customers (3 left in the pool) and 3 web leads (unowned too).
        assert first == SalesDemo(opportunities=43, won=11, lost=9, pool=6, web_leads=3)
        stages = set(session.scalars(select(Opportunity.stage)))
        assert stages == {"lead", "qualified", "proposal", "negotiation", "won", "lost"}
        owners_used = set(session.scalars(select(Opportunity.owner_id)))
        assert len(owners_used - {None}) == 4
        months = {
            o.strftime("%Y-%m")
            for o in session.scalars(select(Opportunity.expected_close))
            if o is not None
        }
        assert len(months) >= 5
        assert all(
            r is not None
            for r in session.scalars(
                select(Opportunity.lost_reason).where(Opportunity.stage == "lost")
            )
        )
        assert session.scalar(select(func.count()).select_from(SalesTeam)) == 1
        moves = session.scalar(select(func.count()).select_from(StageChange))
        assert moves is not None
        assert moves > first.opportunities
