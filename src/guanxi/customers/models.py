"""Customer tables. Personal identifiers are stored encrypted with a blind index beside them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime
from guanxi.security.models import User

customer_tag = Table(
    "customer_tag",
    Base.metadata,
    Column("customer_id", ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    """A free label on customers (e.g. 月结客户, 电商大客户)."""

    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class Customer(Base):
    """An individual, enterprise or public body that ships with us (客户档案)."""

    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_status_id", "status", "id"),
        Index("ix_customer_owner_id", "owner_id", "id"),
        # Audience counts (campaigns.audiences): a region filter reads the region's
        # customers from the index alone (kind, status and id in it), not every row.
        Index("ix_customer_region_kind_status_id", "region", "kind", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # The customer's number in the system it came from (客户编号): the key that makes a
    # re-import of the same file an update instead of a duplicate.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    # Encrypted personal identifiers ("<kid>$<b64>") and their keyed blind indexes.
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    credit_code_enc: Mapped[str | None] = mapped_column(Text)
    credit_code_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(20), default="other")
    industry: Mapped[str | None] = mapped_column(String(50))
    region: Mapped[str | None] = mapped_column(String(50))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    birthday: Mapped[date | None] = mapped_column(Date)
    # The language the customer is written to in (zh_CN / en); None: the default language.
    language: Mapped[str | None] = mapped_column(String(5))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="new")
    credit_rating: Mapped[str | None] = mapped_column(String(4))
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic concurrency: an update names the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerPhone.position"
    )
    addresses: Mapped[list[CustomerAddress]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerAddress.position"
    )
    contacts: Mapped[list[ContactPerson]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="ContactPerson.position"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=customer_tag, order_by="Tag.name")
    owner: Mapped[User | None] = relationship(lazy="joined")

    # The service bumps the version once per change; the ORM adds "WHERE version = :read" to
    # every UPDATE, so a concurrent writer's change is never silently overwritten.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class CustomerPhone(Base):
    """One of a customer's phone numbers (E.164, encrypted)."""

    __tablename__ = "customer_phone"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(10))
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_bidx: Mapped[str] = mapped_column(String(32), index=True)
    # Last four digits kept in clear: what an agent reads back on the phone; not identifying.
    last4: Mapped[str] = mapped_column(String(4))

    customer: Mapped[Customer] = relationship(back_populates="phones")


class CustomerAddress(Base):
    """A postal address split into division levels plus the detail line."""

    __tablename__ = "customer_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    label: Mapped[str | None] = mapped_column(String(30))
    province: Mapped[str | None] = mapped_column(String(30))
    city: Mapped[str | None] = mapped_column(String(30))
    district: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(String(300))
    # 6-digit county code; 9 digits where a city has towns but no districts (东莞, 中山).
    division_code: Mapped[str | None] = mapped_column(String(12), index=True)

    customer: Mapped[Customer] = relationship(back_populates="addresses")


class ContactPerson(Base):
    """A named person at an enterprise or public-body customer (联系人)."""

    __tablename__ = "contact_person"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    email_enc: Mapped[str | None] = mapped_column(Text)
    is_primary: Mapped[bool] = mapped_column(default=False)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class SearchToken(Base):
    """Character bigrams of customer and contact names: the name-search index.

    Works for two-character Chinese terms (张三 in 张三丰) that trigram full-text indexes
    miss, on SQLite and PostgreSQL alike. Primary key order (token, customer_id) lets a
    search walk one token's postings newest-first and probe the others.
    """

    __tablename__ = "customer_search_token"

    token: Mapped[str] = mapped_column(String(8), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CustomerConsentEvent(Base):
    """One consent given or withdrawn (PIPL: who agreed to what, when, on which notice, on
    which legal basis, through which channel). Append-only: the evidence of every change;
    the current state is in :class:`CustomerConsent`."""

    __tablename__ = "customer_consent_event"
    __table_args__ = (Index("ix_customer_consent_event_customer", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)
    legal_basis: Mapped[str] = mapped_column(String(20), default="consent")
    notice_version: Mapped[str | None] = mapped_column(String(30))
    # web / api / agent / import / sms_reply / email_link / demo
    source: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CustomerConsent(Base):
    """A customer's current consent for one purpose: the latest event, kept as a row so
    audience filters are one indexed join (``consent.allowed_customers``)."""

    __tablename__ = "customer_consent"
    __table_args__ = (Index("ix_customer_consent_purpose", "purpose", "granted", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
