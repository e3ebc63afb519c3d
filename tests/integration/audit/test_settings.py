"""Saving a JSON settings document through ``save_setting``: the stored row and its audit
entry — the top-level keys that changed by default, the whole documents for the contract
and data-subject request policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, save_setting
from guanxi.contracts import service as contracts
from guanxi.contracts.models import ContractSetting
from guanxi.contracts.schemas import ContractPolicy
from guanxi.privacy import service as privacy
from guanxi.privacy.models import PrivacySetting
from guanxi.privacy.schemas import RequestPolicy


def _entries(db: Session, action: str) -> list[tuple[Any, ...]]:
    rows = db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    return [(e.actor_id, e.target_type, e.target_id, e.before, e.after) for e in rows]


def test_only_the_keys_that_changed_are_audited(db: Session) -> None:
    actor = Actor(None, "test")
    for text in ('{"a":1,"b":2}', '{"a":1,"b":3}', '{"a":1,"b":3}'):
        save_setting(
            db, model=PrivacySetting, key="k", text=text, actor=actor, user_id=None, action="t.set"
        )  # fmt: skip
    assert db.scalars(select(PrivacySetting.value)).all() == ['{"a":1,"b":3}']
    assert _entries(db, "t.set") == [
        (None, "privacy_setting", "k", None, {"a": 1, "b": 2}),
        (None, "privacy_setting", "k", {"b": 2}, {"b": 3}),
        # Saved unchanged: an entry with nothing in it.
        (None, "privacy_setting", "k", {}, {}),
    ]


# The policies audited whole: how to save one, its model, row, key, action, and two
# policies to save one after the other.
WHOLE = [
    pytest.param(
        contracts.save_policy, ContractPolicy, ContractSetting, "policy",
        "contract.policy_changed", {"reminder_days": 45}, {"reminder_days": 45},
        id="contracts",
    ),
    pytest.param(
        privacy.save_policy, RequestPolicy, PrivacySetting, "requests",
        "privacy.policy_changed", {"due_working_days": 10},
        {"due_working_days": 10, "warn_working_days": 2},
        id="privacy",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("save", "schema", "model", "key", "action", "first", "second"), WHOLE)
def test_a_policy_audited_whole(
    db: Session,
    make_user: Any,
    save: Callable[..., BaseModel],
    schema: type[BaseModel],
    model: type[Any],
    key: str,
    action: str,
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    user = make_user("admin")
    defaults = schema().model_dump()
    one, two = schema.model_validate(first), schema.model_validate(second)
    assert save(db, policy_in=one, actor=user) == one
    # Saving the same or a changed policy is audited with both documents whole.
    save(db, policy_in=two, actor=user)
    row = db.scalars(select(model)).one()
    assert (row.key, row.value, row.updated_by) == (key, two.model_dump_json(), user.id)
    assert _entries(db, action) == [
        # Before the first save the defaults were in force.
        (user.id, model.__tablename__, key, defaults, one.model_dump()),
        (user.id, model.__tablename__, key, one.model_dump(), two.model_dump()),
    ]


def test_a_stored_policy_missing_a_setting_is_audited_with_its_default(
    db: Session, make_user: Any
) -> None:
    # A document saved before a setting existed: the before shows the default in force.
    officer = make_user("privacy_officer")
    db.add(PrivacySetting(key="requests", value='{"due_working_days":20}'))
    db.commit()
    privacy.save_policy(db, policy_in=RequestPolicy(due_working_days=12), actor=officer)
    assert _entries(db, "privacy.policy_changed") == [
        (
            officer.id,
            "privacy_setting",
            "requests",
            {"due_working_days": 20, "warn_working_days": 3},
            {"due_working_days": 12, "warn_working_days": 3},
        )
    ]
