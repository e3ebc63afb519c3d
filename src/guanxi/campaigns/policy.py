"""The campaign policy: the campaigns' own marketing frequency cap.

Decision: campaigns do not share care's cap. Care greetings (birthday, festival, win-back)
are service-like courtesies planned daily with their own cap over sources ``care:``; a
campaign is a one-off push a marketer decides on, and putting both under one counter
would let a festival greeting silently remove customers from a measured campaign (or a
campaign starve the birthday greeting). So campaigns have their own cap, counted over
outbox sources ``campaign:`` (notify's ``sent_counts``): a customer who already had
``cap_count`` campaign messages within ``cap_days`` days is left out of a new campaign's
snapshot — of both the treated and the control group, so the comparison stays fair.
Consent and quiet hours stay notify's: consent is re-checked when each message is sent,
and an SMS due in the quiet hours waits for their end.

Stored as one JSON document (``campaign_setting`` key ``policy``), saved whole through
:func:`guanxi.audit.service.save_setting`.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import save_setting
from guanxi.campaigns.models import CampaignSetting
from guanxi.core.db import write_transaction
from guanxi.security.models import User
from guanxi.security.service import actor_of

POLICY_KEY = "policy"
SOURCE_PREFIX = "campaign:"


class CampaignPolicy(BaseModel):
    """Campaigns' shared settings."""

    model_config = ConfigDict(extra="forbid")

    # At most cap_count campaign messages per customer within cap_days days.
    cap_count: Annotated[int, Field(ge=1, le=50)] = 4
    cap_days: Annotated[int, Field(ge=1, le=365)] = 30


def load_policy(session: Session) -> CampaignPolicy:
    """The saved policy, or the defaults."""
    raw = session.scalar(select(CampaignSetting.value).where(CampaignSetting.key == POLICY_KEY))
    return CampaignPolicy() if raw is None else CampaignPolicy.model_validate(json.loads(raw))


def save_policy(session: Session, *, policy: CampaignPolicy, actor: User) -> CampaignPolicy:
    """Replace the policy (audited with the parts that changed)."""
    with write_transaction(session):
        save_setting(
            session,
            model=CampaignSetting,
            key=POLICY_KEY,
            text=policy.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="campaign.policy_changed",
        )
    return policy
