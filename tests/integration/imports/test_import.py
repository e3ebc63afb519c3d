"""Importing customers, contacts and shipments on SQLite and PostgreSQL: exact outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.sealing import seal, unseal
from guanxi.audit.service import Actor, verify
from guanxi.customers.models import ContactPerson, Customer, CustomerPhone, SearchToken
from guanxi.customers.queries import CustomerFilters, list_customers
from guanxi.imports.enums import ImportKind, JobStatus
from guanxi.imports.models import ImportJob, ImportRowError
from guanxi.imports.readers import UnreadableFile
from guanxi.imports.service import run_import
from guanxi.security.crypto import cipher
from guanxi.shipments.models import Shipment, ShipmentEvent

ACTOR = Actor.system("test-import")

CUSTOMERS = [
    ["客户编号", "客户名称", "客户类型", "手机", "地址", "来源渠道", "生日", "标签", "统一社会信用代码"],  # noqa: E501
    ["C001", "张三丰", "个人", "+86 139-1234-5678", "浙江省杭州市临平区南苑街道1号", "微信", "1990年5月1日", "VIP、月结", ""],  # noqa: E501
    ["C002", "杭州顺达物流有限公司", "企业", "(0571) 8888 1234", "杭州市西湖区文三路90号", "网点", "", "电商大客户", "91330100MA2B3C4D5X"],  # noqa: E501
    ["C003", "李四", "个人", "12345", "北京市朝阳区", "推荐", "2024/13/1", "", ""],
    ["C004", "\u200b王五\u200b", "", "１３８００００１１１１", "", "火星", "", "", ""],
    ["C001", "张三丰", "", "13700002222", "", "", "", "老客户", ""],
]  # fmt: skip


def write(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def _credit_code_valid() -> str:
    from stdnum.cn import uscc

    base = "91330100MA2B3C4D5"
    return base + uscc.calc_check_digit(base)


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    rows = [list(r) for r in CUSTOMERS]
    rows[2][8] = _credit_code_valid()
    return write(tmp_path / "客户.csv", rows, "gb18030")


def _imp(db: Session, kind: str, path: Path, **kw: Any) -> Any:
    return run_import(db, kind=ImportKind(kind), path=path, actor=ACTOR, **kw)


def test_customer_import_exact(db: Session, customers_csv: Path, make_user: Any) -> None:
    report = _imp(db, "customers", customers_csv)
    assert (report.format, report.encoding) == ("csv", "gb18030")
    # C001 appears twice: folded into one record with both phones and all tags.
    assert (report.imported, report.updated, report.unchanged, report.rejected) == (3, 0, 0, 2)
    assert report.rows == 5
    errors = {(e.row, e.column, e.code, e.value) for e in report.errors}
    assert errors == {
        (4, "手机", "phone_invalid", "*****"),
        (4, "生日", "date_impossible", "202****/1"),
        (5, "来源渠道", "value_unknown", "火星"),
    }
    by_ext = {c.external_id: c for c in db.scalars(select(Customer))}
    assert set(by_ext) == {"C001", "C002"}
    zhang = by_ext["C001"]
    assert (zhang.name, zhang.kind, zhang.source) == ("张三丰", "individual", "wechat")
    assert str(zhang.birthday) == "1990-05-01"
    phones = [cipher().decrypt("phone", p.phone_enc) for p in zhang.phones]
    assert phones == ["+8613912345678", "+8613700002222"]
    assert [(a.province, a.city, a.district) for a in zhang.addresses] == [
        ("浙江省", "杭州市", "临平区")
    ]
    assert sorted(t.name for t in zhang.tags) == ["VIP", "月结", "老客户"]
    shunda = by_ext["C002"]
    assert (shunda.kind, shunda.source) == ("enterprise", "outlet")
    assert cipher().decrypt("credit_code", shunda.credit_code_enc) == _credit_code_valid()
    assert cipher().decrypt("phone", shunda.phones[0].phone_enc) == "+8657188881234"
    # Searchable at once: bigram index written for bulk-created customers.
    found, _ = list_customers(db, filters=CustomerFilters(q="顺达"), viewer=make_user("manager"))
    assert [c.id for c in found] == [shunda.id]
    job = db.scalar(select(ImportJob))
    assert job is not None
    assert (job.status, job.rows_done, job.imported, job.rejected) == ("finished", 6, 3, 2)
    assert db.scalar(select(func.count()).select_from(ImportRowError)) == 3
    actions = list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "import_job")
            .order_by(AuditEntry.id)
        )
    )
    assert actions == ["import.started", "customer.imported", "import.finished"]
    assert verify(db)[1] == []


def test_reimport_changes_nothing_then_updates(
    db: Session, customers_csv: Path, tmp_path: Path
) -> None:
    _imp(db, "customers", customers_csv)
    before = {c.id: c.version for c in db.scalars(select(Customer))}
    again = _imp(db, "customers", customers_csv)
    assert (again.imported, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 2)
    db.expire_all()
    assert {c.id: c.version for c in db.scalars(select(Customer))} == before
    assert db.scalar(select(func.count()).select_from(CustomerPhone)) == 3
    # A later file: a new phone, an industry, and a changed name for C002.
    later = write(
        tmp_path / "later.csv",
        [
            ["客户编号", "客户名称", "手机", "行业"],
            ["C002", "杭州顺达物流股份有限公司", "0571-88881234", "物流"],
            ["C001", "张三丰", "13912345678", ""],
        ],
    )
    report = _imp(db, "customers", later)
    assert (report.imported, report.updated, report.unchanged, report.rejected) == (0, 1, 1, 0)
    db.expire_all()
    shunda = db.scalar(select(Customer).where(Customer.external_id == "C002"))
    assert shunda is not None
    assert (shunda.name, shunda.industry, shunda.kind, shunda.version) == (
        "杭州顺达物流股份有限公司", "物流", "enterprise", 2,
    )  # fmt: skip
    assert len(shunda.phones) == 1
    update = db.scalar(select(AuditEntry).where(AuditEntry.action == "customer.updated"))
    assert update is not None
    assert update.target_id == str(shunda.id)
    # The name is sealed under the customer's audit key.
    assert update.after == {
        "name": seal(db, "customer", shunda.id, "杭州顺达物流股份有限公司"),
        "industry": "物流",
    }
    assert unseal(db, update.after["name"]) == "杭州顺达物流股份有限公司"
    tokens = set(db.scalars(select(SearchToken.token).where(SearchToken.customer_id == shunda.id)))
    assert "股份" in tokens


def test_match_by_identifier_without_customer_number(
    db: Session, make_customer: Any, tmp_path: Path
) -> None:
    stored = make_customer("老王", phones=["13912340000"])
    path = write(
        tmp_path / "w.csv", [["姓名", "电话", "备注"], ["老王", "139 1234 0000", "来自微信导入"]]
    )
    report = _imp(db, "customers", path)
    assert (report.imported, report.updated) == (0, 1)
    db.refresh(stored)
    assert stored.notes == "来自微信导入"
    # Same phone, another name: a different person sharing a family phone.
    path = write(tmp_path / "w2.csv", [["姓名", "电话"], ["老王媳妇", "13912340000"]])
    assert _imp(db, "customers", path).imported == 1


def test_dry_run_writes_nothing(db: Session, customers_csv: Path) -> None:
    report = _imp(db, "customers", customers_csv, dry_run=True)
    assert (report.imported, report.rejected, report.status, report.job_id) == (
        3,
        2,
        "validated",
        None,
    )
    assert db.scalar(select(func.count()).select_from(Customer)) == 0
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_unreadable_and_unmapped_files(db: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [["foo", "bar"], ["1", "2"]])
    with pytest.raises(UnreadableFile) as info:
        _imp(db, "customers", path)
    assert info.value.code == "mapping_incomplete"
    assert "name" in info.value.message
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_interrupted_import_resumes_without_duplicates(db: Session, tmp_path: Path) -> None:
    rows = [["客户编号", "客户名称", "手机"]] + [
        [f"R{i:03d}", f"客户{i:03d}", f"1391234{i:04d}"] for i in range(25)
    ]
    path = write(tmp_path / "r.csv", rows)

    class Crash(Exception):
        pass

    def crash_after_two(done: int, total: int | None) -> None:
        if done >= 10:
            raise Crash

    with pytest.raises(Crash):
        _imp(db, "customers", path, batch_rows=5, progress=crash_after_two)
    job = db.scalar(select(ImportJob))
    assert job is not None
    assert (job.status, job.rows_done, job.imported) == (JobStatus.running.value, 11, 10)
    report = _imp(db, "customers", path, batch_rows=5)
    assert report.resumed_from_row == 11
    assert (report.imported, report.updated, report.unchanged, report.rejected) == (25, 0, 0, 0)
    assert db.scalar(select(func.count()).select_from(Customer)) == 25
    assert db.scalar(select(func.count(func.distinct(Customer.external_id)))) == 25
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 1


def test_shipments_upsert_by_waybill(db: Session, customers_csv: Path, tmp_path: Path) -> None:
    _imp(db, "customers", customers_csv)
    first = write(
        tmp_path / "s.csv",
        [
            ["运单号", "客户编号", "产品类型", "状态", "收件人电话", "重量", "运费(元)", "下单时间", "签收时间", "破损"],  # noqa: E501
            ["SF1001", "C001", "标快", "运输中", "13800001111", "1.5kg", "12.50", "2026-11-01 10:00", "", "否"],  # noqa: E501
            ["SF1002", "C002", "冷链", "已揽收", "", "300g", "1,234.00", "2026/11/3", "", ""],
            ["SF1003", "C999", "标准", "已揽收", "", "1", "10", "2026-11-03", "", ""],
            ["SF1004", "C001", "标准", "已签收", "", "1", "10", "2026-11-05", "2026-11-04", ""],
        ],
    )  # fmt: skip
    report = _imp(db, "shipments", first)
    assert (report.imported, report.updated, report.rejected) == (2, 0, 2)
    assert {(e.row, e.code) for e in report.errors} == {
        (4, "customer_not_found"),
        (5, "delivered_before_shipped"),
    }
    sf1 = db.scalar(select(Shipment).where(Shipment.waybill_no == "SF1001"))
    assert sf1 is not None
    assert (sf1.service_type, sf1.status, sf1.weight_g, sf1.fee_fen) == (
        "express",
        "in_transit",
        1500,
        1250,
    )
    assert sf1.created_at.isoformat() == "2026-11-01T02:00:00+00:00"
    assert cipher().decrypt("phone", sf1.receiver_phone_enc or "") == "+8613800001111"
    sf2 = db.scalar(select(Shipment).where(Shipment.waybill_no == "SF1002"))
    assert sf2 is not None
    assert (sf2.fee_fen, sf2.service_type) == (123400, "cold_chain")
    assert _imp(db, "shipments", first).unchanged == 2
    # The next day's status file moves SF1001 along and adds a timeline step.
    status = write(
        tmp_path / "status.csv",
        [
            ["运单号", "客户编号", "状态", "签收时间"],
            ["SF1001", "C001", "已签收", "2026-11-02 15:30"],
        ],
    )
    report = _imp(db, "shipments", status)
    assert (report.imported, report.updated) == (0, 1)
    db.expire_all()
    sf1 = db.scalar(select(Shipment).where(Shipment.waybill_no == "SF1001"))
    assert sf1 is not None
    assert (sf1.status, sf1.fee_fen) == ("delivered", 1250)
    steps = list(
        db.scalars(
            select(ShipmentEvent.status)
            .where(ShipmentEvent.shipment_id == sf1.id)
            .order_by(ShipmentEvent.id)
        )
    )
    assert steps == ["in_transit", "delivered"]


def test_contacts_import(db: Session, customers_csv: Path, tmp_path: Path) -> None:
    _imp(db, "customers", customers_csv)
    path = write(
        tmp_path / "contacts.csv",
        [
            ["客户编号", "联系人", "职务", "联系人电话"],
            ["C002", "陈经理", "物流主管", "13600001234"],
            ["C001", "某人", "", ""],
            ["C404", "无名", "", ""],
        ],
    )
    report = _imp(db, "contacts", path)
    assert (report.imported, report.rejected) == (1, 2)
    assert {(e.row, e.code) for e in report.errors} == {
        (3, "contact_individual"),
        (4, "customer_not_found"),
    }
    contact = db.scalar(select(ContactPerson))
    assert contact is not None
    assert (contact.name, contact.title, contact.is_primary) == ("陈经理", "物流主管", True)
    assert _imp(db, "contacts", path).imported == 0
    assert db.scalar(select(func.count()).select_from(ContactPerson)) == 1


def test_customer_number_of_another_customer_is_refused(
    db: Session, make_customer: Any, tmp_path: Path
) -> None:
    make_customer("甲公司", kind="enterprise", external_id="X1")
    other = make_customer("乙公司", kind="enterprise")
    path = write(
        tmp_path / "x.csv", [["系统编号", "客户编号", "客户名称"], [str(other.id), "X1", "乙公司"]]
    )
    report = _imp(db, "customers", path)
    assert (report.imported, report.updated, report.rejected) == (0, 0, 1)
    assert [(e.row, e.column, e.code) for e in report.errors] == [
        (2, "客户编号", "external_id_taken")
    ]
    db.refresh(other)
    assert other.external_id is None
