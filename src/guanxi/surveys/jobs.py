"""The surveys' periodic work for ``guanxi worker``: invitations after delivery and the
relationship survey, the one reminder, and follow-up tickets a crash left unopened.

Every job is idempotent and safe to run on two workers at once (see triggers.py and
responses.py for how).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.surveys import followups, triggers
from guanxi.surveys.policy import load_policy

log = logging.getLogger("guanxi.surveys")


def invitations(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Delivery sample, relationship survey, reminders: one round."""
    moment = now or clock.now()
    policy = load_policy(session)
    delivery = triggers.invite_after_delivery(session, now=moment, policy=policy)
    relationship = triggers.invite_relationship(session, now=moment, policy=policy)
    reminded = triggers.send_reminders(session, now=moment, policy=policy)
    figures = {
        "delivery_invited": delivery.invited,
        "delivery_skipped_recent": delivery.skipped_recent,
        "relationship_invited": relationship.invited,
        "reminders": reminded,
    }
    log.info("survey invitations: %s", figures)
    return figures


def follow_ups(session: Session) -> dict[str, int]:
    """Open the detractor follow-up tickets still pending (their answer's own attempt
    failed or its process died before trying)."""
    opened = failed = 0
    for response_id in followups.pending_follow_ups(session):
        try:
            if followups.open_follow_up(session, response_id) is not None:
                opened += 1
        except Exception:
            session.rollback()
            failed += 1
            log.exception("survey %s: follow-up ticket not opened", response_id)
    return {"opened": opened, "failed": failed}


def run_invitations(engine: Engine) -> dict[str, Any]:
    """Worker entry: one round of :func:`invitations` in a session of its own."""
    with make_sessionmaker(engine)() as session:
        return invitations(session)


def run_follow_ups(engine: Engine) -> dict[str, int]:
    """Worker entry: :func:`follow_ups` in a session of its own."""
    with make_sessionmaker(engine)() as session:
        return follow_ups(session)
