"""The care policy an administrator sets: the frequency cap across all care rules, the
default send time, and the company name the messages sign with.

Stored as one JSON document (``care_setting`` key ``policy``) and saved whole through
:func:`guanxi.audit.service.save_setting` (audited with the parts that changed). Quiet
hours are not here: they belong to notify, which defers any SMS due inside them; a send
time inside them is refused when a rule or this policy is saved.
"""

from __future__ import annotations

import json
from datetime import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

import guanxi.care.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import save_setting
from guanxi.care.models import CareSetting
from guanxi.care.schemas import local_minutes
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of

POLICY_KEY = "policy"

Company = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class CarePolicy(BaseModel):
    """Care rules' shared settings."""

    model_config = ConfigDict(extra="forbid")

    # At most cap_count care messages per customer within cap_days days, over all rules
    # (thanks after a complaint counts, but is never held back by the cap).
    cap_count: Annotated[int, Field(ge=1, le=50)] = 2
    cap_days: Annotated[int, Field(ge=1, le=365)] = 30
    # Send time of rules that name none (local time).
    default_send_time: time = time(10, 0)
    company_zh: Company = "关系速递"
    company_en: Company = "Guanxi Express"

    @field_validator("default_send_time")
    @classmethod
    def _local(cls, value: time) -> time:
        return local_minutes(value)

    def company(self, lang: str) -> str:
        """The company name in ``lang``."""
        return self.company_zh if lang.startswith("zh") else self.company_en


def load_policy(session: Session) -> CarePolicy:
    """The saved policy, or the defaults."""
    raw = session.scalar(select(CareSetting.value).where(CareSetting.key == POLICY_KEY))
    return CarePolicy() if raw is None else CarePolicy.model_validate(json.loads(raw))


def quiet_error(session: Session, field: str, at: time) -> FieldError | None:
    """A refusal naming ``field`` when ``at`` falls in notify's quiet hours, else None."""
    from guanxi.notify.outbox import quiet_hours

    quiet = quiet_hours(session)
    if not in_quiet_hours(at, quiet.start, quiet.end):
        return None
    params = {
        "time": at.strftime("%H:%M"),
        "start": quiet.start.strftime("%H:%M"),
        "end": quiet.end.strftime("%H:%M"),
    }
    return FieldError(
        (field,),
        "care_quiet_hours",
        "The send time {time} falls in the quiet hours ({start}–{end}); "
        "choose a time outside them".format(**params),
        params,
    )


def in_quiet_hours(at: time, start: time, end: time) -> bool:
    """Whether ``at`` is inside the quiet period [start, end), which may span midnight."""
    if start == end:
        return False
    if start < end:
        return start <= at < end
    return at >= start or at < end


def save_policy(session: Session, *, policy: CarePolicy, actor: User) -> CarePolicy:
    """Replace the policy (administrators); a default send time in quiet hours is refused."""
    with write_transaction(session):
        error = quiet_error(session, "default_send_time", policy.default_send_time)
        if error is not None:
            raise ValidationFailed([error])
        save_setting(
            session,
            model=CareSetting,
            key=POLICY_KEY,
            text=policy.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="care.policy_changed",
        )
    return policy
