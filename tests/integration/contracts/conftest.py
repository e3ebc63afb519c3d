"""Fixtures of the contract tests: salespeople, a manager, enterprise customers each owned
by a salesperson, and a factory of contracts in any state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.contracts import service
from guanxi.contracts.models import Contract
from guanxi.contracts.schemas import ContractCreate


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The contract services read the process settings (timezone, data directory); keep
    the data directory in the test's tmp."""
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def seller(make_user: Any) -> Any:
    return make_user("sales", display_name="王销售")


@pytest.fixture
def manager(make_user: Any) -> Any:
    return make_user("manager", display_name="李经理")


@pytest.fixture
def firm(make_customer: Any, seller: Any) -> Any:
    """An enterprise customer owned by ``seller``."""
    return make_customer("杭州云栖电子商务有限公司", kind="enterprise", owner_id=seller.id)


@pytest.fixture
def make_contract(db: Session, manager: Any) -> Any:
    """A contract of ``customer`` for ``start``..``end`` in ``status`` (draft, active,
    expired, terminated), created and moved there through the service."""

    def factory(
        customer: Any,
        start: date,
        end: date,
        *,
        status: str = "active",
        owner: Any = None,
        actor: Any = None,
        ended_on: date | None = None,
        **terms: Any,
    ) -> Contract:
        who = actor or manager
        contract = service.create_contract(
            db,
            contract_in=ContractCreate(
                customer_id=customer.id,
                owner_id=(owner or who).id,
                title=terms.pop("title", "年度快递服务协议"),
                start_date=start,
                end_date=end,
                **terms,
            ),
            actor=who,
        )
        if status == "draft":
            return contract
        contract = service.activate_contract(
            db, contract_id=contract.id, version=contract.version, actor=who
        )
        if status in ("expired", "renewed"):
            contract.status = status
            contract.ended_on = end
            db.commit()
        elif status == "terminated":
            from guanxi.contracts.schemas import ContractTerminate

            contract = service.terminate_contract(
                db,
                contract_id=contract.id,
                terminate_in=ContractTerminate(
                    ended_on=ended_on or end, reason="客户停业", version=contract.version
                ),
                actor=who,
            )
        return contract

    return factory
