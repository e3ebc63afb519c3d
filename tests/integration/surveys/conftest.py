"""Fixtures of the survey tests (each runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

MOBILE = "13912345678"


@pytest.fixture
def agent(make_user: Any) -> Any:
    return make_user("agent")


@pytest.fixture
def manager(make_user: Any) -> Any:
    return make_user("manager")


@pytest.fixture
def mobile_customer(make_customer: Any) -> Any:
    """A customer with a mobile number (invited by SMS) and an e-mail address."""
    return make_customer(name="王小明", phones=[MOBILE], email="wxm@example.cn")


@pytest.fixture
def email_customer(make_customer: Any) -> Any:
    """A customer with an e-mail address only (invited by e-mail)."""
    return make_customer(name="李四", email="lisi@example.cn")
