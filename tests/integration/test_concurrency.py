"""Concurrent writers: no lost update, one winner per waybill number, an intact audit chain."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from guanxi.audit.service import Actor, verify
from guanxi.core.db import make_sessionmaker
from guanxi.core.errors import Conflict
from guanxi.customers import service as customers
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate, CustomerUpdate
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.shipments import service as shipments
from guanxi.shipments.models import Shipment
from guanxi.shipments.schemas import ShipmentCreate

THREADS = 8


def _run_all(fn: Any) -> list[str]:
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        barrier.wait()
        try:
            fn(n)
            outcome = "ok"
        except Conflict:
            outcome = "conflict"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_writers(committed_engine: Engine) -> None:
    sm = make_sessionmaker(committed_engine)
    with sm() as s:
        agent = create_user(
            s,
            user_in=UserCreate(
                username="agent", display_name="a", role="agent", password="longenough1"
            ),  # type: ignore[arg-type]
            actor=Actor.system("t"),
        )
        customer = customers.create_customer(
            s, customer_in=CustomerCreate(name="并发客户"), actor=agent
        )
        cid, agent_id = customer.id, agent.id

    def update(n: int) -> None:
        with sm() as s:
            user = s.get(type(agent), agent_id)
            customers.update_customer(
                s,
                customer_id=cid,
                customer_in=CustomerUpdate(notes=f"writer {n}", version=1),
                actor=user,
            )

    outcomes = Counter(_run_all(update))
    assert outcomes == {"ok": 1, "conflict": THREADS - 1}

    def ship(n: int) -> None:
        with sm() as s:
            user = s.get(type(agent), agent_id)
            shipments.create_shipment(
                s,
                shipment_in=ShipmentCreate(waybill_no="GXRACE000001", customer_id=cid, fee_fen=n),
                actor=user,
            )

    outcomes = Counter(_run_all(ship))
    assert outcomes == {"ok": 1, "conflict": THREADS - 1}

    with sm() as s:
        assert s.scalar(select(func.count()).select_from(Shipment)) == 1
        stored = s.get(Customer, cid)
        assert stored is not None
        assert stored.version == 2
        assert stored.notes is not None
        assert stored.notes.startswith("writer ")
        count, problems = verify(s)
        # user + customer + one update + one shipment
        assert (count, problems) == (4, [])
