"""The periodic jobs of campaigns (``guanxi worker``): launch scheduled campaigns when
their send time comes (and resume a launch whose process died), and refresh the
conversions of campaigns whose attribution window is open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from guanxi.campaigns.launch import due_campaigns, launch
from guanxi.campaigns.tracking import campaigns_to_refresh, refresh_conversions
from guanxi.core.errors import DomainError

log = logging.getLogger(__name__)


def launch_due(session_factory: Callable[[], Session], *, now: datetime) -> dict[str, Any]:
    """Launch every campaign whose send time has come (idempotent: a launched campaign is
    not due again; a resumed one queues only what is missing)."""
    launched = queued = 0
    with session_factory() as session:
        ids = due_campaigns(session, now)
        session.commit()
        for campaign_id in ids:
            try:
                result = launch(session, campaign_id=campaign_id, now=now)
            except DomainError as exc:  # stopped meanwhile, or edited: the next run decides
                session.rollback()
                log.warning("campaign %s not launched: %s", campaign_id, exc.message)
                continue
            launched += 1
            queued += result.queued
    return {"launched": launched, "queued": queued}


def refresh_all(session_factory: Callable[[], Session], *, now: datetime) -> dict[str, int]:
    """Recompute the conversions of campaigns whose attribution window is open (or just
    closed)."""
    campaigns = converted = 0
    with session_factory() as session:
        ids = campaigns_to_refresh(session, now)
        session.commit()
        for campaign_id in ids:
            converted += refresh_conversions(session, campaign_id=campaign_id, now=now)
            campaigns += 1
    return {"campaigns": campaigns, "converted": converted}
