"""Tracking a campaign's effect: clicks on its tracked links and conversions.

A treated recipient's messages carry ``<base>/c/<code>``: 96 random bits, so a code can
neither be guessed nor enumerated, and each belongs to one recipient, so a click is
attributed. The public page records the click and redirects to the campaign's target URL.
A recipient's first click calls the registered response listeners (the sales pipeline
makes a lead of it) in the same transaction.

Conversions: a recipient's shipments created within the attribution window after the
campaign's start (its send time, or when it was launched) — the same window for the
control group, who got no message, so the groups compare like with like. Revenue is the
shipments' fees. :func:`refresh_conversions` recomputes them (a periodic job while the
window is open, and once after it closes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.schemas import CampaignStatus
from guanxi.core import clock
from guanxi.core.db import write_transaction

# fn(session, campaign_id, customer_id), called inside the click's transaction.
ResponseListener = Callable[[Session, int, int], None]
_listeners: list[ResponseListener] = []
_CODE = re.compile(r"^[A-Za-z0-9_-]{16}$")


def register_response_listener(fn: ResponseListener) -> None:
    """Call ``fn(session, campaign_id, customer_id)`` on each recipient's first click, in
    the click's transaction (registered once, at start-up, in ``guanxi.domains``)."""
    if fn not in _listeners:
        _listeners.append(fn)


@dataclass(frozen=True)
class Click:
    """A recorded click: where to send the visitor, and whether it was the first."""

    campaign_id: int
    customer_id: int
    target_url: str
    first: bool


def record_click(session: Session, *, code: str, now: datetime | None = None) -> Click | None:
    """Record a click on the tracked link ``code``; None for a malformed or unknown code."""
    if not _CODE.match(code):
        return None
    now = now or clock.now()
    with write_transaction(session):
        row = session.execute(
            select(
                CampaignRecipient.campaign_id,
                CampaignRecipient.customer_id,
                CampaignRecipient.first_click_at,
                Campaign.target_url,
            )
            .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            .where(CampaignRecipient.code == code)
        ).first()
        if row is None:
            return None
        campaign_id, customer_id, first_at, target = row
        first = first_at is None
        session.execute(
            update(CampaignRecipient)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.customer_id == customer_id,
            )
            .values(
                clicks=CampaignRecipient.clicks + 1,
                **({"first_click_at": now} if first else {}),
            )
            .execution_options(synchronize_session=False)
        )
        if first:
            for listener in list(_listeners):
                listener(session, campaign_id, customer_id)
    return Click(campaign_id, customer_id, target, first)


def window(campaign: Campaign) -> tuple[datetime, datetime] | None:
    """The attribution window ``[start, end)`` of a launched campaign (None before)."""
    from guanxi.campaigns.launch import start_of

    if campaign.launched_at is None:
        return None
    start = start_of(campaign)
    return start, start + timedelta(days=campaign.attribution_days)


def refresh_conversions(session: Session, *, campaign_id: int, now: datetime | None = None) -> int:
    """Recompute the recipients' conversions and revenue from the shipments in the
    attribution window (so far); how many recipients converted."""
    from guanxi.shipments.service import revenue_by_customer

    now = now or clock.now()
    with write_transaction(session):
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return 0
        span = window(campaign)
        if span is None:
            return 0
        start, end = span
        members = select(CampaignRecipient.customer_id).where(
            CampaignRecipient.campaign_id == campaign_id
        )
        found = revenue_by_customer(session, customers=members, since=start, until=min(end, now))
        r = CampaignRecipient
        # Those no longer converted (a shipment moved to another customer) go back to 0.
        stale = [
            cid
            for cid in session.scalars(
                select(r.customer_id).where(r.campaign_id == campaign_id, r.conversions > 0)
            )
            if cid not in found
        ]
        params = [{"cid": cid, "n": n, "fen": fen} for cid, (n, fen) in found.items()]
        params += [{"cid": cid, "n": 0, "fen": 0} for cid in stale]
        if params:
            session.connection().execute(
                update(r)
                .where(r.campaign_id == campaign_id, r.customer_id == bindparam("cid"))
                .values(conversions=bindparam("n"), revenue_fen=bindparam("fen")),
                params,
            )
        campaign.conversions_at = now
    return len(found)


def campaigns_to_refresh(session: Session, now: datetime) -> list[int]:
    """Launched campaigns whose attribution window is open, or closed since the last
    refresh (one last pass completes it)."""
    out: list[int] = []
    for campaign in session.scalars(
        select(Campaign).where(
            Campaign.status.in_([CampaignStatus.launched.value, CampaignStatus.stopped.value]),
            Campaign.launched_at.is_not(None),
        )
    ):
        span = window(campaign)
        if span is None:
            continue
        done = campaign.conversions_at is not None and campaign.conversions_at >= span[1]
        if not done:
            out.append(campaign.id)
    return out
