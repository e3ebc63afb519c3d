"""Suspected duplicate pairs, merges (with what they moved, for undo) and scoring runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class DedupeRun(Base):
    """One scoring run (全量 or 增量查重) and what came of it."""

    __tablename__ = "dedupe_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(12))
    customers: Mapped[int] = mapped_column(Integer, default=0)
    # The highest customer id this run looked at: an incremental run starts after it.
    last_customer_id: Mapped[int] = mapped_column(Integer, default=0)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    auto_merged: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    auto_threshold: Mapped[float] = mapped_column(Float)
    review_threshold: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DuplicatePair(Base):
    """Two customers the linkage thinks are one (lower id first), with its evidence."""

    __tablename__ = "duplicate_pair"
    __table_args__ = (
        UniqueConstraint("left_id", "right_id"),
        Index("ix_duplicate_pair_status_probability", "status", "probability"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    left_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    right_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    probability: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(16))
    # Comparisons that agreed, comma-separated (name,phones,address ...): the "why".
    agreed: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("dedupe_run.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerMerge(Base):
    """One merge of a duplicate into a survivor, with everything needed to undo it.

    ``fields`` holds the survivor's columns the merge changed as stored (personal values
    as their ciphertexts, never in clear): ``{column: [before, after]}``. ``moved`` holds
    the ids of the child rows moved to the survivor per table.
    """

    __tablename__ = "customer_merge"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    merged_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    pair_id: Mapped[int | None] = mapped_column(
        ForeignKey("duplicate_pair.id", ondelete="SET NULL")
    )
    automatic: Mapped[bool] = mapped_column(default=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    moved: Mapped[dict[str, Any]] = mapped_column(JSON)
    merged_status: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    undone_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
