"""Tickets (complaints, inquiries, service requests, claims), their timeline and hand-overs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
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


class Ticket(Base):
    """One case a customer brought (工单): what, who, which waybill, who owns it, where it
    stands, and the moments its service levels are measured from."""

    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_owner_status", "owner_id", "status"),
        Index("ix_ticket_status_id", "status", "id"),
        Index("ix_ticket_customer_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    # The waybill the case is about (the shipment's timeline is shown beside the ticket).
    waybill_no: Mapped[str | None] = mapped_column(String(40), index=True)
    category: Mapped[str | None] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(10), default="minor")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="new")
    # 首问负责制: the first agent to take the ticket stays accountable in reports; the
    # owner changes only through a recorded hand-over.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    first_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    # Flags for supervisors: the same customer or waybill complained again within the
    # repeat window; or a major case (critical, regulator referral).
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    is_major: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set on resolve: what was done and why it happened (for root-cause analysis).
    resolution_code: Mapped[str | None] = mapped_column(String(30))
    root_cause: Mapped[str | None] = mapped_column(String(50))
    # The customer's answer to the satisfaction check (1-5); 1-2 reopens the ticket.
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class TicketEvent(Base):
    """One step on a ticket's timeline: a transition, a reply, a note, a hand-over."""

    __tablename__ = "ticket_event"
    __table_args__ = (Index("ix_ticket_event_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    # A hand-over's receiver; the reason or reply goes in ``note``.
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    # Internal notes are never shown to the customer; replies are.
    internal: Mapped[bool] = mapped_column(Boolean, default=True)


class Claim(Base):
    """A compensation claim for one waybill, with the standard amount it was judged by."""

    __tablename__ = "claim"
    __table_args__ = (Index("ix_claim_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipment.id", ondelete="RESTRICT"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(10))
    insured: Mapped[bool] = mapped_column(default=False)
    # The basis of the standard: declared value (insured) or the fee (uninsured).
    declared_value_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    requested_fen: Mapped[int] = mapped_column(BigInteger)
    standard_fen: Mapped[int] = mapped_column(BigInteger)
    approved_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="submitted")
    evidence: Mapped[str | None] = mapped_column(Text)
    decision_note: Mapped[str | None] = mapped_column(Text)
    payout_ref: Mapped[str | None] = mapped_column(String(60))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SlaEvent(Base):
    """A service-level moment the sweep recorded once: a warning before a breach, the
    breach, an escalation. The unique key makes a re-run (or two workers) harmless."""

    __tablename__ = "sla_event"
    __table_args__ = (UniqueConstraint("ticket_id", "target", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
