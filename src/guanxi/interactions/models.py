"""Interactions with customers, their action items, and contact-cadence rules."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class Interaction(Base):
    """One contact with a customer (沟通记录): when, how, who, what was said, what came of it."""

    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_customer_time", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    participants: Mapped[str | None] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(300))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    # The sales opportunity the contact was about (logged from the opportunity's page).
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunity.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ActionItem(Base):
    """Something to do for a customer by a date: a follow-up, a return visit (回访)."""

    __tablename__ = "action_item"
    __table_args__ = (Index("ix_action_item_owner_due", "owner_id", "done_at", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interaction.id", ondelete="SET NULL")
    )
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CadenceRule(Base):
    """How often customers of a kind are contacted: those with ``tag`` (or every owned
    customer when no tag) every ``every_days`` days. The shortest matching rule wins."""

    __tablename__ = "cadence_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tag: Mapped[str | None] = mapped_column(String(50))
    every_days: Mapped[int] = mapped_column(Integer)
