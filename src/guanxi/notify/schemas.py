"""JSON shapes of the e-mail outbox (administrators' view)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from guanxi.notify.outbox import OutboxStatus


class OutboxRead(BaseModel):
    """A queued e-mail; the address is masked, ``last_error`` never contains one."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    key: str
    to: str
    subject: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class OutboxPage(BaseModel):
    """One page of the outbox, newest first; ``next_before`` fetches the next page."""

    items: list[OutboxRead]
    next_before: int | None
