"""Fixtures of the self-service tests (each runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.selfservice.base import SENDER_PHONE, build_shipment


@pytest.fixture
def agent(make_user: Any) -> Any:
    return make_user("agent")


@pytest.fixture
def customer(make_customer: Any) -> Any:
    return make_customer(name="张三丰", phones=[SENDER_PHONE], email="zsf@example.cn")


@pytest.fixture
def shipment(db: Any, agent: Any, customer: Any) -> Any:
    return build_shipment(db, agent, customer)
