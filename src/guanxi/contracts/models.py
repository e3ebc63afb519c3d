"""Tables of the contracts domain: agreements, their amendment history, attached documents,
the renewal reminders sent, and the contract policy."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
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


class Contract(Base):
    """An agreement with an enterprise or public-body customer (合同): its pricing terms
    (a discount and an optional monthly volume commitment), its period and where it stands.

    ``status``: draft → active → expired / terminated / renewed. A renewal is a contract of
    its own whose ``renewal_of_id`` names the one it follows; the old one becomes
    ``renewed`` when it ends with an activated renewal. Changes after activation are
    :class:`ContractAmendment` rows.
    """

    __tablename__ = "contract"
    __table_args__ = (
        Index("ix_contract_customer_id", "customer_id", "end_date"),
        Index("ix_contract_status_end_date", "status", "end_date"),
        Index("ix_contract_owner_id", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # CT-YYYYMM-NNNN, numbered per month of creation.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    # A contract is a legal record: the customer cannot be deleted under it.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    # Discount off the list price in basis points (1,250 = 12.5 %).
    discount_bp: Mapped[int] = mapped_column(Integer, default=0)
    # Monthly volume commitment: shipments and / or revenue (fen); None: no commitment.
    commit_shipments: Mapped[int | None] = mapped_column(Integer)
    commit_revenue_fen: Mapped[int | None] = mapped_column(BigInteger)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    # Remind the owner this many days before the end; None: the policy's default.
    reminder_days: Mapped[int | None] = mapped_column(Integer)
    # The contract this one renews (at most one renewal per contract).
    renewal_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("contract.id", ondelete="SET NULL"), unique=True
    )
    notes: Mapped[str | None] = mapped_column(Text)
    # The day the contract stopped being in force: its end date when it expired or was
    # renewed, the termination's effective day when terminated.
    ended_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Optimistic concurrency: an edit names the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)


class ContractAmendment(Base):
    """One change to an active contract's terms, dates or state (补充协议 / 变更记录):
    ``changes`` is JSON ``{field: [before, after]}``. Append-only: rows are never updated
    or deleted while the contract exists."""

    __tablename__ = "contract_amendment"
    __table_args__ = (Index("ix_contract_amendment_contract_id", "contract_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    changes: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # Who, when the change was the system's (the daily job's auto-renewal).
    actor_label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ContractDocument(Base):
    """A file attached to a contract (the signed PDF, scans, price annexes). The bytes live
    beside the tickets' attachments under ``data_dir/attachments`` by a random key."""

    __tablename__ = "contract_document"
    __table_args__ = (Index("ix_contract_document_contract_id", "contract_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ContractReminder(Base):
    """A renewal reminder sent for a contract: once per contract, end date and threshold
    (the unique key is the job's claim; an amended end date earns a new reminder)."""

    __tablename__ = "contract_reminder"
    __table_args__ = (
        UniqueConstraint(
            "contract_id", "end_date", "days_before", name="uq_contract_reminder_once"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    end_date: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ContractSetting(Base):
    """The contract policy as JSON (default reminder days), validated by
    :class:`guanxi.contracts.schemas.ContractPolicy`."""

    __tablename__ = "contract_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
