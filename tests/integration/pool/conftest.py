"""Fixtures of the pool tests: Shanghai wall-clock moments, customers in the pool, the
policy, contracts and follow-ups written straight to their tables (exact dates)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.interactions.models import Interaction
from guanxi.pool.policy import PoolPolicy, save_policy
from guanxi.shipments.models import Shipment

SH = ZoneInfo("Asia/Shanghai")
TZ = "Asia/Shanghai"
_serial = itertools.count(1)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall-clock moment."""
    return datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Notices by e-mail read the process settings (base URL); in development that writes
    a key file under the data directory: keep it in the test's tmp."""
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def policy(db: Session, make_user: Any) -> Any:
    """``policy(**fields)`` saves the pool policy (as a sales manager)."""
    boss = make_user("manager", display_name="销售主管")

    def do(**fields: Any) -> PoolPolicy:
        return save_policy(db, policy=PoolPolicy(**fields), actor=boss)

    return do


@pytest.fixture
def follow_up(db: Session) -> Any:
    """``follow_up(customer_id, user_id, at)`` logs a contact at ``at``."""

    def do(customer_id: int, user_id: int, at: datetime) -> None:
        db.add(
            Interaction(
                customer_id=customer_id,
                kind="call",
                occurred_at=at,
                user_id=user_id,
                summary="回访",
                created_at=at,
            )
        )
        db.commit()

    return do


@pytest.fixture
def ship(db: Session) -> Any:
    """``ship(customer_id, at)`` records a shipment at ``at``."""

    def do(customer_id: int, at: datetime) -> None:
        db.add(
            Shipment(
                waybill_no=f"PL{next(_serial):010d}",
                customer_id=customer_id,
                status="delivered",
                fee_fen=1200,
                created_at=at,
            )
        )
        db.commit()

    return do


@pytest.fixture
def contract(db: Session) -> Any:
    """``contract(customer_id, status, end, ended_on=None)`` writes a contract row."""
    from guanxi.contracts.models import Contract

    def do(customer_id: int, status: str, end: date, ended_on: date | None = None) -> int:
        row = Contract(
            number=f"HT{next(_serial):08d}",
            customer_id=customer_id,
            title="年度协议",
            status=status,
            start_date=date(2025, 1, 1),
            end_date=end,
            ended_on=ended_on,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        db.add(row)
        db.commit()
        return int(row.id)

    return do
