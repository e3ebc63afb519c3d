"""De-duplication: linkage finds planted duplicates, merges move every child row and undo
puts each one back, incremental checks, the review decisions and the create-form check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
    customer_tag,
)
from guanxi.customers.schemas import CustomerCreate
from guanxi.dedupe import features, service
from guanxi.dedupe.enums import PairStatus, RunMode
from guanxi.dedupe.models import CustomerMerge, DuplicatePair
from guanxi.demo.generator import generate
from guanxi.quality.service import quality_report
from guanxi.shipments.models import Shipment
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from tests.helpers import resident_id

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
BOT = Actor.system("test")


def _children(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every child row's (id, owner, position) — what a merge moves and an undo restores."""
    db.expire_all()
    return {
        "phones": db.execute(
            select(CustomerPhone.id, CustomerPhone.customer_id, CustomerPhone.position).order_by(
                CustomerPhone.id
            )
        ).all(),
        "addresses": db.execute(
            select(
                CustomerAddress.id, CustomerAddress.customer_id, CustomerAddress.position
            ).order_by(CustomerAddress.id)
        ).all(),
        "contacts": db.execute(
            select(ContactPerson.id, ContactPerson.customer_id, ContactPerson.position).order_by(
                ContactPerson.id
            )
        ).all(),
        "tags": db.execute(
            select(customer_tag.c.customer_id, customer_tag.c.tag_id).order_by(
                customer_tag.c.customer_id, customer_tag.c.tag_id
            )
        ).all(),
        "shipments": db.execute(
            select(Shipment.id, Shipment.customer_id).order_by(Shipment.id)
        ).all(),
        "tokens": db.execute(
            select(SearchToken.customer_id, SearchToken.token).order_by(
                SearchToken.customer_id, SearchToken.token
            )
        ).all(),
        "customers": db.execute(
            select(
                Customer.id,
                Customer.status,
                Customer.name,
                Customer.email_bidx,
                Customer.birthday,
                Customer.industry,
            ).order_by(Customer.id)
        ).all(),
    }


def _pair_of_twins(db: Session, make_customer: Any, make_user: Any) -> tuple[Any, Any]:
    """张伟 entered twice: once with a mobile, once (in traditional characters) with more."""
    a = make_customer(
        name="上海顺丰贸易有限公司",
        kind="enterprise",
        phones=["13812345678"],
        addresses=[{"line": "上海市浦东新区张江路100号"}],
        tags=["月结客户"],
        contacts=[{"name": "王经理", "phone": "13900001111"}],
    )
    b = make_customer(
        name="上海順豐貿易",
        kind="enterprise",
        phones=["13812345678", "02161234567"],
        email="ops@sf-trade.example.cn",
        industry="电商",
        addresses=[{"line": "上海市浦东新区张江路100号"}, {"line": "上海市闵行区虹梅路8号"}],
        tags=["电商大客户"],
        contacts=[{"name": "李会计", "phone": "13900002222"}],
    )
    clerk = make_user("agent")
    for no, owner in (("GXT0001", a), ("GXT0002", b), ("GXT0003", b)):
        create_shipment(
            db,
            shipment_in=ShipmentCreate(
                waybill_no=no,
                customer_id=owner.id,
                fee_fen=1200,
                weight_g=500,
                receiver_name="收件人",
                receiver_phone="13700000000",
                dest_province="浙江省",
                dest_city="杭州市",
            ),
            actor=clerk,
        )
    return a, b


def test_merge_moves_every_child_and_undo_puts_each_back(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    a, b = _pair_of_twins(db, make_customer, make_user)
    before = _children(db)

    merge = service.merge_customers(
        db, survivor_id=a.id, duplicate_id=b.id, fields=["email", "industry"], actor=BOT
    )
    after = _children(db)
    owners = {name: {row[1] for row in rows} for name, rows in after.items() if name != "tags"}
    # Everything of b now hangs on a, except what a already had (the same mobile number).
    assert owners["shipments"] == {a.id}
    assert owners["contacts"] == {a.id}
    assert sorted(r[1] for r in after["phones"]) == [a.id, a.id, b.id]
    assert sorted(r[1] for r in after["addresses"]) == [a.id, a.id, b.id]
    assert [(r[1], r[2]) for r in after["phones"] if r[1] == a.id] == [(a.id, 0), (a.id, 1)]
    assert {t for c, t in after["tags"] if c == a.id} == {t for _c, t in before["tags"]}
    customers = {r[0]: r for r in after["customers"]}
    assert customers[b.id][1] == "merged"
    assert customers[a.id][1] == "active"
    assert customers[a.id][3] == customers[b.id][3] is not None  # e-mail taken from b
    assert customers[a.id][5] == "电商"
    assert customers[a.id][2] == "上海顺丰贸易有限公司"  # name not taken: a's stays
    assert all(c != b.id for c, _t in after["tokens"])  # merged record leaves search
    assert {t for c, t in after["tokens"] if c == a.id} >= {"会计"}
    stored = db.get(CustomerMerge, merge.id)
    assert stored is not None
    assert stored.moved["shipment"] == [r[0] for r in before["shipments"] if r[1] == b.id]
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.action.like("customer.merge%"))
    ).all()
    assert sorted(actions) == ["customer.merged", "customer.merged_into"]
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "customer.merged"))
    assert audit is not None
    assert audit.after is not None
    assert audit.after["email"] == "o***@sf-trade.example.cn"  # masked, never in clear
    assert audit.before == {"email": None, "industry": None}
    assert "ops@sf-trade" not in str(audit.after)

    result = service.undo_merge(db, merge_id=merge.id, actor=BOT)
    assert result.kept_columns == []
    restored = _children(db)
    assert restored == before


def test_undo_keeps_a_field_edited_after_the_merge(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    a, b = _pair_of_twins(db, make_customer, make_user)
    merge = service.merge_customers(
        db, survivor_id=a.id, duplicate_id=b.id, fields=["industry"], actor=BOT
    )
    db.execute(text("UPDATE customer SET industry = '制造' WHERE id = :i"), {"i": a.id})
    result = service.undo_merge(db, merge_id=merge.id, actor=BOT)
    assert result.kept_columns == ["industry"]
    db.expire_all()
    assert db.get(Customer, a.id).industry == "制造"  # type: ignore[union-attr]
    assert db.get(Customer, b.id).status == "active"  # type: ignore[union-attr]


def test_merge_refuses_bad_requests(db: Session, make_customer: Any, make_user: Any) -> None:

    from guanxi.core.errors import Conflict, NotFound, ValidationFailed

    a, b = _pair_of_twins(db, make_customer, make_user)
    with pytest.raises(ValidationFailed) as same:
        service.merge_customers(db, survivor_id=a.id, duplicate_id=a.id, fields=None, actor=BOT)
    assert same.value.errors[0].code == "same_customer"
    with pytest.raises(ValidationFailed) as unknown:
        service.merge_customers(
            db, survivor_id=a.id, duplicate_id=b.id, fields=["external_id"], actor=BOT
        )
    assert unknown.value.errors[0].code == "merge_field_unknown"
    with pytest.raises(NotFound):
        service.merge_customers(db, survivor_id=a.id, duplicate_id=999_999, fields=None, actor=BOT)
    merge = service.merge_customers(db, survivor_id=a.id, duplicate_id=b.id, fields=None, actor=BOT)
    with pytest.raises(Conflict) as again:
        service.merge_customers(db, survivor_id=a.id, duplicate_id=b.id, fields=None, actor=BOT)
    assert again.value.message == "merge_not_active"
    service.undo_merge(db, merge_id=merge.id, actor=BOT)
    with pytest.raises(Conflict) as twice:
        service.undo_merge(db, merge_id=merge.id, actor=BOT)
    assert twice.value.message == "merge_undone"


def test_run_merges_sure_pairs_and_queues_the_grey_zone(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    a, b = _pair_of_twins(db, make_customer, make_user)
    # The same person three times: the ID number decides alone (chain c ~ d ~ e).
    rid = resident_id()
    c = make_customer(name="陈静", id_number=rid, phones=["13512340000"])
    d = make_customer(name="陳靜", id_number=rid)
    e = make_customer(name="陈静", phones=["13512340000"], birthday="1980-01-15")
    # Same name and district, nothing else in common: a neighbour, not a duplicate.
    make_customer(
        name="刘洋", addresses=[{"line": "北京市朝阳区建国路1号"}], phones=["13611110000"]
    )
    make_customer(
        name="刘洋", addresses=[{"line": "北京市朝阳区光华路9号"}], phones=["13622220000"]
    )
    # A grey-zone pair: same name and district, another street, no phone to tell.
    f = make_customer(name="赵敏", addresses=[{"line": "广东省深圳市南山区科技园路5号101室"}])
    g = make_customer(name="赵敏", addresses=[{"line": "广东省深圳市南山区学府路8号"}])

    run = service.run(db, actor=BOT)
    db.expire_all()
    statuses = {cid: status for cid, status in db.execute(select(Customer.id, Customer.status))}
    assert statuses[b.id] == statuses[d.id] == statuses[e.id] == "merged"
    assert statuses[a.id] == statuses[c.id] == "active"
    assert {statuses[f.id], statuses[g.id]} == {"active"}
    assert run.auto_merged == 3
    pending = db.execute(
        select(DuplicatePair.left_id, DuplicatePair.right_id).where(
            DuplicatePair.status == PairStatus.pending.value
        )
    ).all()
    assert pending == [(f.id, g.id)]
    assert run.queued == 1
    assert service.pending_count(db) == 1
    report = quality_report(db)
    assert (report.review_queue, report.merged) == (1, 3)

    # "Not the same": the pair is never queued again, and a re-run merges nothing new.
    pair_id = db.scalar(select(DuplicatePair.id).where(DuplicatePair.left_id == f.id))
    assert pair_id is not None
    service.mark_distinct(db, pair_id=pair_id, actor=BOT)
    rerun = service.run(db, actor=BOT)
    assert (rerun.auto_merged, rerun.queued) == (0, 0)


@pytest.mark.parametrize("limit", [2000, 1], ids=["lookups", "scan"])
def test_incremental_run_scores_only_new_customers(
    db: Session, make_customer: Any, make_user: Any, limit: int, monkeypatch: Any
) -> None:
    # Both ways of finding a newcomer's candidates: index lookups, or a scan of the base.
    monkeypatch.setattr(service, "INCREMENTAL_LIMIT", limit)
    make_customer(
        name="孙丽", phones=["13800138000"], addresses=[{"line": "浙江省杭州市西湖区文三路1号"}]
    )
    first = service.run(db, actor=BOT, mode=RunMode.full)
    assert first.candidates == 0
    newcomer = make_customer(name="孫麗", phones=["13800138000"])
    make_customer(name="无关客户", phones=["13900139000"])
    second = service.run(db, actor=BOT, mode=RunMode.incremental)
    assert second.customers == 2  # only the two created since the last run
    assert second.auto_merged == 1
    db.expire_all()
    assert db.get(Customer, newcomer.id).status == "merged"  # type: ignore[union-attr]


def test_create_form_check_finds_the_existing_record(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    old = make_customer(
        name="周杰", phones=["13700001234"], addresses=[{"line": "四川省成都市武侯区人民南路4号"}]
    )
    found = service.likely_duplicates_of(
        db,
        CustomerCreate(name="周傑", phones=["137 0000 1234"]),  # type: ignore[list-item]
    )
    assert [c.customer_id for c in found] == [old.id]
    assert found[0].probability > 0.99
    assert "phones" in found[0].agreed
    assert service.likely_duplicates_of(db, CustomerCreate(name="完全不同")) == []


def test_features_hold_no_clear_identifiers(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    make_customer(
        name="吴芳", phones=["13811112222"], email="wu@example.cn", id_number=resident_id()
    )
    table = features.load_features(db)
    dumped = str(table.to_pylist())
    assert "13811112222" not in dumped
    assert "wu@example.cn" not in dumped
    assert resident_id() not in dumped
    assert table.column("name_n").to_pylist() == ["吴芳"]


def test_planted_duplicates_are_found(committed_engine: Engine) -> None:
    summary = generate(committed_engine, customers=3000, seed=3, now=NOW, duplicate_rate=0.03)
    truth = set(summary.duplicates)
    assert len(truth) == 90
    session = make_sessionmaker(committed_engine)()
    try:
        run = service.run(session, actor=BOT, auto_merge=False)
        found = {
            (left, right)
            for left, right in session.execute(
                select(DuplicatePair.left_id, DuplicatePair.right_id).where(
                    DuplicatePair.probability >= service.AUTO_THRESHOLD
                )
            )
        }
    finally:
        session.close()
    assert run.customers == 3000 - summary_archived(committed_engine)
    assert found == truth


def summary_archived(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT COUNT(*) FROM customer WHERE status <> 'active'")))


def test_a_shared_address_and_numbered_names_are_not_one_customer(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    # A market written without numbers, and shop names one digit apart: sixty customers.
    for i in range(60):
        make_customer(
            name=f"客户{i:06d}",
            addresses=[{"line": "浙江省杭州市临平区南苑街道"}],
            phones=[f"139{i:08d}"],
        )
    table = features.load_features(db)
    assert set(table.column("detail_n").to_pylist()) == {None}  # too common to compare
    run = service.run(db, actor=BOT)
    assert (run.candidates, run.auto_merged, run.queued) == (0, 0, 0)


def test_undo_in_reverse_order_of_a_chain(db: Session, make_customer: Any, make_user: Any) -> None:
    from guanxi.core.errors import Conflict

    a = make_customer(name="甲", phones=["13500000001"])
    b = make_customer(name="乙", phones=["13500000002"], tags=["VIP"])
    c = make_customer(name="丙", phones=["13500000003"])
    before = _children(db)
    first = service.merge_customers(db, survivor_id=b.id, duplicate_id=c.id, fields=None, actor=BOT)
    second = service.merge_customers(
        db, survivor_id=a.id, duplicate_id=b.id, fields=None, actor=BOT
    )
    # c's phone went to b, then with b's to a: undoing the first merge now would find
    # nothing on b, so it is refused until the second is undone.
    with pytest.raises(Conflict) as chained:
        service.undo_merge(db, merge_id=first.id, actor=BOT)
    assert chained.value.message == "merge_chained"
    service.undo_merge(db, merge_id=second.id, actor=BOT)
    service.undo_merge(db, merge_id=first.id, actor=BOT)
    assert _children(db) == before


def test_an_import_naming_a_merged_customer_updates_the_survivor(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    from guanxi.customers.bulk import upsert_customers

    a = make_customer(name="冯十", external_id="X001", phones=["13600000001"])
    b = make_customer(name="冯十", phones=["13600000002"])
    c = make_customer(name="冯十", phones=["13600000003"])
    service.merge_customers(db, survivor_id=b.id, duplicate_id=a.id, fields=None, actor=BOT)
    service.merge_customers(db, survivor_id=c.id, duplicate_id=b.id, fields=None, actor=BOT)
    assert service.survivors_of(db, [a.id, b.id, c.id]) == {a.id: c.id, b.id: c.id}
    row = CustomerCreate(name="冯十", external_id="X001", industry="物流")  # type: ignore[call-arg]
    result = upsert_customers(db, [(2, row)], actor=BOT, job_id=0)
    assert (result.created, result.updated) == (0, 1)
    db.expire_all()
    assert db.get(Customer, c.id).industry == "物流"  # type: ignore[union-attr]
    assert db.get(Customer, a.id).industry is None  # type: ignore[union-attr]
