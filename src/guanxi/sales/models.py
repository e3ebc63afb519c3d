"""Tables of the sales domain: sales teams, opportunities (leads included) with their stage
history, and the configurable reasons an opportunity is lost."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
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


class SalesTeam(Base):
    """A sales team (销售团队): its manager sees and steers the members' opportunities."""

    __tablename__ = "sales_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class SalesTeamMember(Base):
    """A salesperson in a team; a person belongs to one team at most."""

    __tablename__ = "sales_team_member"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("sales_team.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True, unique=True
    )


class LostReason(Base):
    """A reason an opportunity may be closed as lost (the list is the sales managers')."""

    __tablename__ = "sales_lost_reason"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label_zh: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Opportunity(Base):
    """A sales opportunity (销售机会), from a raw lead to won or lost.

    A lead from the public web form has no customer yet: the contact's name, company, phone
    and e-mail are stored encrypted (blind indexes for the phone and e-mail) until the lead
    is converted into a customer, then erased. ``probability`` None: the stage's default.
    """

    __tablename__ = "opportunity"
    __table_args__ = (
        Index("ix_opportunity_owner_stage", "owner_id", "stage"),
        Index("ix_opportunity_stage_close", "stage", "expected_close"),
        Index("ix_opportunity_customer_id", "customer_id"),
        # One lead per campaign and customer, however often the customer clicks.
        UniqueConstraint("campaign_id", "customer_id", name="uq_opportunity_campaign_customer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    expected_revenue: Mapped[int] = mapped_column(Integer, default=0)  # fen
    probability: Mapped[int | None] = mapped_column(Integer)
    expected_close: Mapped[date | None] = mapped_column(Date)
    next_step: Mapped[str | None] = mapped_column(String(200))
    next_step_due: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20))
    # The campaign a response came from (campaigns' own id; no key across the domains).
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    lost_reason: Mapped[str | None] = mapped_column(
        ForeignKey("sales_lost_reason.code", ondelete="RESTRICT")
    )
    notes: Mapped[str | None] = mapped_column(Text)
    # The web form's contact until the lead becomes a customer ("<kid>$<b64>").
    contact_name_enc: Mapped[str | None] = mapped_column(Text)
    contact_company_enc: Mapped[str | None] = mapped_column(Text)
    contact_phone_enc: Mapped[str | None] = mapped_column(Text)
    contact_phone_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    contact_email_enc: Mapped[str | None] = mapped_column(Text)
    contact_email_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic concurrency: a change names the version it read (the board's drag too).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class StageChange(Base):
    """One move of an opportunity between stages: who, when, from and to (velocity and
    conversion figures are read from these rows)."""

    __tablename__ = "opportunity_stage_change"
    __table_args__ = (
        Index("ix_opportunity_stage_change_opp", "opportunity_id", "changed_at"),
        Index("ix_opportunity_stage_change_at", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Lost: the reason's code; reopened: the manager's words.
    reason: Mapped[str | None] = mapped_column(String(300))
