"""The survey policy an administrator sets: which triggers send which template, sampling
rates, the per-customer gap, link expiry, the reminder delay, the outlet pages' rate limit
and the named campaign dates the before / after comparison offers.

Stored as one validated JSON document (``survey_setting`` key ``policy``); defaults are
issue #6's (links valid 14 days, one reminder after 3 days, at most one delivery or
relationship survey per customer per 30 days).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Self

from limits import parse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import save_setting
from guanxi.core.db import write_transaction
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.surveys.models import SurveySetting

POLICY_KEY = "policy"

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Rate = Annotated[float, Field(ge=0, le=1)]


class Milestone(BaseModel):
    """A named date to compare before and after (a campaign, a new process going live)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    on: date


class SurveyPolicy(BaseModel):
    """Every survey rule, validated together."""

    model_config = ConfigDict(extra="forbid")

    # A link is valid this many days; the one reminder goes this many days after the
    # invitation to those who have not answered (and only while the link is still valid).
    expiry_days: int = Field(default=14, ge=1, le=90)
    reminder_after_days: int = Field(default=3, ge=1, le=60)
    # After a ticket is resolved (replaces the service desk's 1-5 check).
    after_ticket: bool = True
    after_ticket_template: Code = "after_ticket"
    # After delivery: this share of the shipments delivered in the last day is sampled.
    after_delivery: bool = True
    delivery_rate: Rate = 0.05
    delivery_template: Code = "after_delivery"
    # A customer gets at most one delivery or relationship survey per this many days
    # (counting every survey sent to them, a ticket's included).
    min_days_between: int = Field(default=30, ge=0, le=365)
    # The periodic relationship survey: every ``relationship_months`` months (3: each
    # quarter) to this share of the customers who shipped in the last
    # ``relationship_active_days`` days.
    relationship: bool = True
    relationship_months: int = Field(default=3, ge=1, le=12)
    relationship_rate: Rate = 0.1
    relationship_active_days: int = Field(default=180, ge=7, le=730)
    relationship_template: Code = "relationship"
    # Answers per client address on an outlet's QR page ("N/period", the limits syntax).
    outlet_limit: Annotated[str, StringConstraints(max_length=40)] = "10/hour"
    milestones: list[Milestone] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reminder_after_days >= self.expiry_days:
            raise ValueError("reminder_after_days: must be less than expiry_days")
        try:
            parse(self.outlet_limit)
        except ValueError:
            raise ValueError("outlet_limit: use a rate like 10/hour") from None
        return self


def load_policy(session: Session) -> SurveyPolicy:
    """The stored policy, or the defaults when none was saved."""
    raw = session.scalar(select(SurveySetting.value).where(SurveySetting.key == POLICY_KEY))
    if raw is None:
        return SurveyPolicy()
    return SurveyPolicy.model_validate(json.loads(raw))


def save_policy(session: Session, *, policy: SurveyPolicy, actor: User) -> SurveyPolicy:
    """Replace the survey policy; audited with what changed."""
    with write_transaction(session):
        save_setting(
            session,
            model=SurveySetting,
            key=POLICY_KEY,
            text=policy.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="survey.policy_saved",
        )
    return load_policy(session)
