"""The audit log table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class AuditEntry(Base):
    """One meaningful change or reveal: who, what, which record, before/after, when.

    ``hash`` covers the row's content and the previous row's hash, so altering, removing or
    inserting a row breaks the chain that ``guanxi audit verify`` walks.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_target", "target_type", "target_id", "id"),
        # The auditor's search by actor, newest first (audit viewer).
        Index("ix_audit_log_actor", "actor_name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditSubjectKey(Base):
    """The data key that seals one subject's personal values in the audit log
    (:mod:`guanxi.audit.sealing`), encrypted with the field cipher. Deleting the row
    (anonymisation) makes those values unreadable for good without touching the chain."""

    __tablename__ = "audit_subject_key"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", name="uq_audit_subject_key_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    audit_subject_key_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
