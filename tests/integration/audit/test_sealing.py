"""Crypto-shredding of the audit log's personal texts (audit/sealing.py) on SQLite and
PostgreSQL: sealed values read back while the subject's key lives, never after it is
shredded; the chain verifies throughout; the 360 history shows them masked, then erased."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry, AuditSubjectKey
from guanxi.audit.sealing import (
    display_data,
    display_value,
    is_sealed,
    seal,
    shred,
    subject_of,
    unseal,
)
from guanxi.audit.service import Actor, verify
from guanxi.core.db import write_transaction
from guanxi.privacy.anonymise import anonymise_customers
from guanxi.security.crypto import cipher


def _keys(db: Session) -> list[tuple[str, str]]:
    return [
        (t, i)
        for t, i in db.execute(
            select(AuditSubjectKey.subject_type, AuditSubjectKey.subject_id).order_by(
                AuditSubjectKey.id
            )
        )
    ]


def test_seal_unseal_and_shred(db: Session) -> None:
    with write_transaction(db):
        one = seal(db, "customer", 41, "张三丰")
        again = seal(db, "customer", 41, "张三丰")
        other = seal(db, "customer", 42, "张三丰")
    assert one.startswith("sealed:v1:customer:41:")
    assert "张三丰" not in one
    # Deterministic per subject (diffs of snapshots keep working), distinct across them.
    assert one == again
    assert other.startswith("sealed:v1:customer:42:")
    assert other[23:] != one[23:]
    assert (is_sealed(one), is_sealed("张三丰"), subject_of(one)) == (
        True,
        False,
        ("customer", "41"),
    )
    assert _keys(db) == [("customer", "41"), ("customer", "42")]
    # The data key is stored under the field cipher (rotated by `guanxi keys rotate`).
    stored = db.scalar(
        select(AuditSubjectKey.audit_subject_key_enc).where(AuditSubjectKey.subject_id == "41")
    )
    assert stored is not None
    assert stored.partition("$")[0] == cipher().key_id_of(cipher().encrypt("any", ""))
    assert len(base64.b64decode(cipher().decrypt("audit_subject_key", stored))) == 32
    assert (unseal(db, one), unseal(db, other), unseal(db, "plain")) == (
        "张三丰",
        "张三丰",
        "plain",
    )

    with write_transaction(db):
        assert shred(db, "customer", [41, 99]) == 1
    assert _keys(db) == [("customer", "42")]
    assert (unseal(db, one), unseal(db, other)) == (None, "张三丰")
    # A tampered or truncated sealed text reads as nothing, never as an error.
    assert unseal(db, other[:-4] + "AAAA") is None
    assert unseal(db, "sealed:v1:customer:42") is None


def _seal_then_fail(db: Session) -> None:
    with write_transaction(db):
        seal(db, "customer", 7, "王五")
        raise RuntimeError("rolled back")


def test_a_key_created_in_a_rolled_back_transaction_is_not_used(db: Session) -> None:
    with pytest.raises(RuntimeError):
        _seal_then_fail(db)
    assert _keys(db) == []
    with write_transaction(db):
        sealed = seal(db, "customer", 7, "王五")
    assert unseal(db, sealed) == "王五"


def test_display_masks_reveals_and_erases(db: Session) -> None:
    with write_transaction(db):
        name = seal(db, "customer", 5, "杭州顺达物流有限公司")
        address = seal(db, "customer", 5, "浙江省杭州市星光街1号")
    assert display_value(db, name, reveal=False, field="name") == "杭**"
    assert display_value(db, address, reveal=False, field="addresses") == "浙江省杭…"
    assert display_value(db, name, reveal=True, field="name") == "杭州顺达物流有限公司"
    assert display_value(db, 3, reveal=False) == "3"
    data = {"name": name, "addresses": [address], "phones": ["139****5678"], "owner_id": 4}
    assert display_data(db, data, reveal=False) == {
        "name": "杭**",
        "addresses": ["浙江省杭…"],
        "phones": ["139****5678"],
        "owner_id": 4,
    }
    with write_transaction(db):
        shred(db, "customer", [5])
    assert display_value(db, name, reveal=True, lang="en") == "(erased)"
    assert display_value(db, name, reveal=False, lang="zh_CN") == "（已删除）"
    assert display_data(db, data, reveal=True, lang="zh_CN")["addresses"] == ["（已删除）"]


def test_anonymisation_erases_the_history_and_keeps_the_chain(
    db: Session, make_customer: Any, client: Any, login: Any
) -> None:
    _, headers = login("manager")
    person = make_customer(
        "金丝雀",
        addresses=[{"province": "浙江省", "city": "杭州市", "detail": "星光街1号"}],
        notes="夜间勿扰",
    )
    pid = person.id
    created = db.scalar(select(AuditEntry).where(AuditEntry.action == "customer.created"))
    assert created is not None
    assert created.after is not None
    after = dict(created.after)
    assert [unseal(db, created.after[k]) for k in ("name", "notes")] == ["金丝雀", "夜间勿扰"]
    assert [unseal(db, v) for v in created.after["addresses"]] == ["浙江省杭州市星光街1号"]

    body = client.get(f"/api/v1/customers/{pid}", headers=headers).json()
    shown = body["history"][-1]["after"]
    assert (shown["name"], shown["notes"], shown["addresses"]) == (
        "金**",
        "夜间勿扰",
        ["浙江省杭…"],
    )

    assert anonymise_customers(db, customer_ids=[pid], actor=Actor.system("t"), reason="r")
    assert _keys(db) == []
    db.expire_all()
    assert [unseal(db, after[k]) for k in ("name", "notes")] == [None, None]
    count = db.scalar(select(func.count()).select_from(AuditEntry))
    assert verify(db) == (count, [])
    body = client.get(f"/api/v1/customers/{pid}", headers=headers).json()
    shown = next(h for h in body["history"] if h["action"] == "customer.created")["after"]
    assert (shown["name"], shown["notes"], shown["addresses"]) == (
        "(erased)",
        "(erased)",
        ["(erased)"],
    )
    anonymised = next(h for h in body["history"] if h["action"] == "customer.anonymised")
    assert anonymised["after"]["rows"]["audit_subject_key"] == 1


def test_free_texts_about_a_customer_are_sealed(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    from guanxi.loyalty.schemas import BonusIn
    from guanxi.loyalty.service import enrol, grant_bonus

    manager = make_user("manager")
    cid = make_customer("赵钱").id
    enrol(db, customer_id=cid, actor=manager)
    grant_bonus(
        db,
        customer_id=cid,
        bonus_in=BonusIn(points=50, reason="包裹丢失致歉赵钱", key="sorry"),
        actor=manager,
    )
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "loyalty.bonus_granted"))
    assert entry is not None
    assert entry.after == {"points": 50, "reason": seal(db, "customer", cid, "包裹丢失致歉赵钱")}
    assert display_data(db, entry.after, reveal=False) == {"points": 50, "reason": "包裹丢失…"}
    with write_transaction(db):
        shred(db, "customer", [cid])
    assert display_data(db, entry.after, reveal=True, lang="zh_CN") == {
        "points": 50,
        "reason": "（已删除）",
    }
