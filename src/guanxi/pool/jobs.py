"""The periodic job of the customer pool (``guanxi worker``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from guanxi.pool.returns import run_returns


def pool_daily(
    session_factory: Callable[[], Session], *, now: datetime, timezone: str, language: str
) -> dict[str, Any]:
    """Warn owners and return neglected customers to the pool (idempotent: a second run on
    the same day finds nothing new to do)."""
    with session_factory() as session:
        return run_returns(session, now=now, timezone=timezone, language=language).figures()
