"""The worker's outbox job: send what is due on every channel, batch after batch, until
nothing is due or the run's time budget is spent (the next run carries on)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.notify import unsubscribe
from guanxi.notify.mail import SmtpMailer
from guanxi.notify.sender import SendResult, send_due
from guanxi.notify.sms import SmsGateway, gateway_from_settings

# Gateways hold an HTTP connection pool: one per settings object, kept for the process.
_gateways: dict[int, tuple[Settings, SmsGateway]] = {}


def gateway_for(settings: Settings) -> SmsGateway:
    """The process's SMS gateway for ``settings`` (built once)."""
    cached = _gateways.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, gateway_from_settings(settings))
        _gateways[id(settings)] = cached
    return cached[1]


def run_outbox(
    engine: Engine, settings: Settings, *, batch: int = 500, budget_seconds: float = 25.0
) -> dict[str, Any]:
    """Send due e-mails, texts and webhook deliveries in batches of ``batch`` until a
    batch finds less than a full load or ``budget_seconds`` have passed. Idempotent and
    safe on several workers at once (each message is claimed by one)."""
    unsubscribe.configure(settings)
    sessions = make_sessionmaker(engine)
    mailer = SmtpMailer.from_settings(settings)
    sms = gateway_for(settings)
    total = SendResult()
    started = time.monotonic()
    while True:
        result = send_due(sessions, mailer=mailer, sms=sms, now=clock.now(), limit=batch)
        for name, value in result.figures().items():
            if name == "waiting":
                total.waiting = max(total.waiting, value)
            else:
                setattr(total, name, getattr(total, name) + value)
        handled = result.sent + result.retrying + result.failed + result.cancelled + result.deferred
        if handled + result.skipped < batch or time.monotonic() - started > budget_seconds:
            break
    return total.figures()
