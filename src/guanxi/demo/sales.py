"""Demo sales pipeline (销售机会): the 华东大客户组 team (the supervisor managing three account
managers; the fourth works alone), some forty opportunities of enterprise customers spread
over the stages, owners and the coming months, some won and some lost with their reasons,
a few leads in the pool and a few requests from the public web form - so the board, the
forecast and its conversion figures show something real.

Everything goes through the services (audited, with stage history): each opportunity is
entered and moved with the clock set to the day it happened, so the velocity figures have
weeks between steps. Idempotent: a second call changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.customers.enums import CustomerKind
from guanxi.customers.models import Customer
from guanxi.sales import leads, service, teams
from guanxi.sales.enums import Stage
from guanxi.sales.models import Opportunity, SalesTeam
from guanxi.sales.schemas import OpportunityCreate, StageMove, TeamIn, WebLeadIn
from guanxi.security.models import User

TEAM = "华东大客户组"
OPPORTUNITIES = 40
# The path an opportunity walks; it stops at a random open stage or closes.
PATH = (Stage.qualified, Stage.proposal, Stage.negotiation)
LOST_REASONS = ("price", "competitor", "service_area", "timing", "no_budget")
TOPICS = (
    "月结寄件合作",
    "电商仓配一体化",
    "冷链运输年框",
    "同城急送",
    "大件物流方案",
    "跨境小包",
    "季节性促销运力",
)
WEB_LEADS = (
    ("陈女士", "温州鞋业有限公司", "13957712345", "每月约 3000 票，想了解月结价格"),
    ("刘先生", "义乌小商品贸易商行", "13867954321", "需要国际小包和海外仓"),
    ("黄经理", "苏州精密模具有限公司", "13962188765", "大件设备运输，偶尔需要上门取件"),
)


@dataclass(frozen=True)
class SalesDemo:
    """What the demo seeding did."""

    opportunities: int
    won: int
    lost: int
    pool: int
    web_leads: int


def _counts(session: Session) -> SalesDemo:
    def n(*where: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(Opportunity).where(*where)
        return int(session.scalar(stmt) or 0)

    return SalesDemo(
        opportunities=n(),
        won=n(Opportunity.stage == Stage.won.value),
        lost=n(Opportunity.stage == Stage.lost.value),
        pool=n(Opportunity.owner_id.is_(None)),
        web_leads=n(Opportunity.source == "web_form"),
    )


def seed_sales(session: Session, *, seed: int = 42) -> SalesDemo:
    """Set up the team and the pipeline (once)."""
    if session.scalar(select(SalesTeam.id).where(SalesTeam.name == TEAM)) is not None:
        return _counts(session)
    users = {u.username: u for u in session.scalars(select(User))}
    manager, admin = users.get("manager"), users.get("admin")
    sellers = [users[name] for name in ("sales", "sales2", "sales3", "sales4") if name in users]
    if manager is None or admin is None or not sellers:
        return _counts(session)
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    teams.save_team(
        session,
        team_in=TeamIn(name=TEAM, manager_id=manager.id, member_ids=[u.id for u in sellers[:3]]),
        actor=admin,
    )
    enterprises = list(
        session.scalars(
            select(Customer)
            .where(Customer.kind == CustomerKind.enterprise.value)
            .order_by(Customer.id)
            .limit(OPPORTUNITIES * 2)
        )
    )
    now = clock.now()
    today = now.date()
    for n in range(min(OPPORTUNITIES, len(enterprises))):
        customer = enterprises[n]
        owner = sellers[n % len(sellers)]
        pooled = n % 13 == 5
        started = now - timedelta(days=rng.randint(20, 120))
        with clock.frozen(started):
            opp = service.create_opportunity(
                session,
                opportunity_in=OpportunityCreate(
                    customer_id=customer.id,
                    title=f"{customer.name} · {rng.choice(TOPICS)}",
                    expected_revenue=rng.randint(50, 5000) * 10_000,
                    expected_close=today + timedelta(days=rng.randint(-20, 180)),
                    next_step=rng.choice(
                        ("上门拜访", "发送报价单", "试运行一周", "约见采购负责人")
                    ),
                    next_step_due=today + timedelta(days=rng.randint(1, 21)),
                    unowned=pooled,
                ),
                actor=manager if pooled else owner,
            )
        if pooled:
            continue
        moment = started
        # A third of the deals get past the negotiation (decided), the rest stop on the way.
        steps = rng.randint(0, len(PATH) + 2)
        for stage in PATH[: min(steps, len(PATH))]:
            moment += timedelta(days=rng.randint(3, 20))
            with clock.frozen(min(moment, now)):
                opp = service.move_stage(
                    session,
                    opportunity_id=opp.id,
                    move=StageMove(stage=stage, version=opp.version),
                    actor=owner,
                )
        # Past the negotiation: won or lost; stopped earlier, now and then lost there.
        if steps > len(PATH) or rng.random() < 0.25:
            moment += timedelta(days=rng.randint(3, 15))
            won = steps > len(PATH) and rng.random() < 0.55
            with clock.frozen(min(moment, now)):
                service.move_stage(
                    session,
                    opportunity_id=opp.id,
                    move=StageMove(
                        stage=Stage.won if won else Stage.lost,
                        version=opp.version,
                        lost_reason=None if won else rng.choice(LOST_REASONS),
                    ),
                    actor=owner,
                )
    for name, company, phone, message in WEB_LEADS:
        leads.submit_web_lead(
            session,
            lead_in=WebLeadIn(name=name, company=company, phone=phone, message=message),
        )
    return _counts(session)
