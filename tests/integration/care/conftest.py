"""Fixtures of the care tests: customers with consents, rules switched on, and the outbox
rows a run leaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.care import service
from guanxi.care.models import CareRule
from guanxi.care.schemas import CareRuleIn
from guanxi.core.db import write_transaction
from guanxi.customers.consent import Purpose, grant_many
from guanxi.notify.models import OutboxMessage

SH = ZoneInfo("Asia/Shanghai")
MARKETING = [Purpose.marketing_sms, Purpose.marketing_email]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall-clock moment."""
    return datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The care services read the process settings (timezone); in development that writes
    a key file under the data directory: keep it in the test's tmp."""
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin")


@pytest.fixture
def grant(db: Session) -> Any:
    """Grant consents to customers (default: both marketing purposes)."""

    def do(*customers: Any, purposes: list[Purpose] | None = None) -> None:
        with write_transaction(db):
            grant_many(
                db,
                [c.id for c in customers],
                purposes or MARKETING,
                source="demo",
                at=datetime(2026, 1, 1, tzinfo=UTC),
            )

    return do


BIRTHDAY = {
    "name": "生日祝福",
    "kind": "birthday",
    "channel": "sms_or_email",
    "sms_template": "care_birthday",
    "subject_zh": "生日快乐",
    "body_zh": "{{ name }}，{{ company }}祝您生日快乐！",
    "subject_en": "Happy birthday",
    "body_en": "Happy birthday, {{ name }}! — {{ company }}",
    "send_time": "09:30",
}
FESTIVAL = {
    "name": "中秋问候",
    "kind": "festival",
    "festivals": ["mid_autumn"],
    "channel": "sms_or_email",
    "sms_template": "care_greeting",
    "subject_zh": "中秋快乐",
    "body_zh": "{{ name }}，{{ company }}祝您{{ festival }}快乐！",
    "send_time": "10:00",
}


@pytest.fixture
def make_rule(db: Session, admin: Any) -> Any:
    """Create a rule from ``base`` with changes and switch it on (unless enabled=False)."""

    def do(base: dict[str, Any], *, enabled: bool = True, **changes: Any) -> CareRule:
        rule = service.create_rule(
            db, rule_in=CareRuleIn.model_validate({**base, **changes}), actor=admin
        )
        if enabled:
            rule = service.set_enabled(db, rule_id=rule.id, enabled=True, actor=admin)
        return rule

    return do


def outbox(db: Session, prefix: str = "care:") -> list[OutboxMessage]:
    """The outbox rows queued by care, by customer."""
    db.expire_all()
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.key.startswith(prefix))
            .order_by(OutboxMessage.customer_id, OutboxMessage.key)
        )
    )


def shape(row: OutboxMessage) -> dict[str, Any]:
    """An outbox row's fields a test compares."""
    return {
        "customer_id": row.customer_id,
        "channel": row.channel,
        "category": row.category,
        "template": row.template,
        "params": json.loads(row.params) if row.params else {},
        "subject": row.subject,
        "body": row.body,
        "source": row.source,
    }


def birthday(year: int, month: int, day: int) -> date:
    return date(year, month, day)
