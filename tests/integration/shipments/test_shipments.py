"""Shipments: creation, timeline, stats, visibility, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.errors import Conflict, NotFound, ValidationFailed
from guanxi.security.crypto import cipher
from guanxi.shipments import service
from guanxi.shipments.enums import ShipmentStatus
from guanxi.shipments.models import Shipment
from guanxi.shipments.schemas import ShipmentCreate, ShipmentEventCreate

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def _ship(db: Session, actor: Any, customer_id: int, no: str, **kw: Any) -> Shipment:
    return service.create_shipment(
        db, shipment_in=ShipmentCreate(waybill_no=no, customer_id=customer_id, **kw), actor=actor
    )


def test_create_with_money_in_fen_and_encrypted_receiver(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="冷链客户")
    shipment = _ship(
        db,
        agent,
        customer.id,
        "sf1234567890",
        service_type="cold_chain",
        weight_g=2500,
        fee_fen=3850,
        insured_value_fen=200000,
        cod_amount_fen=9900,
        door_delivery=True,
        signed_receipt_return=True,
        receiver_name="王五",
        receiver_phone="+86 138 0013 8000",
        dest_province="上海市",
        dest_city="上海市",
        dest_district="浦东新区",
        created_at=T0,
        promised_at=T0 + timedelta(days=1),
    )
    assert shipment.waybill_no == "SF1234567890"
    assert (shipment.fee_fen, shipment.insured_value_fen, shipment.cod_amount_fen) == (
        3850,
        200000,
        9900,
    )
    assert cipher().decrypt("phone", shipment.receiver_phone_enc or "") == "+8613800138000"
    read = service.to_read(shipment)
    assert read.receiver_phone == "138****8000"
    assert [e.status for e in read.events] == [ShipmentStatus.created]


def test_timeline_delivery_and_lateness(db: Session, make_user: Any, make_customer: Any) -> None:
    agent = make_user("agent")
    customer = make_customer(name="电商客户")
    s = _ship(
        db, agent, customer.id, "GX000000000010", created_at=T0, promised_at=T0 + timedelta(days=2)
    )
    service.add_event(
        db,
        shipment_id=s.id,
        event_in=ShipmentEventCreate(
            status="picked_up", occurred_at=T0 + timedelta(hours=1), location="杭州转运中心"
        ),
        actor=agent,
    )
    done = service.add_event(
        db,
        shipment_id=s.id,
        event_in=ShipmentEventCreate(status="delivered", occurred_at=T0 + timedelta(days=3)),
        actor=agent,
    )
    assert done.status == "delivered"
    assert done.delivered_at == T0 + timedelta(days=3)
    assert [e.status for e in done.events] == ["created", "picked_up", "delivered"]
    assert service.is_late(done) is True
    on_time = _ship(
        db,
        agent,
        customer.id,
        "GX000000000011",
        created_at=T0,
        promised_at=T0 + timedelta(days=2),
        delivered_at=T0 + timedelta(days=1),
        status="delivered",
    )
    assert service.is_late(on_time) is False
    with clock.frozen(T0 + timedelta(days=5)):
        pending = _ship(
            db,
            agent,
            customer.id,
            "GX000000000012",
            created_at=T0,
            promised_at=T0 + timedelta(days=2),
        )
        assert service.is_late(pending) is True
    stats = service.customer_stats(db, customer_id=customer.id)
    assert (stats.count, stats.fee_total_fen, stats.late, stats.damaged, stats.lost) == (
        3,
        0,
        1,
        0,
        0,
    )
    assert stats.first_at == T0


def test_duplicate_waybill_conflicts_and_leaves_one_row(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="重复单号")
    _ship(db, agent, customer.id, "GX000000000099", fee_fen=100)
    with pytest.raises(Conflict):
        _ship(db, agent, customer.id, "gx000000000099", fee_fen=200)
    assert (
        db.scalar(
            select(func.count())
            .select_from(Shipment)
            .where(Shipment.waybill_no == "GX000000000099")
        )
        == 1
    )


def test_delivery_before_creation_is_refused(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="时间错误")
    with pytest.raises(ValidationFailed) as info:
        _ship(
            db,
            agent,
            customer.id,
            "GX000000000077",
            created_at=T0,
            delivered_at=T0 - timedelta(hours=1),
        )
    assert info.value.errors[0].code == "delivered_before_shipped"


def test_booking_and_order_kinds_use_typed_columns(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="旅行社客户")
    booking = _ship(
        db,
        agent,
        customer.id,
        "BK20261201001",
        kind="booking",
        destination="三亚",
        departure_date="2026-12-20",
        return_date="2026-12-25",
        party_size=3,
        fee_fen=1280000,
    )
    order = _ship(
        db,
        agent,
        customer.id,
        "OD20261201001",
        kind="order",
        product_name="办公用纸",
        quantity=40,
        fee_fen=56000,
    )
    assert (booking.kind, booking.destination, booking.party_size) == ("booking", "三亚", 3)
    assert (order.kind, order.product_name, order.quantity) == ("order", "办公用纸", 40)


def test_sales_cannot_see_or_ship_for_others(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    sales = make_user("sales")
    # Another account manager's customer (one without an owner is in the pool, seen by sales).
    other = make_customer(name="别人的客户", owner_id=make_user("sales").id)
    s = _ship(db, agent, other.id, "GX000000000055")
    with pytest.raises(NotFound):
        service.get_shipment(db, shipment_id=s.id, viewer=sales)
    rows, _ = service.list_shipments(db, viewer=sales)
    assert rows == []
    with pytest.raises(ValidationFailed) as info:
        _ship(db, sales, other.id, "GX000000000056")
    assert info.value.errors[0].loc == ("customer_id",)
