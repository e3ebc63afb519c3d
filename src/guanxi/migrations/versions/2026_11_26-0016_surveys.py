"""satisfaction surveys

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 01:10:00

Survey templates with versions of question rows, invitations, responses and answers,
outlets (QR codes) and the survey policy; the three default templates of issue #6 are
inserted as published version 1: "after a ticket" (CSAT, NPS with its reason, the five
service dimensions), "after delivery" (CSAT, timeliness, attitude, a comment) and
"relationship" (NPS with its reason, the five dimensions). Also the ticket category of
the detractor follow-up (回访 / 满意度回访).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (code, kind, dimension, zh, en, required, reason_for)
Question = tuple[str, str, str | None, str, str, bool, str | None]
# (code, zh, en, kind, questions)
_DIMENSIONS: list[tuple[str, str, str | None, str, str]] = [
    (
        "dim_attitude",
        "dimension",
        "service_attitude",
        "工作人员的服务态度",
        "Service attitude of our staff",
    ),
    ("dim_timeliness", "dimension", "timeliness", "处理与送达的及时性", "Timeliness"),
    ("dim_process", "dimension", "process", "办理流程是否简便", "How simple the process was"),
    (
        "dim_price",
        "dimension",
        "price",
        "价格（运费、赔付）是否合理",
        "Price reasonableness (fees, compensation)",
    ),
    ("dim_after_sales", "dimension", "after_sales", "售后服务", "After-sales service"),
]
_CSAT = (
    "csat",
    "csat",
    None,
    "总体而言，您对本次服务的满意程度如何？",
    "Overall, how satisfied are you with our service this time?",
)
_NPS = (
    "nps",
    "nps",
    None,
    "您有多大可能向亲友或同事推荐我们？",
    "How likely are you to recommend us to a friend or colleague?",
)
_REASON = (
    "nps_reason",
    "text",
    None,
    "您给出这个分数的主要原因是什么？",
    "What is the main reason for your score?",
)
TEMPLATES: list[tuple[str, str, str, str, list[Question]]] = [
    (
        "after_ticket",
        "工单处理满意度调查",
        "After a ticket",
        "multi",
        [
            (*_CSAT, True, None),
            (*_NPS, True, None),
            (*_REASON, False, "nps"),
            *[(*d, False, None) for d in _DIMENSIONS],
        ],
    ),
    (
        "after_delivery",
        "派送服务满意度调查",
        "After delivery",
        "csat",
        [
            (*_CSAT, True, None),
            (*_DIMENSIONS[1], False, None),
            (*_DIMENSIONS[0], False, None),
            (
                "comment",
                "text",
                None,
                "还有什么想告诉我们的吗？",
                "Anything else you would like to tell us?",
                False,
                None,
            ),
        ],
    ),
    (
        "relationship",
        "客户关系调查",
        "Relationship survey",
        "nps",
        [(*_NPS, True, None), (*_REASON, False, "nps"), *[(*d, False, None) for d in _DIMENSIONS]],
    ),
]
CATEGORIES = [
    ("return_visit", None, "回访", "Return visit", "service"),
    ("return_visit.survey", "return_visit", "满意度回访", "Survey follow-up", "service"),
]


def upgrade() -> None:
    """Create the survey tables and insert the default templates and category."""
    op.create_table(
        "survey_setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_survey_setting_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_survey_setting")),
    )
    op.create_table(
        "survey_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_survey_template_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_template")),
        sa.UniqueConstraint("code", name=op.f("uq_survey_template_code")),
    )
    op.create_table(
        "survey_outlet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=30), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_survey_outlet_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["survey_template.id"],
            name=op.f("fk_survey_outlet_template_id_survey_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_outlet")),
        sa.UniqueConstraint("code", name=op.f("uq_survey_outlet_code")),
    )
    op.create_table(
        "survey_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("published_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_survey_version_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["survey_template.id"],
            name=op.f("fk_survey_version_template_id_survey_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_version")),
        sa.UniqueConstraint("template_id", "number", name=op.f("uq_survey_version_template_id")),
    )
    op.create_index(
        op.f("ix_survey_version_template_id"), "survey_version", ["template_id"], unique=False
    )
    op.create_table(
        "survey_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("reminder_token_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_survey_invitation_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipment.id"],
            name=op.f("fk_survey_invitation_shipment_id_shipment"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["survey_template.id"],
            name=op.f("fk_survey_invitation_template_id_survey_template"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_survey_invitation_ticket_id_ticket"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["survey_version.id"],
            name=op.f("fk_survey_invitation_version_id_survey_version"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_invitation")),
        sa.UniqueConstraint("key", name=op.f("uq_survey_invitation_key")),
        sa.UniqueConstraint(
            "reminder_token_hash", name=op.f("uq_survey_invitation_reminder_token_hash")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_survey_invitation_token_hash")),
    )
    op.create_index(
        "ix_survey_invitation_customer_created",
        "survey_invitation",
        ["customer_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_survey_invitation_status_created",
        "survey_invitation",
        ["status", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_survey_invitation_ticket_id"), "survey_invitation", ["ticket_id"], unique=False
    )
    op.create_table(
        "survey_question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=True),
        sa.Column("label_zh", sa.String(length=300), nullable=False),
        sa.Column("label_en", sa.String(length=300), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("reason_for", sa.String(length=30), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["survey_version.id"],
            name=op.f("fk_survey_question_version_id_survey_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_question")),
        sa.UniqueConstraint("version_id", "code", name=op.f("uq_survey_question_version_id")),
    )
    op.create_index(
        op.f("ix_survey_question_version_id"), "survey_question", ["version_id"], unique=False
    )
    op.create_table(
        "survey_option",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=30), nullable=False),
        sa.Column("label_zh", sa.String(length=200), nullable=False),
        sa.Column("label_en", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["survey_question.id"],
            name=op.f("fk_survey_option_question_id_survey_question"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_option")),
        sa.UniqueConstraint("question_id", "value", name=op.f("uq_survey_option_question_id")),
    )
    op.create_index(
        op.f("ix_survey_option_question_id"), "survey_option", ["question_id"], unique=False
    )
    op.create_table(
        "survey_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("outlet_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.Column("submitted_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("dim_service_attitude", sa.Integer(), nullable=True),
        sa.Column("dim_timeliness", sa.Integer(), nullable=True),
        sa.Column("dim_process", sa.Integer(), nullable=True),
        sa.Column("dim_price", sa.Integer(), nullable=True),
        sa.Column("dim_after_sales", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("region", sa.String(length=30), nullable=True),
        sa.Column("service_type", sa.String(length=16), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("phone_bidx", sa.String(length=32), nullable=True),
        sa.Column("follow_up", sa.String(length=10), nullable=False),
        sa.Column("follow_up_ticket_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["app_user.id"],
            name=op.f("fk_survey_response_agent_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_survey_response_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entered_by"],
            ["app_user.id"],
            name=op.f("fk_survey_response_entered_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_ticket_id"],
            ["ticket.id"],
            name=op.f("fk_survey_response_follow_up_ticket_id_ticket"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["survey_invitation.id"],
            name=op.f("fk_survey_response_invitation_id_survey_invitation"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"],
            ["survey_outlet.id"],
            name=op.f("fk_survey_response_outlet_id_survey_outlet"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipment.id"],
            name=op.f("fk_survey_response_shipment_id_shipment"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["survey_template.id"],
            name=op.f("fk_survey_response_template_id_survey_template"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_survey_response_ticket_id_ticket"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["survey_version.id"],
            name=op.f("fk_survey_response_version_id_survey_version"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_response")),
        sa.UniqueConstraint("invitation_id", name=op.f("uq_survey_response_invitation_id")),
    )
    op.create_index(
        "ix_survey_response_customer",
        "survey_response",
        ["customer_id", "submitted_at"],
        unique=False,
    )
    op.create_index("ix_survey_response_follow_up", "survey_response", ["follow_up"], unique=False)
    op.create_index(
        "ix_survey_response_submitted", "survey_response", ["submitted_at"], unique=False
    )
    op.create_index(
        "ix_survey_response_template",
        "survey_response",
        ["template_id", "submitted_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_survey_response_ticket_id"), "survey_response", ["ticket_id"], unique=False
    )
    op.create_table(
        "survey_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("value_int", sa.Integer(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("choices", sa.String(length=400), nullable=True),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["survey_question.id"],
            name=op.f("fk_survey_answer_question_id_survey_question"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_response.id"],
            name=op.f("fk_survey_answer_response_id_survey_response"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answer")),
    )
    op.create_index(
        op.f("ix_survey_answer_question_id"), "survey_answer", ["question_id"], unique=False
    )
    op.create_index(
        op.f("ix_survey_answer_response_id"), "survey_answer", ["response_id"], unique=False
    )

    _seed_templates()
    _seed_categories()


def _seed_templates() -> None:
    bind = op.get_bind()
    now = datetime(2026, 11, 26, tzinfo=UTC)
    template = sa.table(
        "survey_template",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("name_zh", sa.String),
        sa.column("name_en", sa.String),
        sa.column("kind", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("created_at", guanxi.core.types.UTCDateTime),
    )
    version = sa.table(
        "survey_version",
        sa.column("id", sa.Integer),
        sa.column("template_id", sa.Integer),
        sa.column("number", sa.Integer),
        sa.column("status", sa.String),
        sa.column("created_at", guanxi.core.types.UTCDateTime),
        sa.column("published_at", guanxi.core.types.UTCDateTime),
    )
    question = sa.table(
        "survey_question",
        sa.column("version_id", sa.Integer),
        sa.column("position", sa.Integer),
        sa.column("code", sa.String),
        sa.column("kind", sa.String),
        sa.column("dimension", sa.String),
        sa.column("label_zh", sa.String),
        sa.column("label_en", sa.String),
        sa.column("required", sa.Boolean),
        sa.column("reason_for", sa.String),
    )
    for code, zh, en, kind, questions in TEMPLATES:
        bind.execute(
            template.insert().values(
                code=code, name_zh=zh, name_en=en, kind=kind, active=True, created_at=now
            )
        )
        tid = bind.execute(sa.select(template.c.id).where(template.c.code == code)).scalar_one()
        bind.execute(
            version.insert().values(
                template_id=tid, number=1, status="published", created_at=now, published_at=now
            )
        )
        vid = bind.execute(sa.select(version.c.id).where(version.c.template_id == tid)).scalar_one()
        for position, (qcode, qkind, dim, qzh, qen, required, reason_for) in enumerate(
            questions, start=1
        ):
            bind.execute(
                question.insert().values(
                    version_id=vid,
                    position=position,
                    code=qcode,
                    kind=qkind,
                    dimension=dim,
                    label_zh=qzh,
                    label_en=qen,
                    required=required,
                    reason_for=reason_for,
                )
            )


def _seed_categories() -> None:
    bind = op.get_bind()
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
    top = bind.execute(sa.select(sa.func.max(table.c.position))).scalar() or 0
    ids: dict[str, int] = {}
    for offset, (code, parent, zh, en, skill) in enumerate(CATEGORIES, start=1):
        found = bind.execute(sa.select(table.c.id).where(table.c.code == code)).scalar()
        if found is None:
            bind.execute(
                table.insert().values(
                    code=code,
                    parent_id=ids[parent] if parent else None,
                    name_zh=zh,
                    name_en=en,
                    skill=skill,
                    position=top + offset,
                    active=True,
                )
            )
            found = bind.execute(sa.select(table.c.id).where(table.c.code == code)).scalar_one()
        ids[code] = found


def downgrade() -> None:
    """Drop the survey tables and the follow-up category (if no ticket uses it)."""
    for code, *_ in reversed(CATEGORIES):
        op.execute(
            sa.text(
                "DELETE FROM ticket_category WHERE code = :c "
                "AND NOT EXISTS (SELECT 1 FROM ticket WHERE ticket.category = :c)"
            ).bindparams(c=code)
        )
    op.drop_index(op.f("ix_survey_answer_response_id"), table_name="survey_answer")
    op.drop_index(op.f("ix_survey_answer_question_id"), table_name="survey_answer")
    op.drop_table("survey_answer")
    op.drop_index(op.f("ix_survey_response_ticket_id"), table_name="survey_response")
    op.drop_index("ix_survey_response_template", table_name="survey_response")
    op.drop_index("ix_survey_response_submitted", table_name="survey_response")
    op.drop_index("ix_survey_response_follow_up", table_name="survey_response")
    op.drop_index("ix_survey_response_customer", table_name="survey_response")
    op.drop_table("survey_response")
    op.drop_index(op.f("ix_survey_option_question_id"), table_name="survey_option")
    op.drop_table("survey_option")
    op.drop_index(op.f("ix_survey_question_version_id"), table_name="survey_question")
    op.drop_table("survey_question")
    op.drop_index(op.f("ix_survey_invitation_ticket_id"), table_name="survey_invitation")
    op.drop_index("ix_survey_invitation_status_created", table_name="survey_invitation")
    op.drop_index("ix_survey_invitation_customer_created", table_name="survey_invitation")
    op.drop_table("survey_invitation")
    op.drop_index(op.f("ix_survey_version_template_id"), table_name="survey_version")
    op.drop_table("survey_version")
    op.drop_table("survey_outlet")
    op.drop_table("survey_template")
    op.drop_table("survey_setting")
