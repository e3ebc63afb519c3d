"""Survey tables: templates with immutable versions of question rows, invitations with
single-use links, responses with their answers, outlets for QR codes, and the policy.

A response keeps its scores twice: one :class:`SurveyAnswer` row per question (what was
asked and answered, for the record) and the overall and dimension scores as columns of
:class:`SurveyResponse`, so the results are plain aggregates over one table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class SurveyTemplate(Base):
    """A survey as administrators name it ("after a ticket", "relationship"); what it asks
    lives in its versions."""

    __tablename__ = "survey_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class SurveyVersion(Base):
    """One version of a template's questions. Drafts are edited; a published version never
    changes again (invitations and responses point at it), editing starts a new draft."""

    __tablename__ = "survey_version"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("survey_template.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SurveyQuestion(Base):
    """A question of a version: its place, how it is answered, its wording in both
    languages. ``code`` names it within the version (``csat``, ``nps``, ``q4`` ...);
    ``reason_for`` marks the text question asking why a score was given."""

    __tablename__ = "survey_question"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("survey_version.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(10))
    dimension: Mapped[str | None] = mapped_column(String(20))
    label_zh: Mapped[str] = mapped_column(String(300))
    label_en: Mapped[str] = mapped_column(String(300))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    reason_for: Mapped[str | None] = mapped_column(String(30))


class SurveyOption(Base):
    """A choice of a single- or multiple-choice question."""

    __tablename__ = "survey_option"
    __table_args__ = (UniqueConstraint("question_id", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("survey_question.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(String(30))
    label_zh: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))


class SurveyOutlet(Base):
    """An outlet (营业网点) with a printed QR code: anyone there may answer the template,
    anonymously or leaving a phone number."""

    __tablename__ = "survey_outlet"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(30))
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class SurveyInvitation(Base):
    """One customer asked to answer one version, once, before it expires.

    The link's secret is random and only its SHA-256 is kept (``token_hash``); the single
    reminder carries a second secret (``reminder_token_hash``) since the first cannot be
    recovered. ``key`` makes each trigger idempotent (``ticket:<id>:<reopened>``,
    ``delivery:<shipment id>``, ``relationship:<period>:<customer id>``).
    """

    __tablename__ = "survey_invitation"
    __table_args__ = (
        # The per-customer gap ("at most once per N days") and the 360 panel.
        Index("ix_survey_invitation_customer_created", "customer_id", "created_at"),
        # The reminder sweep: open invitations by age.
        Index("ix_survey_invitation_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("survey_version.id", ondelete="RESTRICT"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reminder_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SurveyResponse(Base):
    """A completed survey: who (if known), through what, and the scores that the results
    aggregate, with where and by whom the service was given (region, service type, the
    ticket's owner) fixed at the time of the answer."""

    __tablename__ = "survey_response"
    __table_args__ = (
        Index("ix_survey_response_submitted", "submitted_at"),
        Index("ix_survey_response_customer", "customer_id", "submitted_at"),
        Index("ix_survey_response_template", "template_id", "submitted_at"),
        Index("ix_survey_response_follow_up", "follow_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: of two submissions of one invitation, the database keeps one.
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_invitation.id", ondelete="SET NULL"), unique=True
    )
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("survey_version.id", ondelete="RESTRICT"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id", ondelete="SET NULL"))
    outlet_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_outlet.id", ondelete="SET NULL")
    )
    trigger: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(5), default="zh_CN")
    # The agent who typed in a paper or phone answer.
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    csat: Mapped[int | None] = mapped_column(Integer)
    nps: Mapped[int | None] = mapped_column(Integer)
    dim_service_attitude: Mapped[int | None] = mapped_column(Integer)
    dim_timeliness: Mapped[int | None] = mapped_column(Integer)
    dim_process: Mapped[int | None] = mapped_column(Integer)
    dim_price: Mapped[int | None] = mapped_column(Integer)
    dim_after_sales: Mapped[int | None] = mapped_column(Integer)
    # Why the score (the NPS reason, else the CSAT reason): the follow-up ticket quotes it.
    reason: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(30))
    service_type: Mapped[str | None] = mapped_column(String(16))
    # The owner of the ticket surveyed (for results by agent).
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # A phone number typed on an outlet's page (encrypted, with its blind index).
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[str | None] = mapped_column(String(32))
    follow_up: Mapped[str] = mapped_column(String(10), default="none")
    follow_up_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL")
    )


class SurveyAnswer(Base):
    """The answer to one question: a score, a text, or the chosen option values."""

    __tablename__ = "survey_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_response.id", ondelete="CASCADE"), index=True
    )
    question_id: Mapped[int] = mapped_column(
        ForeignKey("survey_question.id", ondelete="RESTRICT"), index=True
    )
    value_int: Mapped[int | None] = mapped_column(Integer)
    value_text: Mapped[str | None] = mapped_column(Text)
    # Option values, comma-separated, in the options' order.
    choices: Mapped[str | None] = mapped_column(String(400))


class SurveySetting(Base):
    """One piece of survey configuration as JSON (the policy: rates, gaps, expiry,
    reminder delay, named campaign dates), validated by its pydantic model."""

    __tablename__ = "survey_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
