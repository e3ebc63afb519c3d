"""The periodic job of contracts (``guanxi worker``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from guanxi.contracts.renewals import run_daily


def contracts_daily(
    session_factory: Callable[[], Session], *, now: datetime, timezone: str, language: str
) -> dict[str, int]:
    """Expire (or renew) contracts past their end and remind owners of those ending soon,
    for the site's local day of ``now`` (idempotent: safe hourly and on many workers)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    with session_factory() as session:
        return run_daily(session, today=today, language=language).figures()
