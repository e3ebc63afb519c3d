"""The demo's contracts: through the services, every state on show (in force, ending soon
and reminded, amended with a document, terminated, renewed, expired, a draft), a customer
below commitment; loading twice adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.contracts import seed_contracts
from guanxi.demo.generator import generate
from guanxi.notify.models import Notification


def test_demo_contracts(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as session:
        owners = ensure_demo_users(session)
    generate(committed_engine, customers=600, seed=3, owner_ids=owners, duplicate_rate=0.0)
    with clock.frozen(datetime(2026, 11, 20, 2, 0, tzinfo=UTC)), sm() as session:
        demo = seed_contracts(session, seed=3)
        again = seed_contracts(session, seed=3)
        statuses: dict[str, int] = {
            status: n
            for status, n in session.execute(
                select(Contract.status, func.count()).group_by(Contract.status)
            )
        }
        amendments = session.scalar(select(func.count(ContractAmendment.id)))
        files = session.scalar(select(func.count(ContractDocument.id)))
        reminders = session.scalar(
            select(func.count(Notification.id)).where(Notification.kind == "contract_renewal")
        )
    assert again.contracts == 0
    assert demo.contracts == sum(statuses.values())
    # The renewal is the one contract beyond one per customer.
    assert demo.contracts >= 8
    # The renewed one's successor starts after its end: both are in force until then.
    assert statuses == {
        "active": demo.contracts - 3,
        "terminated": 1,
        "expired": 1,
        "draft": 1,
    }
    assert demo.active == statuses["active"]
    # The amendment and the termination are in the history; the signed copy is attached.
    assert (amendments, files) == (2, 1)
    assert demo.reminded == reminders == 3
    assert demo.below >= 1
