"""Tables of the pool domain: the pool policy, the pool history and the daily claim counts.

Who owns a customer is the customers domain's column (``customer.owner_id``); the pool keeps
the story of how ownership moved (``pool_event``) and the count that enforces the daily cap.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class PoolSetting(Base):
    """The pool policy as JSON (daily cap, return rules, warning days, exempt tags),
    validated by :class:`guanxi.pool.policy.PoolPolicy`."""

    __tablename__ = "pool_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class PoolEvent(Base):
    """One move of a customer into or out of the pool (公海记录): claimed, released,
    returned (no follow-up / contract ended), assigned — or the warning that a return is
    coming. Who did it (``actor_id``; None for the daily job), from whom, to whom, when.
    """

    __tablename__ = "pool_event"
    __table_args__ = (
        Index("ix_pool_event_customer_time", "customer_id", "occurred_at"),
        Index("ix_pool_event_time", "occurred_at"),
        Index("ix_pool_event_to_user", "to_user_id", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # The owner before and after (a warning names the owner warned in ``to_user_id``).
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    # A warning: the local day the customer returns to the pool and the rule that returns it.
    due_on: Mapped[date | None] = mapped_column(Date)
    rule: Mapped[str | None] = mapped_column(String(32))
    # The ended contract behind a contract-ended warning or return (contracts domain's id;
    # no foreign key: that table comes in a later migration and keeps its own history).
    contract_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))


class PoolClaimDay(Base):
    """How many customers a salesperson claimed on one local day: the row the daily cap is
    enforced on (one conditional UPDATE, so concurrent claims cannot both take the last
    place)."""

    __tablename__ = "pool_claim_day"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
