"""Tables of the privacy domain: data-subject requests (个人权利请求), the anonymisations
carried out, and the request policy (deadlines)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class PrivacyRequest(Base):
    """A request of a data subject about their personal information (PIPL art. 44-47):
    access, copy, correction, deletion, restriction or objection.

    Registered for a customer with how the requester's identity was verified; worked by the
    privacy officer: ``status`` received → in_progress → completed / rejected (a rejection
    names its reason). ``due_on`` is the last local working day to answer on (15 working
    days by default, GB/T 35273-2020 §8.7). Free texts hold no identifiers: a correction's
    new values go through the customers service, only the changed field names are kept here.
    """

    __tablename__ = "privacy_request"
    __table_args__ = (
        Index("ix_privacy_request_status_due", "status", "due_on"),
        Index("ix_privacy_request_customer", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12), default="received")
    # How the request reached us (phone, counter, e-mail, letter, web).
    channel: Mapped[str] = mapped_column(String(12))
    # How the requester proved to be the customer (ID document, call-back, ...).
    verification: Mapped[str] = mapped_column(String(16))
    # What was asked, in the agent's words (no identifiers: those are in the customer record).
    details: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    due_on: Mapped[date] = mapped_column(Date)
    # The answer: the rejection's reason, or what was done (fields corrected, export sent).
    resolution: Mapped[str | None] = mapped_column(Text)
    # Field names a correction changed (JSON list as text), for the record.
    corrected_fields: Mapped[str | None] = mapped_column(Text)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Anonymisation(Base):
    """A customer whose personal information was anonymised (deletion request or end of
    retention): when, by whom and why. What remains of the customer is aggregates only."""

    __tablename__ = "privacy_anonymisation"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(300))


class PrivacySetting(Base):
    """The request policy as JSON (working days to answer, days of warning), validated by
    :class:`guanxi.privacy.schemas.RequestPolicy`."""

    __tablename__ = "privacy_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
