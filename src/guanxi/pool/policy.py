"""The pool policy a sales manager sets: the daily claim cap per salesperson, when owned
customers return to the pool (no follow-up for N days; M days after the last contract
ended), how many days ahead the owner is warned, and which customers never return
(those carrying an exempt tag, e.g. key accounts).

Stored as one JSON document (``pool_setting`` key ``policy``) and saved whole through
:func:`guanxi.audit.service.save_setting` (audited with the parts that changed).
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

import guanxi.pool.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import save_setting
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.customers.models import Tag
from guanxi.pool.models import PoolSetting
from guanxi.security.models import User
from guanxi.security.service import actor_of

POLICY_KEY = "policy"

TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class PoolPolicy(BaseModel):
    """The pool's rules; ``None`` for a return rule switches it off."""

    model_config = ConfigDict(extra="forbid")

    # Customers one salesperson may claim per local day (assignments by a manager are free).
    daily_cap: Annotated[int, Field(ge=1, le=500)] = 10
    # Back to the pool after this many days without a follow-up logged by the owner,
    # counted from the later of the claim (or assignment) and the last follow-up.
    no_follow_up_days: Annotated[int | None, Field(ge=1, le=730)] = 30
    # Back to the pool this many days after the last contract ended with no active one.
    contract_ended_days: Annotated[int | None, Field(ge=0, le=730)] = 30
    # The owner is told this many days before a return (0: told when it happens).
    warn_days: Annotated[int, Field(ge=0, le=60)] = 3
    # Only customers taken from the pool (claimed or assigned) return; customers owned
    # before the pool was used stay where they are.
    only_from_pool: bool = False
    # Customers with any of these tags never return on their own.
    exempt_tags: Annotated[list[TagName], Field(max_length=20)] = []


def load_policy(session: Session) -> PoolPolicy:
    """The saved policy, or the defaults."""
    raw = session.scalar(select(PoolSetting.value).where(PoolSetting.key == POLICY_KEY))
    return PoolPolicy() if raw is None else PoolPolicy.model_validate(json.loads(raw))


def save_policy(session: Session, *, policy: PoolPolicy, actor: User) -> PoolPolicy:
    """Replace the policy (sales managers); audited as ``pool.policy_changed``.

    An exempt tag must exist: a misspelt tag would silently exempt nobody.
    """
    policy = policy.model_copy(update={"exempt_tags": list(dict.fromkeys(policy.exempt_tags))})
    with write_transaction(session):
        known = set(session.scalars(select(Tag.name).where(Tag.name.in_(policy.exempt_tags))))
        errors = [
            FieldError(
                ("exempt_tags", i), "pool_tag_unknown", f"No customer has the tag {t}", {"tag": t}
            )  # fmt: skip
            for i, t in enumerate(policy.exempt_tags)
            if t not in known
        ]
        if errors:
            raise ValidationFailed(errors)
        save_setting(
            session,
            model=PoolSetting,
            key=POLICY_KEY,
            text=policy.model_dump_json(),
            actor=actor_of(actor),
            user_id=actor.id,
            action="pool.policy_changed",
        )
    return policy
