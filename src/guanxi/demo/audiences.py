"""Demo saved audiences (目标客群): the groups a marketing team keeps at hand — valuable
customers at risk of leaving, dormant members in the Yangtze delta, customers nobody owns
yet, monthly-settlement and e-commerce customers who read e-mail — and one archived list, so the
audiences page shows live counts over the demo's customers, analytics and members.

Saved through the service (audited) by the demo administrator. Idempotent: a second call
changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.campaigns import audiences
from guanxi.campaigns.models import Audience
from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn
from guanxi.security.models import User

# (name, description, definition, archived)
DEMO_AUDIENCES: list[tuple[str, str, AudienceDefinition, bool]] = [
    (
        "高价值流失风险客户",
        "高价值、流失风险高、同意短信营销的客户：挽回活动的首选",
        AudienceDefinition(value_tiers=["high"], churn_bands=["high"], consents=["marketing_sms"]),
        False,
    ),
    (
        "长三角沉睡会员",
        "上海、江苏、浙江的银卡及以上会员，90 天以上没有寄件",
        AudienceDefinition(
            regions=["上海市", "江苏省", "浙江省"],
            tiers=["silver", "gold", "diamond"],
            no_shipment_for_days=90,
        ),
        False,
    ),
    (
        "公海客户",
        "还没有负责人、同意短信营销的客户：销售认领前的培育对象",
        AudienceDefinition(unowned=True, consents=["marketing_sms"]),
        False,
    ),
    (
        "月结及电商大客户（邮件）",
        "带“月结客户”或“电商大客户”标签、终身价值 200 元以上、同意邮件营销",
        AudienceDefinition(
            tags_any=["月结客户", "电商大客户"], clv_min_fen=20_000, consents=["marketing_email"]
        ),
        False,
    ),
    (
        "去年双十一名单",
        "去年双十一活动用过的名单，已归档",
        AudienceDefinition(shipped_within_days=30, segments=["champions", "loyal"]),
        True,
    ),
]


def seed_audiences(session: Session) -> int:
    """Save the demo audiences (once); how many were saved."""
    admin = session.scalar(select(User).where(User.username == "admin"))
    names = [name for name, _, _, _ in DEMO_AUDIENCES]
    if admin is None or session.scalar(select(Audience.id).where(Audience.name.in_(names))):
        session.commit()
        return 0
    for name, description, definition, archived in DEMO_AUDIENCES:
        audience = audiences.save_audience(
            session,
            audience_in=AudienceIn(name=name, description=description, definition=definition),
            actor=admin,
        )
        if archived:
            audiences.set_archived(session, audience_id=audience.id, archived=True, actor=admin)
    return len(DEMO_AUDIENCES)
