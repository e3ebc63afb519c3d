"""Training courses of the service team and who attended them with what assessment."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class TrainingCourse(Base):
    """A planned training (培训计划): what, how, when, for which team, how long.

    Topics follow the manuals: company culture and values, business knowledge, communication
    skills, complaint handling, information security; modes online, offline and practice
    (simulated scenarios).
    """

    __tablename__ = "training_course"
    __table_args__ = (Index("ix_training_course_planned", "planned_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(10))
    planned_on: Mapped[date] = mapped_column(Date)
    hours: Mapped[float] = mapped_column(Float, default=1.0)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    # The plan it belongs to: monthly, quarterly or annual (培训计划的周期).
    plan_period: Mapped[str] = mapped_column(String(10), default="month")
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)


class TrainingRecord(Base):
    """One staff member's attendance of a course and their assessment score (0–100)."""

    __tablename__ = "training_record"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("training_course.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    attended: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(String(300))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
