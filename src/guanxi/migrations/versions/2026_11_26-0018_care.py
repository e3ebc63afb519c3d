"""customer-care rules and their runs

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 01:10:00

Tables of care automation (``care_rule``, ``care_run``, ``care_setting``) and a set of
example rules, all switched off, so an administrator starts from something: a birthday
greeting with a coupon, Spring Festival, Mid-Autumn and National Day greetings, the
membership anniversary, win-back of customers at high churn risk and thanks after a
complaint closes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIRTHDAY_ZH = (
    "{{ name }}，{{ company }}祝您生日快乐，万事如意！"
    "{% if coupon_code %}送上一张{{ coupon_name }}，券码 {{ coupon_code }}，"
    "寄件时出示即可使用。{% endif %}"
)
_BIRTHDAY_EN = (
    "Happy birthday, {{ name }}! Best wishes from {{ company }}."
    "{% if coupon_code %} Here is a {{ coupon_name }} for your next shipment: "
    "{{ coupon_code }}.{% endif %}"
)
_FESTIVAL_EN = (
    "Happy {{ festival }}, {{ name }}! Warm wishes to you and your family from {{ company }}."
)

# (name, kind, festivals, sms template, subject zh, body zh, subject en, body en,
#  lead days, coupon template, priority)
EXAMPLES = [
    (
        "生日祝福（附优惠券）",
        "birthday",
        [],
        "care_birthday",
        "{{ name }}，生日快乐！",
        _BIRTHDAY_ZH,
        "Happy birthday, {{ name }}!",
        _BIRTHDAY_EN,
        0,
        "birthday",
        80,
    ),
    (
        "春节问候",
        "festival",
        ["spring_festival"],
        "care_greeting",
        "{{ company }}恭祝您新春快乐",
        "{{ name }}，{{ company }}恭祝您{{ festival }}快乐，新春大吉，阖家幸福！"
        "春节期间部分线路时效或有延长，敬请谅解。",
        "Happy {{ festival }} from {{ company }}",
        _FESTIVAL_EN,
        0,
        None,
        60,
    ),
    (
        "中秋问候",
        "festival",
        ["mid_autumn"],
        "care_greeting",
        "{{ company }}祝您中秋快乐",
        "{{ name }}，{{ company }}祝您{{ festival }}快乐，花好月圆，阖家团圆！",
        "Happy {{ festival }} from {{ company }}",
        _FESTIVAL_EN,
        0,
        None,
        60,
    ),
    (
        "国庆问候",
        "festival",
        ["national_day"],
        "care_greeting",
        "{{ company }}祝您国庆快乐",
        "{{ name }}，{{ company }}祝您{{ festival }}快乐！假期寄件，我们照常为您服务。",
        "Happy {{ festival }} from {{ company }}",
        _FESTIVAL_EN,
        0,
        None,
        60,
    ),
    (
        "入会周年感谢",
        "anniversary",
        [],
        "care_greeting",
        "感谢您与{{ company }}相伴{{ years }}年",
        "{{ name }}，今天是您成为{{ company }}会员的第{{ years }}周年，感谢一路相伴！",
        "{{ years }} years with {{ company }}",
        "{{ name }}, today is your {{ years }}-year membership anniversary with {{ company }}. "
        "Thank you for shipping with us!",
        0,
        None,
        70,
    ),
    (
        "流失挽回",
        "winback",
        [],
        "care_winback",
        "{{ name }}，好久不见",
        "{{ name }}，好久不见！{{ company }}一直在您身边，寄件有任何需要，欢迎随时联系我们。",
        "We miss you, {{ name }}",
        "{{ name }}, it has been a while! {{ company }} is here whenever you need to ship.",
        0,
        None,
        40,
    ),
    (
        "投诉关闭后致谢",
        "complaint_thanks",
        [],
        "care_thanks",
        "感谢您的反馈",
        "{{ name }}，感谢您对{{ company }}服务的反馈，您反映的问题已处理完毕。"
        "我们会持续改进，如有任何问题请随时联系我们。",
        "Thank you for your feedback",
        "{{ name }}, thank you for telling {{ company }} about the problem; it has been "
        "resolved. We keep improving, and we are here if you need anything.",
        1,
        None,
        90,
    ),
]


def upgrade() -> None:
    """Create the care tables and insert the example rules (off)."""
    op.create_table(
        "care_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("festivals", sa.Text(), nullable=False),
        sa.Column("subject_zh", sa.String(length=200), nullable=False),
        sa.Column("body_zh", sa.Text(), nullable=False),
        sa.Column("subject_en", sa.String(length=200), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("sms_template", sa.String(length=40), nullable=True),
        sa.Column("send_time", sa.Time(), nullable=True),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("coupon_template", sa.String(length=40), nullable=True),
        sa.Column("winback_days", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_care_rule_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_rule")),
    )
    op.create_index("ix_care_rule_enabled_kind", "care_rule", ["enabled", "kind"], unique=False)
    op.create_table(
        "care_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_care_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_care_setting")),
    )
    op.create_table(
        "care_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("occasion_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("capped", sa.Integer(), nullable=False),
        sa.Column("no_consent", sa.Integer(), nullable=False),
        sa.Column("no_contact", sa.Integer(), nullable=False),
        sa.Column("outside_audience", sa.Integer(), nullable=False),
        sa.Column("started_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["care_rule.id"],
            name=op.f("fk_care_run_rule_id_care_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_run")),
        sa.UniqueConstraint("rule_id", "run_date", name="uq_care_run_rule_day"),
    )
    op.create_index("ix_care_run_run_date", "care_run", ["run_date"], unique=False)
    _insert_examples()


def _insert_examples() -> None:
    rule = sa.table(
        "care_rule",
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("channel", sa.String),
        sa.column("festivals", sa.Text),
        sa.column("subject_zh", sa.String),
        sa.column("body_zh", sa.Text),
        sa.column("subject_en", sa.String),
        sa.column("body_en", sa.Text),
        sa.column("sms_template", sa.String),
        sa.column("send_time", sa.Time),
        sa.column("lead_days", sa.Integer),
        sa.column("audience", sa.Text),
        sa.column("coupon_template", sa.String),
        sa.column("winback_days", sa.Integer),
        sa.column("priority", sa.Integer),
        sa.column("created_at", guanxi.core.types.UTCDateTime),
        sa.column("updated_at", guanxi.core.types.UTCDateTime),
        sa.column("version", sa.Integer),
    )
    now = datetime(2026, 11, 26, tzinfo=UTC)
    op.bulk_insert(
        rule,
        [
            {
                "name": name,
                "kind": kind,
                "enabled": False,
                "channel": "sms_or_email",
                "festivals": json.dumps(festivals),
                "subject_zh": subject_zh,
                "body_zh": body_zh,
                "subject_en": subject_en,
                "body_en": body_en,
                "sms_template": sms,
                "send_time": None,
                "lead_days": lead,
                "audience": "{}",
                "coupon_template": coupon,
                "winback_days": 90,
                "priority": priority,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for (
                name,
                kind,
                festivals,
                sms,
                subject_zh,
                body_zh,
                subject_en,
                body_en,
                lead,
                coupon,
                priority,
            ) in EXAMPLES
        ],
    )


def downgrade() -> None:
    """Drop the care tables (the example rules go with them)."""
    op.drop_index("ix_care_run_run_date", table_name="care_run")
    op.drop_table("care_run")
    op.drop_table("care_setting")
    op.drop_index("ix_care_rule_enabled_kind", table_name="care_rule")
    op.drop_table("care_rule")
