"""The demo generator: deterministic, valid identifiers, consistent times, exact counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import Engine, func, select, text
from stdnum.cn import ric, uscc

from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
)
from guanxi.customers.tokens import name_tokens
from guanxi.demo.generator import generate
from guanxi.security.crypto import cipher
from guanxi.shipments.models import Shipment, ShipmentEvent

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def _plain(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "customers": conn.execute(
                text("SELECT id, kind, name, region, source FROM customer ORDER BY id")
            ).all(),
            "shipments": conn.execute(
                text(
                    "SELECT waybill_no, customer_id, fee_fen, weight_g, status, service_type "
                    "FROM shipment ORDER BY id"
                )
            ).all(),
            "phones": [
                cipher().decrypt("phone", v)
                for v in conn.scalars(text("SELECT phone_enc FROM customer_phone ORDER BY id"))
            ],
        }


def test_same_seed_same_data(committed_engine: Engine, tmp_path: Any) -> None:
    from guanxi.core.db import make_engine
    from guanxi.core.migrate import upgrade

    other = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
    upgrade(other)
    first = generate(committed_engine, customers=300, seed=7, now=NOW, chunk_size=120)
    second = generate(other, customers=300, seed=7, now=NOW, chunk_size=120)
    assert (first.customers, first.shipments, first.events) == (
        second.customers,
        second.shipments,
        second.events,
    )
    assert _plain(committed_engine) == _plain(other)
    other.dispose()


def test_invariants_and_counts(committed_engine: Engine) -> None:
    summary = generate(committed_engine, customers=2000, seed=11, now=NOW)
    with committed_engine.connect() as conn:

        def count(model: Any) -> int:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)

        assert summary.customers == count(Customer) == 2000
        assert summary.shipments == count(Shipment)
        assert summary.phones == count(CustomerPhone)
        assert summary.addresses == count(CustomerAddress)
        assert summary.contacts == count(ContactPerson)
        assert summary.events == count(ShipmentEvent)
        assert 7 <= summary.shipments / summary.customers <= 13
        assert (
            conn.scalar(select(func.count(func.distinct(Shipment.waybill_no)))) == summary.shipments
        )

        for kind, enc in conn.execute(select(Customer.kind, Customer.credit_code_enc)):
            if kind == "individual":
                assert enc is None
            else:
                assert uscc.is_valid(cipher().decrypt("credit_code", enc))
        for enc in conn.scalars(
            select(Customer.id_number_enc).where(Customer.id_number_enc.is_not(None))
        ):
            value = cipher().decrypt("id_number", enc)
            assert ric.calc_check_digit(value) == value[-1]
        for enc, last4 in conn.execute(select(CustomerPhone.phone_enc, CustomerPhone.last4)):
            e164 = cipher().decrypt("phone", enc)
            assert phonenumbers.is_valid_number(phonenumbers.parse(e164))
            assert e164.endswith(last4)

        names = dict(conn.execute(select(Customer.id, Customer.name)).all())
        contacts: dict[int, set[str]] = {}
        for cid, cname in conn.execute(select(ContactPerson.customer_id, ContactPerson.name)):
            contacts.setdefault(cid, set()).update(name_tokens(cname))
        stored: dict[int, set[str]] = {}
        for token, cid in conn.execute(select(SearchToken.token, SearchToken.customer_id)):
            stored.setdefault(cid, set()).add(token)
        for cid, name in names.items():
            assert stored.get(cid, set()) == name_tokens(name) | contacts.get(cid, set())

        shipments = conn.execute(
            select(
                Shipment.created_at,
                Shipment.delivered_at,
                Shipment.promised_at,
                Shipment.status,
                Shipment.is_lost,
                Customer.created_at,
            ).join(Customer, Customer.id == Shipment.customer_id)
        ).all()
        for created, delivered, promised, status, lost, since in shipments:
            assert since <= created <= NOW
            assert promised > created
            if lost:
                assert (status, delivered) == ("lost", None)
            if delivered is not None:
                assert delivered >= created
                assert status in ("delivered", "returned")
        late = sum(1 for s in shipments if s[1] is not None and s[1] > s[2])
        assert 0.03 < late / len(shipments) < 0.12


@pytest.mark.parametrize("day", ["2025-11-11", "2026-06-18"])
def test_peaks_beat_ordinary_days(committed_engine: Engine, day: str) -> None:
    generate(committed_engine, customers=3000, seed=5, now=NOW)
    with committed_engine.connect() as conn:
        per_day = dict(
            conn.execute(
                text(
                    "SELECT substr(CAST(created_at AS TEXT), 1, 10) d, COUNT(*) "
                    "FROM shipment GROUP BY d"
                )
            ).all()
        )
    ordinary = sorted(per_day.values())[len(per_day) // 2]
    assert per_day[day] > 1.4 * ordinary
