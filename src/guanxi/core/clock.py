"""An injectable clock, so SLA, cadence and expiry logic can be tested at any instant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return _now()


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Make :func:`now` return ``at`` inside the block (tests and replays)."""
    global _now
    if at.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    previous = _now
    _now = lambda: at  # noqa: E731
    try:
        yield
    finally:
        _now = previous
