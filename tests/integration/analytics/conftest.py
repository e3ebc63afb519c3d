"""Committed databases for the analytics (the snapshot reads through its own connection,
so savepoint-isolated sessions would show it nothing), and a small row builder."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from guanxi.config import Settings
from guanxi.core.db import make_engine
from guanxi.core.migrate import upgrade
from guanxi.customers.models import Customer
from guanxi.shipments.models import Shipment
from guanxi.tickets.models import Claim, SlaEvent, Ticket
from tests.conftest import _new_pg_database, settings_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    """A Beijing wall-clock moment as aware UTC (how the product stores moments)."""
    return datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


@dataclass
class Rows:
    """Inserts customers, shipments, tickets, SLA events and claims with few words."""

    engine: Engine
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def customer(self, created: datetime, **kw: Any) -> int:
        cid = next(self.ids)
        values = {
            "id": cid,
            "kind": "individual",
            "name": f"客户{cid}",
            "source": "other",
            "status": "active",
            "lifecycle_stage": "customer",
            "created_at": created,
            "updated_at": created,
            "version": 1,
        } | kw
        with self.engine.begin() as conn:
            conn.execute(insert(Customer), [values])
        return cid

    def shipment(self, customer_id: int, created: datetime, fee_fen: int, **kw: Any) -> int:
        sid = next(self.ids)
        values = {
            "id": sid,
            "kind": "waybill",
            "waybill_no": f"GXT{sid:09d}",
            "customer_id": customer_id,
            "service_type": "standard",
            "status": "delivered",
            "fee_fen": fee_fen,
            "insured_value_fen": 0,
            "cod_amount_fen": 0,
            "door_delivery": False,
            "signed_receipt_return": False,
            "is_damaged": False,
            "is_lost": False,
            "created_at": created,
        } | kw
        with self.engine.begin() as conn:
            conn.execute(insert(Shipment), [values])
        return sid

    def ticket(self, customer_id: int | None, created: datetime, **kw: Any) -> int:
        tid = next(self.ids)
        values = {
            "id": tid,
            "type": "complaint",
            "channel": "hotline",
            "customer_id": customer_id,
            "severity": "minor",
            "priority": "normal",
            "subject": "快件延误",
            "status": "closed",
            "created_at": created,
            "updated_at": created,
            "reopened": 0,
            "is_repeat": False,
            "is_major": False,
            "version": 1,
        } | kw
        with self.engine.begin() as conn:
            conn.execute(insert(Ticket), [values])
        return tid

    def breach(self, ticket_id: int, due: datetime, target: str = "resolution") -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(SlaEvent),
                [
                    {
                        "ticket_id": ticket_id,
                        "target": target,
                        "kind": "breach",
                        "due_at": due,
                        "recorded_at": due,
                    }
                ],
            )

    def claim(self, customer_id: int, shipment_id: int, created: datetime, **kw: Any) -> int:
        cid = next(self.ids)
        values = {
            "id": cid,
            "shipment_id": shipment_id,
            "customer_id": customer_id,
            "reason": "damage",
            "insured": False,
            "declared_value_fen": 0,
            "fee_fen": 0,
            "requested_fen": 10_000,
            "standard_fen": 10_000,
            "status": "submitted",
            "created_at": created,
            "version": 1,
        } | kw
        with self.engine.begin() as conn:
            conn.execute(insert(Claim), [values])
        return cid


@dataclass
class AnalyticsDb:
    """A committed database, its settings (own data dir) and a row builder."""

    backend: str
    engine: Engine
    settings: Settings
    rows: Rows

    def in_place(self) -> Settings:
        """The same installation with the analytics run on PostgreSQL in place."""
        return self.settings.model_copy(update={"analytics_engine": "postgres"})


def fresh_analytics_db(backend: str, data_dir: Path) -> Iterator[AnalyticsDb]:
    """A new migrated database of ``backend`` with its own data dir (snapshot, keys)."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{data_dir / 'analytics.db'}")
        upgrade(engine)
        url = engine.url.render_as_string(hide_password=False)
        yield AnalyticsDb("sqlite", engine, settings_for(url, data_dir), Rows(engine))
        engine.dispose()
    else:
        for engine in _new_pg_database():
            url = engine.url.render_as_string(hide_password=False)
            yield AnalyticsDb("postgresql", engine, settings_for(url, data_dir), Rows(engine))


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def analytics_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnalyticsDb]:
    """A fresh database per module and backend; the module fills it once."""
    yield from fresh_analytics_db(request.param, tmp_path_factory.mktemp("analytics"))
