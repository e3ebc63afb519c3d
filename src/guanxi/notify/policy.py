"""Quiet hours: when no service or marketing SMS may reach a phone (default 21:00–08:00
local time). Chinese carriers and the MIIT's rules on commercial SMS frown on texts at
night; a transactional text (a reply to something the customer just did) still goes.

Kept as one validated JSON document (``outbox_setting`` key ``quiet_hours``), edited by
administrators and audited through :func:`guanxi.audit.service.save_setting`. Applied twice:
when a message is queued (its first attempt is pushed to the end of the quiet period) and
when it is sent (a retry that falls into the night waits for the morning).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, save_setting
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxSetting
from guanxi.security.models import User
from guanxi.security.service import actor_of

QUIET_KEY = "quiet_hours"
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class QuietHours:
    """The nightly period without service / marketing SMS, in local time of ``timezone``.

    ``start`` after ``end`` spans midnight (21:00–08:00); ``start == end`` means no quiet
    hours at all.
    """

    start: time = time(21, 0)
    end: time = time(8, 0)
    timezone: str = DEFAULT_TIMEZONE

    @property
    def enabled(self) -> bool:
        """False when start and end coincide (quiet hours switched off)."""
        return self.start != self.end

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls inside the quiet period."""
        if not self.enabled:
            return False
        t = self._local(moment).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def release(self, moment: datetime) -> datetime:
        """``moment`` itself outside the quiet period, else the UTC instant it ends."""
        if not self.contains(moment):
            return moment
        local = self._local(moment)
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        # Built from the wall-clock time, so 08:00 stays 08:00 across a DST change.
        return datetime.combine(day, self.end, tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)


class QuietHoursPolicy(BaseModel):
    """The quiet hours as an administrator edits them (``HH:MM`` strings)."""

    model_config = ConfigDict(extra="forbid")

    start: time = time(21, 0)
    end: time = time(8, 0)
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("start", "end")
    @classmethod
    def _whole_minutes(cls, value: time) -> time:
        if value.second or value.microsecond or value.tzinfo is not None:
            raise PydanticCustomError("quiet_time", "Give a time like 21:00")
        return value

    @model_validator(mode="after")
    def _known_zone(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PydanticCustomError("timezone_unknown", "Unknown time zone") from exc
        return self

    def hours(self) -> QuietHours:
        """The policy as the frozen value the senders use."""
        return QuietHours(self.start, self.end, self.timezone)


@lru_cache(maxsize=8)
def _parse(text: str) -> QuietHours:
    return QuietHoursPolicy.model_validate_json(text).hours()


DEFAULT_QUIET_HOURS = QuietHours()


def quiet_hours(session: Session) -> QuietHours:
    """The quiet hours in force (21:00–08:00 Asia/Shanghai until an administrator saves
    others)."""
    row = session.get(OutboxSetting, QUIET_KEY)
    return DEFAULT_QUIET_HOURS if row is None else _parse(row.value)


def save_quiet_hours(
    session: Session, *, policy: QuietHoursPolicy, actor: User | Actor
) -> QuietHours:
    """Replace the quiet hours; audited with what changed. Messages already queued keep
    their first send time; each one's next attempt is checked against the new hours."""
    text = policy.model_dump_json()
    with write_transaction(session):
        save_setting(
            session,
            model=OutboxSetting,
            key=QUIET_KEY,
            text=text,
            actor=actor if isinstance(actor, Actor) else actor_of(actor),
            user_id=actor.id if isinstance(actor, User) else None,
            action="notify.quiet_hours_saved",
        )
    return _parse(text)
