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
        Index("ix_ticket_team_status", "team_id", "status"),
        # The sweep reads only tickets whose next service-level moment has come.
        Index("ix_ticket_sla_check_at", "sla_check_at"),
        # Breaching soon: a range on the due time, open tickets only carry one.
        Index("ix_ticket_sla_due_at", "sla_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    # The waybill the case is about (the shipment's timeline is shown beside the ticket).
    waybill_no: Mapped[str | None] = mapped_column(String(40), index=True)
    # A code from the configurable category tree (TicketCategory.code).
    category: Mapped[str | None] = mapped_column(String(50))
    # Province the case is about (as shipments name it, e.g. 广东省), for routing by region;
    # rules and agents match it by prefix ("广东").
    region: Mapped[str | None] = mapped_column(String(12))
    tags: Mapped[str | None] = mapped_column(String(300))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
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
    # The customer's CSAT (1-10) from the survey after resolution; 4 or less is logged as
    # unsatisfied (a detractor's follow-up is a ticket of its own, surveys/followups.py).
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    # Materialised from the timeline on every change so queues and the sweep need no
    # per-ticket computation: the nearest unmet due time (None while the clock is paused
    # or the ticket is done) and the next moment the sweep must look (warning, breach,
    # escalation).
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The address the customer asked to be answered at for this case (encrypted): the one
    # typed on the self-service page, or given on the phone. Resolution mails go here.
    contact_email_enc: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the secret in the customer's private follow-up link (self-service).
    public_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
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


class TicketCategory(Base):
    """A node of the configurable category tree (delay, damage, loss, ...); the skill an
    agent needs to be routed tickets of this category."""

    __tablename__ = "ticket_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_category.id", ondelete="RESTRICT")
    )
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    skill: Mapped[str | None] = mapped_column(String(30))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Team(Base):
    """A service team: its queue, its working hours (its SLA calendar) and the cursor of its
    round-robin assignment."""

    __tablename__ = "team"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Local working spans of a working day, e.g. "09:00-12:00,13:00-18:00".
    work_hours: Mapped[str] = mapped_column(String(100), default="09:00-12:00,13:00-18:00")
    # The member who was given the last ticket round-robin.
    rr_last_user_id: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class TeamMember(Base):
    """An agent in a team, with the skills and regions they take tickets for."""

    __tablename__ = "team_member"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    # Comma-separated; empty means any.
    skills: Mapped[str | None] = mapped_column(String(200))
    regions: Mapped[str | None] = mapped_column(String(200))
    accepting: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(Base):
    """Where a new ticket goes: the first active rule (by position) whose conditions all
    match picks the team and how an agent in it is chosen."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    ticket_type: Mapped[str | None] = mapped_column(String(20))
    # Matches the category and everything under it in the tree.
    category: Mapped[str | None] = mapped_column(String(50))
    channel: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(12))
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    # Needed skill (defaults to the category's skill); "queue" strategy leaves the ticket
    # in the team queue for agents to take.
    skill: Mapped[str | None] = mapped_column(String(30))
    strategy: Mapped[str] = mapped_column(String(20), default="least_loaded")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DeskSetting(Base):
    """One piece of service-desk configuration as JSON (priority matrix, SLA policies,
    reopen and repeat windows, claim standards), validated by its pydantic model."""

    __tablename__ = "desk_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class Attachment(Base):
    """A file on a ticket or claim (evidence, photos, letters). The bytes live in the data
    directory under a random name; the row keeps what is needed to serve them safely."""

    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    claim_id: Mapped[int | None] = mapped_column(
        ForeignKey("claim.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    # Sent by the customer through the self-service page (no staff uploader).
    from_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
