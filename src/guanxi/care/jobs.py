"""The periodic job of customer-care automation (``guanxi worker``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from guanxi.care.run import run_if_due


def care_daily(
    session_factory: Callable[[], Session], *, now: datetime, timezone: str
) -> dict[str, Any]:
    """Run today's care rules once their send time has come (idempotent: each rule runs
    once a day, whichever worker gets there first)."""
    with session_factory() as session:
        result = run_if_due(session, now=now, timezone=timezone)
    return result.figures() if result is not None else {}
