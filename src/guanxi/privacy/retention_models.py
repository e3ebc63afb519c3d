"""Tables of the retention purge: the policy per data category and the purge runs with
their report (one row per category and run)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class RetentionPolicy(Base):
    """How long one data category is kept (保存期限): ``keep_days`` after the moment the
    category counts from (an archive, an expiry, an upload …), and whether the daily purge
    acts on it. Defaults are seeded by the migration; the privacy officer edits them."""

    __tablename__ = "retention_policy"

    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    keep_days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class RetentionRun(Base):
    """One purge (or dry-run preview): when, started how and by whom, and whether it
    finished. An unfinished run (a crash) is resumed by the next purge."""

    __tablename__ = "retention_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # job (the worker), cli, web, api or demo.
    trigger: Mapped[str] = mapped_column(String(10))
    actor_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), default="running")


class RetentionReport(Base):
    """What one run did to one category: rows deleted or cleared, files and bytes removed,
    the cut-off used and the oldest record still kept afterwards (for a preview: what a
    purge would do)."""

    __tablename__ = "retention_report"
    __table_args__ = (UniqueConstraint("run_id", "category", name="uq_retention_report_run"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("retention_run.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(40))
    keep_days: Mapped[int] = mapped_column(Integer)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    oldest_kept: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
