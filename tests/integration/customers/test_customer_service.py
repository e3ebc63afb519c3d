"""Customer service rules on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.sealing import seal, unseal
from guanxi.audit.service import Actor
from guanxi.core.errors import Conflict, NotFound, ValidationFailed
from guanxi.customers import service
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerPhone, SearchToken
from guanxi.customers.schemas import CustomerCreate, CustomerUpdate
from guanxi.customers.tokens import name_tokens
from guanxi.security.crypto import cipher
from tests.helpers import credit_code, resident_id


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_create_stores_normalised_encrypted_identifiers(db: Session, make_customer: Any) -> None:
    rid = resident_id()
    customer = make_customer(
        name="张三丰",
        phones=["+86 139-1234-5678", "(0571) 8888 1234"],
        email="Zhang.San@Example.COM",
        id_number=rid.lower(),
        addresses=[{"line": "浙江省杭州市临平区南苑街道人民大道100号"}],
        tags=["VIP", "月结客户", "VIP"],
        birthday="1980-01-15",
    )
    stored = db.get(Customer, customer.id)
    assert stored is not None
    phones = [cipher().decrypt("phone", p.phone_enc) for p in stored.phones]
    assert phones == ["+8613912345678", "+8657188881234"]
    assert [p.kind for p in stored.phones] == ["mobile", "landline"]
    assert [p.last4 for p in stored.phones] == ["5678", "1234"]
    assert cipher().decrypt("email", stored.email_enc) == "Zhang.San@example.com"
    assert stored.email_bidx == cipher().blind_index("email", "zhang.san@example.com")
    assert cipher().decrypt("id_number", stored.id_number_enc) == rid
    assert stored.id_number_bidx == cipher().blind_index("id_number", rid)
    address = stored.addresses[0]
    assert (address.province, address.city, address.district) == ("浙江省", "杭州市", "临平区")
    assert address.division_code == "330113"
    assert [t.name for t in stored.tags] == ["VIP", "月结客户"]
    tokens = set(
        db.scalars(select(SearchToken.token).where(SearchToken.customer_id == customer.id))
    )
    assert tokens == name_tokens("张三丰") == {"张三", "三丰"}
    # No clear identifier anywhere in the row.
    raw = db.execute(text("SELECT * FROM customer WHERE id = :i"), {"i": customer.id}).one()
    assert not any(isinstance(v, str) and ("13912345678" in v or rid in v) for v in raw)


def test_create_is_audited_with_masked_values(db: Session, make_customer: Any) -> None:
    customer = make_customer(name="李四", phones=["13912345678"], id_number=resident_id())
    entry = db.scalar(
        select(AuditEntry).where(
            AuditEntry.target_type == "customer", AuditEntry.target_id == str(customer.id)
        )
    )
    assert entry is not None
    assert entry.action == "customer.created"
    assert entry.after is not None
    assert entry.after["phones"] == ["139****5678"]
    assert entry.after["id_number"] == "330" + "*" * 11 + resident_id()[-4:]
    assert "13912345678" not in str(entry.after)


def test_failed_create_leaves_nothing_behind(db: Session) -> None:
    customers_before = _count(db, Customer)
    audit_before = _count(db, AuditEntry)
    with pytest.raises(ValidationFailed) as info:
        service.create_customer(
            db,
            customer_in=CustomerCreate(name="王五", phones=["13912345678"], owner_id=999999),
            actor=Actor.system("test"),
        )
    assert [e.loc for e in info.value.errors] == [("owner_id",)]
    assert _count(db, Customer) == customers_before
    assert _count(db, CustomerPhone) == 0
    assert _count(db, AuditEntry) == audit_before


def test_kind_and_identifier_must_fit() -> None:
    with pytest.raises(ValueError, match="credit_code_individual|Only enterprises"):
        CustomerCreate(name="张三", kind="individual", credit_code=credit_code())
    with pytest.raises(ValueError, match="id_number_organisation|Only individual"):
        CustomerCreate(name="顺达物流", kind="enterprise", id_number=resident_id())


def test_update_records_only_changed_fields(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="赵六", phones=["13912345678"])
    updated = service.update_customer(
        db,
        customer_id=customer.id,
        customer_in=CustomerUpdate(name="赵六六", phones=["13800138000"], version=customer.version),
        actor=agent,
    )
    assert updated.name == "赵六六"
    assert updated.version == 2
    entry = db.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    assert entry is not None
    assert entry.action == "customer.updated"
    # The names are sealed under the customer's audit key (deterministic per customer),
    # the phones masked.
    assert entry.before == {
        "name": seal(db, "customer", customer.id, "赵六"),
        "phones": ["139****5678"],
    }
    assert entry.after == {
        "name": seal(db, "customer", customer.id, "赵六六"),
        "phones": ["138****8000"],
    }
    assert entry.before["name"].startswith(f"sealed:v1:customer:{customer.id}:")
    assert [unseal(db, entry.before["name"]), unseal(db, entry.after["name"])] == [
        "赵六",
        "赵六六",
    ]
    assert entry.actor_name == agent.username
    tokens = set(
        db.scalars(select(SearchToken.token).where(SearchToken.customer_id == customer.id))
    )
    assert tokens == {"赵六", "六六"}


def test_stale_version_is_a_conflict_and_changes_nothing(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="钱七")
    service.update_customer(
        db,
        customer_id=customer.id,
        customer_in=CustomerUpdate(name="钱七甲", version=1),
        actor=agent,
    )
    with pytest.raises(Conflict):
        service.update_customer(
            db,
            customer_id=customer.id,
            customer_in=CustomerUpdate(name="钱七乙", version=1),
            actor=agent,
        )
    db.expire_all()
    assert db.get(Customer, customer.id).name == "钱七甲"  # type: ignore[union-attr]


def test_archive_and_restore(db: Session, make_customer: Any, make_user: Any) -> None:
    manager = make_user("manager")
    customer = make_customer(name="孙八")
    archived = service.set_status(
        db, customer_id=customer.id, status=CustomerStatus.archived, actor=manager
    )
    assert archived.status == "archived"
    assert archived.archived_at is not None
    restored = service.set_status(
        db, customer_id=customer.id, status=CustomerStatus.active, actor=manager
    )
    assert restored.status == "active"
    assert restored.archived_at is None
    actions = list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "customer", AuditEntry.target_id == str(customer.id))
            .order_by(AuditEntry.id)
        )
    )
    assert actions == ["customer.created", "customer.archived", "customer.restored"]


def test_reveal_returns_clear_values_and_is_audited(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="周九", phones=["13912345678", "13800138000"])
    values = service.reveal(db, customer_id=customer.id, field="phones", actor=agent)
    assert values == ["+8613912345678", "+8613800138000"]
    entry = db.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    assert entry is not None
    assert (entry.action, entry.actor_name, entry.after) == (
        "customer.revealed",
        agent.username,
        {"field": "phones", "count": 2},
    )


def test_sales_sees_only_own_customers(db: Session, make_customer: Any, make_user: Any) -> None:
    sales = make_user("sales")
    other = make_user("sales")
    mine = make_customer(name="吴十", owner_id=sales.id)
    theirs = make_customer(name="郑十一", owner_id=other.id)
    assert service.get_customer(db, customer_id=mine.id, viewer=sales).id == mine.id
    with pytest.raises(NotFound):
        service.get_customer(db, customer_id=theirs.id, viewer=sales)
