"""default ticket category tree

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:30:00

The operating manuals' classification (REQUIREMENTS.md §4: delay, damage, loss, service
attitude, price, delivery, product quality, other) with the sub-categories an express
company's desk uses; administrators change the tree afterwards in the app.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (code, parent code, 中文, English, skill)
TREE = [
    ("delay", None, "延误", "Delay", "logistics"),
    ("delay.transit", "delay", "运输延误", "Delayed in transit", "logistics"),
    ("delay.delivery", "delay", "派送延误", "Late delivery", "logistics"),
    ("damage", None, "破损", "Damage", "claims"),
    ("damage.package", "damage", "外包装破损", "Damaged packaging", "claims"),
    ("damage.contents", "damage", "内件损坏", "Damaged contents", "claims"),
    ("loss", None, "丢失", "Loss", "claims"),
    ("loss.whole", "loss", "整件丢失", "Whole parcel lost", "claims"),
    ("loss.partial", "loss", "内件短少", "Contents missing", "claims"),
    ("delivery", None, "派送", "Delivery", "logistics"),
    ("delivery.wrong", "delivery", "错派误投", "Delivered to the wrong address", "logistics"),
    ("delivery.fake_sign", "delivery", "虚假签收", "Signed for but not received", "logistics"),
    ("delivery.not_to_door", "delivery", "未送货上门", "Not delivered to the door", "logistics"),
    ("pickup", None, "揽收", "Pickup", "logistics"),
    ("pickup.missed", "pickup", "未按时揽收", "Pickup missed or late", "logistics"),
    ("service_attitude", None, "服务态度", "Service attitude", "service"),
    ("price", None, "价格", "Price", "billing"),
    ("price.overcharge", "price", "多收运费", "Overcharged", "billing"),
    ("product_quality", None, "产品质量", "Product quality", "service"),
    ("other", None, "其他", "Other", None),
]


def upgrade() -> None:
    """Insert the default tree, parents first."""
    table = sa.table(
        "ticket_category",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("parent_id", sa.Integer),
        sa.column("name_zh", sa.String),
        sa.column("name_en", sa.String),
        sa.column("skill", sa.String),
        sa.column("position", sa.Integer),
        sa.column("active", sa.Boolean),
    )
    bind = op.get_bind()
    ids: dict[str, int] = {}
    for position, (code, parent, zh, en, skill) in enumerate(TREE):
        bind.execute(
            table.insert().values(
                code=code,
                parent_id=ids[parent] if parent else None,
                name_zh=zh,
                name_en=en,
                skill=skill,
                position=position,
                active=True,
            )
        )
        ids[code] = bind.execute(sa.select(table.c.id).where(table.c.code == code)).scalar_one()


def downgrade() -> None:
    """Remove the default tree (children first)."""
    for code, *_ in reversed(TREE):
        op.execute(sa.text("DELETE FROM ticket_category WHERE code = :c").bindparams(c=code))
