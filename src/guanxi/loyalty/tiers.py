"""Tier evaluation: upgrade at once, downgrade only after a grace period.

A member's figures are their shipments (not cancelled) in the rolling window
``(now - window_days, now]``: spend in fen and count. Evaluation compares the highest tier
those figures reach with the member's tier:

* higher: upgraded now (a running grace period ends with it);
* the same: nothing, or, while a grace period runs, the downgrade is cancelled;
* lower: the grace period starts now (``downgrade_due_at = now + grace_days``); once it
  has run out the member drops to the tier the figures reach at that moment.

Evaluation runs after each accrual for the members it touched and daily for everyone (a
shipment leaving the window changes nothing else), in chunks of members, each chunk one
transaction. Every change is a ``loyalty_tier_change`` row; upgrades and downgrades are
also sent as the ``loyalty.tier_changed`` webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import table_of, write_transaction
from guanxi.loyalty.enums import TierReason
from guanxi.loyalty.ledger import dialect_of
from guanxi.loyalty.models import LoyaltyMember, TierChange
from guanxi.loyalty.policy import LoyaltyPolicy, load_policy
from guanxi.shipments.enums import ShipmentStatus
from guanxi.shipments.models import Shipment

log = logging.getLogger(__name__)

EVALUATE_CHUNK = 5_000


@dataclass(frozen=True)
class Figures:
    """A member's shipping in the rolling window."""

    spend_fen: int = 0
    shipments: int = 0


def window_figures(
    session: Session, customer_ids: Sequence[int], *, now: datetime, window_days: int
) -> dict[int, Figures]:
    """Spend and shipment count in ``(now - window_days, now]`` per customer."""
    if not customer_ids:
        return {}
    since = now - timedelta(days=window_days)
    rows = session.execute(
        select(Shipment.customer_id, func.sum(Shipment.fee_fen), func.count())
        .where(
            Shipment.customer_id.in_(customer_ids),
            Shipment.created_at > since,
            Shipment.created_at <= now,
            Shipment.status != ShipmentStatus.cancelled.value,
        )
        .group_by(Shipment.customer_id)
    )
    return {int(cid): Figures(int(spend or 0), int(n)) for cid, spend, n in rows}


@dataclass(frozen=True)
class Decision:
    """What evaluation does to one member."""

    reason: TierReason
    to_tier: str
    downgrade_due_at: datetime | None
    changes_tier: bool


def decide(
    policy: LoyaltyPolicy,
    *,
    tier: str,
    downgrade_due_at: datetime | None,
    figures: Figures,
    now: datetime,
) -> Decision | None:
    """The rule of the module docstring for one member; None when nothing changes."""
    qualified = policy.qualified(figures.spend_fen, figures.shipments)
    if policy.tier(tier) is None:
        # The tier left the policy: the member takes the tier they qualify for at once.
        return Decision(TierReason.downgrade, qualified.code, None, True)
    have, reach = policy.rank(tier), policy.rank(qualified.code)
    if reach > have:
        return Decision(TierReason.upgrade, qualified.code, None, True)
    if reach == have:
        if downgrade_due_at is not None:
            return Decision(TierReason.grace_cancelled, tier, None, False)
        return None
    if downgrade_due_at is None and policy.grace_days > 0:
        due = now + timedelta(days=policy.grace_days)
        return Decision(TierReason.grace_started, qualified.code, due, False)
    if downgrade_due_at is None or now >= downgrade_due_at:
        return Decision(TierReason.downgrade, qualified.code, None, True)
    return None


@dataclass
class EvaluationResult:
    """Counts of one evaluation run."""

    members: int = 0
    upgrades: int = 0
    downgrades: int = 0
    grace_started: int = 0
    grace_cancelled: int = 0

    def figures(self) -> dict[str, int]:
        """For the worker's log and the CLI."""
        return {
            "members": self.members,
            "upgrades": self.upgrades,
            "downgrades": self.downgrades,
            "grace_started": self.grace_started,
            "grace_cancelled": self.grace_cancelled,
        }

    def add(self, other: EvaluationResult) -> None:
        """Sum another chunk's counts into this one."""
        self.members += other.members
        self.upgrades += other.upgrades
        self.downgrades += other.downgrades
        self.grace_started += other.grace_started
        self.grace_cancelled += other.grace_cancelled


def evaluate_members(
    session: Session, customer_ids: Sequence[int], *, policy: LoyaltyPolicy, now: datetime
) -> EvaluationResult:
    """Evaluate the given members inside the caller's transaction."""
    result = EvaluationResult()
    if not customer_ids:
        return result
    stmt = select(
        LoyaltyMember.customer_id, LoyaltyMember.tier, LoyaltyMember.downgrade_due_at
    ).where(LoyaltyMember.customer_id.in_(customer_ids))
    if dialect_of(session) == "postgresql":
        stmt = stmt.order_by(LoyaltyMember.customer_id).with_for_update()
    members = session.execute(stmt).all()
    figures = window_figures(
        session, [m.customer_id for m in members], now=now, window_days=policy.window_days
    )
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    changed: list[tuple[int, str, str, Figures]] = []
    for cid, tier, due in members:
        result.members += 1
        fig = figures.get(cid, Figures())
        decision = decide(policy, tier=tier, downgrade_due_at=due, figures=fig, now=now)
        if decision is None:
            continue
        row: dict[str, Any] = {"cid": cid, "due": decision.downgrade_due_at}
        row["tier"] = decision.to_tier if decision.changes_tier else tier
        row["since"] = now if decision.changes_tier else None
        updates.append(row)
        history.append(
            {
                "customer_id": cid,
                "from_tier": tier,
                "to_tier": decision.to_tier,
                "reason": decision.reason.value,
                "at": now,
                "spend_fen": fig.spend_fen,
                "shipments": fig.shipments,
            }
        )
        if decision.reason is TierReason.upgrade:
            result.upgrades += 1
        elif decision.reason is TierReason.downgrade:
            result.downgrades += 1
        elif decision.reason is TierReason.grace_started:
            result.grace_started += 1
        else:
            result.grace_cancelled += 1
        if decision.changes_tier:
            changed.append((cid, tier, decision.to_tier, fig))
    if updates:
        member = table_of(LoyaltyMember)
        with_since = [u for u in updates if u["since"] is not None]
        without = [u for u in updates if u["since"] is None]
        if with_since:
            session.execute(
                update(member)
                .where(member.c.customer_id == bindparam("cid"))
                .values(
                    tier=bindparam("tier"),
                    downgrade_due_at=bindparam("due"),
                    tier_since=bindparam("since"),
                ),
                with_since,
            )
        if without:
            session.execute(
                update(member)
                .where(member.c.customer_id == bindparam("cid"))
                .values(tier=bindparam("tier"), downgrade_due_at=bindparam("due")),
                [{k: v for k, v in u.items() if k != "since"} for u in without],
            )
        session.execute(table_of(TierChange).insert(), history)
    _announce(session, changed, policy, now)
    return result


def _announce(
    session: Session,
    changed: list[tuple[int, str, str, Figures]],
    policy: LoyaltyPolicy,
    now: datetime,
) -> None:
    """The ``loyalty.tier_changed`` webhook for each upgrade and downgrade (queued in the
    outbox with the change, sent after commit)."""
    if not changed:
        return
    emit = webhook_emitter()
    if emit is None:
        return
    for cid, before, after, fig in changed:
        queued = emit(
            session,
            "loyalty.tier_changed",
            {
                "customer_id": cid,
                "from_tier": before,
                "to_tier": after,
                "direction": "up" if policy.rank(after) > policy.rank(before) else "down",
                "window_spend_fen": fig.spend_fen,
                "window_shipments": fig.shipments,
                "at": now.isoformat(),
            },
        )
        if not queued:
            # Nobody subscribes to the event: the rest of the chunk need not ask again.
            return


def webhook_emitter() -> Any:
    """``guanxi.notify.webhooks.emit`` (None while the webhooks module is not installed)."""
    try:
        from guanxi.notify.webhooks import emit  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return emit


def evaluate(
    session: Session,
    *,
    now: datetime | None = None,
    customer_ids: Iterable[int] | None = None,
    chunk: int = EVALUATE_CHUNK,
) -> EvaluationResult:
    """Evaluate the given members (every member when None), ``chunk`` members per
    transaction. Idempotent: a second run at the same instant changes nothing."""
    now = now or clock.now()
    policy = load_policy(session)
    total = EvaluationResult()
    if customer_ids is not None:
        ids = sorted(set(customer_ids))
        for i in range(0, len(ids), chunk):
            with write_transaction(session):
                total.add(evaluate_members(session, ids[i : i + chunk], policy=policy, now=now))
        return total
    for page in member_pages(session, chunk):
        with write_transaction(session):
            total.add(evaluate_members(session, page, policy=policy, now=now))
    return total


def member_pages(session: Session, size: int) -> Iterator[list[int]]:
    """Every member's customer id, ascending, ``size`` at a time (the daily jobs' walk).
    Each page is read in a short transaction of its own, ended before the page is
    yielded, so the caller's write transaction per page is the only one open."""
    after = 0
    while True:
        page = list(
            session.scalars(
                select(LoyaltyMember.customer_id)
                .where(LoyaltyMember.customer_id > after)
                .order_by(LoyaltyMember.customer_id)
                .limit(size)
            )
        )
        session.commit()
        if not page:
            return
        yield page
        after = page[-1]
