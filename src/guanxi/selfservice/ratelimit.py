"""Rate limits of the public self-service page, with the ``limits`` library.

Four budgets, each configurable (``GUANXI_SELFSERVICE_*_LIMIT``, "N/period"):

- lookups per client address (every attempt counts, right or wrong);
- failed lookups per waybill number, whoever makes them: ten wrong guesses of the phone's
  last four digits lock the waybill out of the page for the window. The count is kept for
  any number typed, existing or not, so a refusal says nothing about whether it exists;
- tickets filed per client address;
- messages sent on private ticket pages per client address.

Counters live in process memory (moving windows): a restart forgets them, and each app
server counts on its own, so behind a load balancer of N servers an address gets up to N
times the budget. That is enough to stop guessing (10 000 combinations) and flooding;
see docs/operations.md.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from guanxi.config import Settings
from guanxi.core.i18n import N_

# What the customer reads when refused (HTTP 429, with Retry-After).
TOO_MANY = N_("Too many attempts. Please try again in {minutes} min.")


class RateLimited(Exception):
    """A budget is spent; ``retry_after`` is the number of seconds until it allows again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Budgets:
    """The configured limits, parsed."""

    lookup: RateLimitItem
    failure: RateLimitItem
    filing: RateLimitItem
    message: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> Budgets:
        """Parse the ``selfservice_*_limit`` settings (validated when settings load)."""
        return cls(
            lookup=parse(settings.selfservice_lookup_limit),
            failure=parse(settings.selfservice_failure_limit),
            filing=parse(settings.selfservice_filing_limit),
            message=parse(settings.selfservice_message_limit),
        )


class SelfServiceLimiter:
    """The four budgets of one app process over one in-memory storage."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        return max(1, math.ceil(reset - time.time()))

    def _spend(self, item: RateLimitItem, *keys: str) -> None:
        if not self._limiter.hit(item, *keys):
            raise RateLimited(self._retry_after(item, *keys))

    def lookup(self, client: str) -> None:
        """Count a lookup from ``client``; RateLimited when its budget is spent."""
        self._spend(self.budgets.lookup, "lookup", client)

    def waybill_open(self, waybill_no: str) -> None:
        """RateLimited when ``waybill_no`` had too many failed lookups (counts nothing)."""
        item = self.budgets.failure
        if not self._limiter.test(item, "failure", _norm(waybill_no)):
            raise RateLimited(self._retry_after(item, "failure", _norm(waybill_no)))

    def failed(self, waybill_no: str) -> None:
        """Count a failed lookup of ``waybill_no`` (never raises: the answer is already
        "no match"; the next attempt is the one refused)."""
        self._limiter.hit(self.budgets.failure, "failure", _norm(waybill_no))

    def filing(self, client: str) -> None:
        """Count a ticket filed from ``client``; RateLimited when its budget is spent."""
        self._spend(self.budgets.filing, "filing", client)

    def message(self, client: str) -> None:
        """Count a message sent from ``client``; RateLimited when its budget is spent."""
        self._spend(self.budgets.message, "message", client)

    def survey_outlet(self, limit: str, client: str, outlet: str) -> None:
        """Count an answer from ``client`` on a survey outlet's QR page; RateLimited when
        ``limit`` ("N/period", the survey policy's: it changes without a restart) is spent."""
        self._spend(parse(limit), "survey-outlet", client, outlet)

    def lead_form(self, limit: str, client: str) -> None:
        """Count a request sent from ``client`` through the public sales lead form;
        RateLimited when ``limit`` ("N/period") is spent."""
        self._spend(parse(limit), "lead-form", client)


def _norm(waybill_no: str) -> str:
    return waybill_no.strip().upper()[:40]


_create_lock = threading.Lock()


def limiter_for(request: Request) -> SelfServiceLimiter:
    """The app's limiter, made on first use from the app's settings (one per app, so each
    test app starts with fresh counters)."""
    state = request.app.state
    limiter: SelfServiceLimiter | None = getattr(state, "selfservice_limiter", None)
    if limiter is None:
        with _create_lock:
            limiter = getattr(state, "selfservice_limiter", None)
            if limiter is None:
                limiter = SelfServiceLimiter(Budgets.from_settings(state.settings))
                state.selfservice_limiter = limiter
    return limiter


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the customer's)."""
    return request.client.host if request.client else "unknown"
