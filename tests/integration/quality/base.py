"""A small customer base with known gaps, shared by the data-quality tests.

Ten active customers and one archived, built through the customer service (so identifiers
are encrypted and blind-indexed as in production), then given the invalid values the
service refuses (a future birthday, codes outside their lists) with direct updates.

    c1  张三              individual  complete: mobile, e-mail, ID, birthday, parsed address
    c2  李四              individual  c1's mobile, unparsed address, birthday in 2030
    c3  王五              individual  landline only, created 2023, never shipped (stale)
    c4  1234              individual  junk name (digits), nothing else
    c5  测试客户          individual  junk name (测试), birthday 1890
    c6  杭州快运有限公司  enterprise  complete: credit code, industry, contact, 滨江区 address
    c7  杭州快运有限公司  enterprise  c6's credit code, same name in 滨江区, bad lifecycle/rating
    c8  市邮政管理局      government  c6's e-mail in other case, nothing else
    c9  赵七              individual  c1's ID number, a mobile and a landline
    c10 钱八              individual  created 2023, shipped 2025-03-01 (not stale)
    c11 孙九              individual  ARCHIVED, c1's mobile (ignored everywhere)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.shipments.models import Shipment
from tests.helpers import credit_code, resident_id

TODAY = date(2025, 6, 15)
RECENT = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
OLD = datetime(2023, 1, 1, 8, 0, tzinfo=UTC)
SHARED_MOBILE = "13912345678"


def _create(session: Session, at: datetime, **fields: Any) -> int:
    with clock.frozen(at):
        customer = create_customer(
            session, customer_in=CustomerCreate(**fields), actor=Actor.system("test")
        )
    return customer.id


def build_base(session: Session, *, owner_id: int) -> dict[str, int]:
    """Create the base; returns the ids by label (c1 … c11)."""
    person_id = resident_id()
    company_code = credit_code()
    ids = {
        "c1": _create(
            session,
            RECENT,
            name="张三",
            phones=[SHARED_MOBILE],
            email="zhang@example.com",
            id_number=person_id,
            birthday=date(1980, 1, 15),
            addresses=[{"line": "浙江省杭州市西湖区文三路1号"}],
            region="浙江",
            owner_id=owner_id,
            source="wechat",
        ),
        "c2": _create(
            session, RECENT, name="李四", phones=[SHARED_MOBILE], addresses=[{"line": "某某路12号"}]
        ),
        "c3": _create(session, OLD, name="王五", phones=["02188889999"]),
        "c4": _create(session, RECENT, name="1234"),
        "c5": _create(session, RECENT, name="测试客户"),
        "c6": _create(
            session,
            RECENT,
            kind="enterprise",
            name="杭州快运有限公司",
            credit_code=company_code,
            industry="物流",
            contacts=[{"name": "赵六"}],
            addresses=[{"line": "杭州市滨江区江南大道88号"}],
            source="outlet",
            region="浙江",
            email="ent@example.com",
            phones=["13800001111"],
        ),
        "c7": _create(
            session,
            RECENT,
            kind="enterprise",
            name="杭州快运有限公司",
            credit_code=company_code,
            addresses=[{"line": "杭州市滨江区江南大道99号"}],
        ),
        "c8": _create(
            session, RECENT, kind="government", name="市邮政管理局", email="ENT@example.com"
        ),
        "c9": _create(
            session, RECENT, name="赵七", id_number=person_id, phones=["13700002222", "02188887777"]
        ),
        "c10": _create(session, OLD, name="钱八", phones=["13600003333"]),
        "c11": _create(session, RECENT, name="孙九", phones=[SHARED_MOBILE]),
    }
    # What the service refuses, as old imports and other systems left it.
    with session.begin():
        for label, values in (
            ("c2", {"birthday": date(2030, 1, 1)}),
            ("c5", {"birthday": date(1890, 5, 5)}),
            ("c7", {"lifecycle_stage": "bogus", "credit_rating": "ZZ"}),
            ("c11", {"status": "archived", "archived_at": RECENT}),
        ):
            session.execute(update(Customer).where(Customer.id == ids[label]).values(**values))
        for n, at in enumerate(
            (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
        ):
            session.add(Shipment(waybill_no=f"GXQ{n:08d}", customer_id=ids["c10"], created_at=at))
    return ids
