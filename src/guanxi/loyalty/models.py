"""Loyalty tables: members, the append-only points ledger, tier history, the accrual
watermark, the policy, coupon templates and coupons.

Points are whole numbers; money is integer fen; times are UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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


class LoyaltySetting(Base):
    """The loyalty policy as one JSON document (tiers, earn rules, expiry, grace)."""

    __tablename__ = "loyalty_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class LoyaltyMember(Base):
    """A customer in the membership programme (会员): their tier, and the points balance.

    ``balance`` is a cache of the ledger's sum for the customer, kept in the same
    transaction as every ledger row (``verify_balances`` proves it); it never goes below
    zero. ``downgrade_due_at`` is set while a grace period runs: the member no longer
    qualifies for ``tier`` and drops to the tier they qualify for at that moment unless they
    qualify again before.
    """

    __tablename__ = "loyalty_member"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        # No index on the balance: accrual moves a million balances at a time, and the
        # members list sorts a tier's members (or all) when asked.
        Index("ix_loyalty_member_tier", "tier"),
        Index("ix_loyalty_member_downgrade_due_at", "downgrade_due_at"),
    )

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    tier: Mapped[str] = mapped_column(String(20))
    tier_since: Mapped[datetime] = mapped_column(UTCDateTime)
    # The membership anniversary (first earning shipment, or enrolment by an agent).
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    downgrade_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # Every point ever credited (earn, bonus, positive adjustments): a loyalty measure.
    lifetime_points: Mapped[int] = mapped_column(BigInteger, default=0)
    # "shipment" (automatic on the first earning shipment) or "agent".
    enrolled_via: Mapped[str] = mapped_column(String(10), default="shipment")


class PointsEntry(Base):
    """One line of the points ledger (积分流水). Append-only: never updated or deleted.

    ``points`` is signed: credits (earn, bonus, positive adjust) are positive and carry
    ``expires_at``; debits (redeem, expire, negative adjust) are negative. ``source_key``
    is unique: the same event (a shipment, a request retried, an expiry run) adds one row
    at most.
    """

    __tablename__ = "loyalty_points"
    # Few indexes on purpose: accrual inserts millions of rows (the report scans).
    __table_args__ = (Index("ix_loyalty_points_customer_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The customer, without a foreign key on purpose: the checks cost three quarters of
    # accrual's time (a lookup per row in the wide customer table). The writers guarantee
    # it: accrual takes it from the shipment (whose own key is checked), the services from
    # the member row; customers are archived or merged, never deleted. Accrual writes a
    # chunk's rows first and then creates and credits their members in one upsert.
    customer_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    source_key: Mapped[str] = mapped_column(String(120), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipment_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(300))
    reference: Mapped[str | None] = mapped_column(String(80))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class TierChange(Base):
    """A step in a member's tier history: joined, upgraded, grace started or cancelled,
    downgraded; ``to_tier`` of a grace start is the tier the member would drop to."""

    __tablename__ = "loyalty_tier_change"
    __table_args__ = (
        Index("ix_loyalty_tier_change_customer", "customer_id", "id"),
        Index("ix_loyalty_tier_change_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("loyalty_member.customer_id", ondelete="CASCADE")
    )
    from_tier: Mapped[str | None] = mapped_column(String(20))
    to_tier: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    spend_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    shipments: Mapped[int] = mapped_column(Integer, default=0)


class AccrualState(Base):
    """Where accrual stands: the last shipment id whose points are in the ledger.

    Committed in the same transaction as each chunk's ledger rows, so a crash loses
    nothing and repeats nothing."""

    __tablename__ = "loyalty_accrual_state"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CouponTemplate(Base):
    """What a coupon is worth and when it may be used (优惠券模板).

    ``kind``: amount_off (``amount_off_fen``), percent_off (``percent_off``) or
    free_service (``free_service``: a value-added service at no charge). Validity is a
    fixed window (``valid_from`` .. ``valid_until``) or ``valid_days`` from issue.
    ``eligible_tiers`` (comma-separated tier codes) makes it an exclusive offer;
    ``points_price`` lets a member buy it with points.
    """

    __tablename__ = "coupon_template"
    __table_args__ = (
        CheckConstraint("total_limit IS NULL OR issued_count <= total_limit", name="within_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    amount_off_fen: Mapped[int | None] = mapped_column(BigInteger)
    percent_off: Mapped[int | None] = mapped_column(Integer)
    free_service: Mapped[str | None] = mapped_column(String(30))
    min_spend_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)
    total_limit: Mapped[int | None] = mapped_column(Integer)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    eligible_tiers: Mapped[str | None] = mapped_column(String(200))
    points_price: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Coupon(Base):
    """One coupon issued to one customer, with its unique human-readable code.

    Redeemed once (a conditional UPDATE from ``issued``), voided with a reason, or expired
    by the daily job. (template, customer, source_key) is unique: issuing again for the
    same reason returns the coupon already issued.
    """

    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("template_id", "customer_id", "source_key", name="uq_coupon_issue"),
        Index("ix_coupon_customer_status", "customer_id", "status"),
        Index("ix_coupon_status_valid_until", "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_template.id", ondelete="RESTRICT"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    source_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), default="issued")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_ref: Mapped[str | None] = mapped_column(String(80))
    redeemed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    discount_fen: Mapped[int | None] = mapped_column(BigInteger)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(String(300))
    voided_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
