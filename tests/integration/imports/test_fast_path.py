"""The customer import's fast path (``imports.fast``) against the ordinary per-row path: on a
mixed file — good rows of every shape, each kind of bad field, duplicates — in GB18030 (GBK), UTF-8
with a byte-order mark and XLSX, both store the same rows and report the same errors."""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import bulkload, clock
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
    Tag,
    customer_tag,
)
from guanxi.imports import fast as fast_module
from guanxi.imports import service as import_service
from guanxi.imports.enums import ImportKind
from guanxi.imports.models import ImportRowError
from guanxi.security.crypto import cipher

ACTOR = Actor.system("test-fast-path")
NOW = datetime.datetime(2026, 11, 25, 8, 0, tzinfo=datetime.UTC)

HEADERS = [
    "客户编号", "客户名称", "客户类型", "手机", "电话", "邮箱", "身份证号", "统一社会信用代码",
    "地址", "省", "市", "区", "来源渠道", "生日", "标签", "行业", "备注", "生命周期", "负责人",
]  # fmt: skip


def _uscc(base: str = "91330100MA2B3C4D5") -> str:
    from stdnum.cn import uscc

    return base + uscc.calc_check_digit(base)


def _ric(base: str = "33010019900501123") -> str:
    from stdnum.cn import ric

    return base + ric.calc_check_digit(base + "0")


def _row(**cells: str) -> list[str]:
    names = {
        "ext": "客户编号", "name": "客户名称", "kind": "客户类型", "mobile": "手机",
        "tel": "电话", "email": "邮箱", "ric": "身份证号", "uscc": "统一社会信用代码",
        "line": "地址", "prov": "省", "city": "市", "dist": "区", "source": "来源渠道",
        "birthday": "生日", "tags": "标签", "industry": "行业", "notes": "备注",
        "stage": "生命周期", "owner": "负责人",
    }  # fmt: skip
    out = [""] * len(HEADERS)
    for key, value in cells.items():
        out[HEADERS.index(names[key])] = value
    return out


GOOD = [
    _row(ext="C001", name="张三丰", kind="个人", mobile="13912345678", email="Zhang@Example.COM",
         ric=_ric(), line="浙江省杭州市临平区南苑街道1号", source="微信", birthday="1990-05-01",
         tags="VIP、月结", industry="物流", notes="老客户", stage="活跃", owner="li_owner"),
    _row(ext="C002", name="杭州顺达物流有限公司", kind="企业", mobile="13800001111",
         tel="(0571) 8888 1234", uscc=_uscc(), line="文三路90号", prov="浙江省", city="杭州市",
         dist="西湖区", source="网点", tags="电商大客户"),
    # Full-width letters, no kind column value but a credit code: an organisation.
    _row(ext="C003", name="ＡＢＣ贸易公司", mobile="+86 139-0000-1111/13700002222",
         uscc=_uscc("91110105MA0A1B2C3"), source="ecommerce", birthday="1985年3月2日"),
    _row(ext="C004", name="\u200b李四\u200b", birthday="32874", prov="北京市", city="北京市",
         dist="朝阳区", source="Referral"),
    # Folded into C001: another phone and tag.
    _row(ext="C001", name="张三丰", mobile="13700002222", tags="老客户"),
    # Same name and phone, no number: one customer.
    _row(name="王五", mobile="13600001111", line="上海市浦东新区世纪大道100号"),
    _row(name="王五", mobile="136 0000 1111", tags="回头客"),
    # Our own export's formula guard: taken off by the ordinary path.
    _row(ext="C005", name="赵六", notes="'=SUM(A1)", mobile="0086 13512345678"),
    _row(ext="C006", name="政府采购中心", kind="政府", line="广东省深圳市南山区科技园1号",
         stage="prospect", email="caigou@sz.gov.cn"),
]  # fmt: skip

BAD = [
    _row(ext="B001", name="坏手机", mobile="12345"),
    _row(ext="B002", name="坏邮箱", email="a@b"),
    _row(ext="B003", name="坏身份证", ric=_ric()[:-1] + ("0" if _ric()[-1] != "0" else "1")),
    _row(ext="B004", name="坏信用代码", kind="企业", uscc=_uscc()[:-1] + "0"),
    _row(ext="B005", name="未来生日", birthday="2099-01-01"),
    _row(ext="B006", name="不可能日期", birthday="2024/13/1"),
    _row(ext="B007", name="火星来源", source="火星"),
    _row(ext="B008", name="长" * 6000),
    _row(ext="B009", mobile="13912340000"),
    _row(ext="B010", name="个人有信用代码", kind="个人", uscc=_uscc("91330100MA2B3C4D6")),
    _row(ext="B011", name="企业有身份证", kind="企业", ric=_ric("11010519800101002")),
    _row(ext="X" * 70, name="编号太长"),
    _row(ext="B013", name="行业太长", industry="物" * 60),
    _row(ext="B014", name="无人负责", owner="nobody"),
    _row(ext="B015", name="坏生命周期", stage="永生"),
    _row(ext="B016", name="号码太多", mobile="/".join(f"1391234{i:04d}" for i in range(11))),
    _row(ext="B017", name="标签太长", tags="标" * 51),
]  # fmt: skip


def _write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def _write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value.isdigit() and len(value) == 11:
                sheet.write_number(r, c, int(value))  # a phone typed as a number
            else:
                sheet.write_string(r, c, value)
    book.close()
    return path


def _file(tmp_path: Path, fmt: str) -> Path:
    # Good and bad rows interleaved, an extra-cells row and a blank one.
    rows: list[list[str]] = [HEADERS]
    for i in range(max(len(GOOD), len(BAD))):
        rows += [r for r in (GOOD[i : i + 1] + BAD[i : i + 1])]
    rows.insert(5, [])
    if fmt == "xlsx":
        return _write_xlsx(tmp_path / "mixed.xlsx", rows)
    rows.insert(7, _row(ext="E001", name="多一列") + ["1,234.00"])
    return _write_csv(tmp_path / f"mixed-{fmt}.csv", rows, fmt)


def _decrypt(column: str, value: str | None) -> str | None:
    return None if value is None else cipher().decrypt(column, value)


def _stored(db: Session, job_id: int | None) -> dict[str, Any]:
    """Everything the import wrote, as stored (raw SQL: dates and times in the database's
    own form), ids replaced by the customer's rank (PostgreSQL's sequences move on between
    the two runs) and ciphertexts by their plaintext (each encryption draws a fresh nonce)."""
    conn = db.connection()

    def fetch(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.exec_driver_sql(sql).mappings()]

    customers = fetch("SELECT * FROM customer ORDER BY id")
    rank = {c["id"]: n for n, c in enumerate(customers)}
    for c in customers:
        del c["id"]
        for name in ("email", "id_number", "credit_code"):
            c[f"{name}_enc"] = _decrypt(name, c[f"{name}_enc"])
    children: dict[str, list[dict[str, Any]]] = {}
    for table in ("customer_phone", "customer_address", "contact_person"):
        children[table] = fetch(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608
        for child in children[table]:
            del child["id"]
            child["customer_id"] = rank[child["customer_id"]]
            for name in ("phone", "email"):
                if f"{name}_enc" in child:
                    child[f"{name}_enc"] = _decrypt(name, child[f"{name}_enc"])
    tokens = sorted(
        (rank[cid], token)
        for token, cid in db.execute(select(SearchToken.token, SearchToken.customer_id))
    )
    tags = sorted(
        (rank[cid], name)
        for cid, name in db.execute(
            select(customer_tag.c.customer_id, Tag.name).join(Tag, Tag.id == customer_tag.c.tag_id)
        )
    )
    errors = [
        (e.row, e.column, e.value, e.code, e.message)
        for e in db.scalars(
            select(ImportRowError)
            .where(ImportRowError.job_id == job_id)
            .order_by(ImportRowError.id)
        )
    ]
    return {"customers": customers, **children, "tokens": tokens, "tags": tags, "errors": errors}


def _wipe(db: Session) -> None:
    for table in (customer_tag, SearchToken, CustomerPhone, CustomerAddress, ContactPerson):
        db.execute(delete(table))
    db.execute(delete(Customer))
    db.commit()


def _report(report: Any) -> dict[str, Any]:
    out: dict[str, Any] = report.as_json()
    for key in ("job_id", "seconds"):
        out.pop(key)
    return out


@pytest.mark.parametrize("fmt", ["gb18030", "utf-8-sig", "xlsx"])
def test_fast_path_stores_and_reports_as_the_row_path(
    db: Session, tmp_path: Path, make_user: Any, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    make_user("manager", username="li_owner")
    path = _file(tmp_path, fmt)
    taken: list[int] = []
    convert = fast_module.CustomerFastPath.convert

    def counting(self: Any, number: int, cells: list[str]) -> Any:
        hit = convert(self, number, cells)
        if hit is not None:
            taken.append(1)
        return hit

    with clock.frozen(NOW):
        with monkeypatch.context() as off:
            off.setattr(fast_module.FastPath, "of", classmethod(lambda cls, parser: None))
            slow = import_service.run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR)
        slow_stored = _stored(db, slow.job_id)
        _wipe(db)
        monkeypatch.setattr(fast_module.CustomerFastPath, "convert", counting)
        quick = import_service.run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR)
        quick_stored = _stored(db, quick.job_id)

    # Every good row but the formula-guarded one took the fast path; the bad ones did not.
    assert len(taken) == len(GOOD) - 1
    assert _report(quick) == _report(slow)
    assert quick_stored == slow_stored
    # The comparison is not vacuous: the file holds what the rows above say.
    assert (slow.imported, slow.updated, slow.unchanged) == (len(GOOD), 0, 0)
    assert slow.rejected == len(BAD) + (0 if fmt == "xlsx" else 1)
    assert len(slow_stored["customers"]) == len(GOOD) - 2
    assert {e[3] for e in slow_stored["errors"]} >= {
        "phone_invalid", "email_invalid", "id_number_checksum", "credit_code_checksum",
        "birthday_future", "date_impossible", "value_unknown", "cell_too_long", "missing",
        "credit_code_individual", "id_number_organisation", "string_too_long", "owner_unknown",
        "too_long",
    }  # fmt: skip


def test_bulk_rows_are_written_as_core_writes_them(
    db: Session, tmp_path: Path, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import's tuple writer (SQLite executemany, PostgreSQL COPY) stores exactly what
    a Core ``insert`` of the same rows stores."""
    make_user("manager", username="li_owner")
    path = _file(tmp_path, "utf-8-sig")
    with clock.frozen(NOW):
        with monkeypatch.context() as core:
            core.setattr(bulkload, "USE_CORE", True)
            through_core = import_service.run_import(
                db, kind=ImportKind.customers, path=path, actor=ACTOR
            )
        core_stored = _stored(db, through_core.job_id)
        _wipe(db)
        direct = import_service.run_import(db, kind=ImportKind.customers, path=path, actor=ACTOR)
        direct_stored = _stored(db, direct.job_id)
    assert _report(direct) == _report(through_core)
    assert direct_stored == core_stored
    assert len(core_stored["customers"]) == len(GOOD) - 2
    assert len(core_stored["customer_phone"]) == 8


SHIPMENT_HEADERS = [
    "运单号", "客户编号", "客户手机", "服务类型", "状态", "收件人", "收件人电话", "目的省",
    "目的城市", "重量", "运费", "保价金额", "送货上门", "揽收时间", "签收时间", "数量",
]  # fmt: skip
SHIPMENTS = [
    ["SF0000000001", "S001", "", "标准快递", "已揽收", "王小二", "13912345678", "浙江省",
     "杭州市", "1.5", "12.50", "", "是", "2026-11-01 10:23", "", "2"],
    ["sf0000000002", "", "13800001111", "特快", "", "", "", "广东省", "深圳市", "300g",
     "¥1,234.00", "100", "否", "2026年11月2日 9:05", "2026-11-03 12:00", ""],
    ["SF0000000003", "S002", "", "", "已签收", "", "(0571) 8888 1234", "", "", "2斤", "8元",
     "", "", "45962.5", "2026-11-04T08:00:00+08:00", ""],
    # The same waybill twice in one batch: the last row wins.
    ["SF0000000001", "S001", "", "特快", "运输中", "", "", "", "", "", "13", "", "", "", "", ""],
    # Bad rows, one problem each.
    ["SF0000000004", "S404", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["SF0000000005", "", "12345", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["SF0000000006", "S001", "", "飞船", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["SF0000000007", "S001", "", "", "", "", "123", "", "", "", "", "", "", "", "", ""],
    ["SF0000000008", "S001", "", "", "", "", "", "", "", "1吨", "", "", "", "", "", ""],
    ["SF0000000009", "S001", "", "", "", "", "", "", "", "", "1.234", "", "", "", "", ""],
    ["SF0000000010", "S001", "", "", "", "", "", "", "", "", "", "", "也许", "", "", ""],
    ["SF0000000011", "S001", "", "", "", "", "", "", "", "", "", "", "", "2026-13-01", "", ""],
    ["SF0000000012", "S001", "", "", "", "", "", "", "", "", "", "", "", "2026-11-05",
     "2026-11-04", ""],
    ["SF0000000013", "S001", "", "", "", "", "", "", "", "200000", "", "", "", "", "", ""],
    ["SF0000000014", "S001", "", "", "", "", "", "", "", "", "", "", "", "", "", "0"],
    ["SF#0000015", "S001", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["SF0000000016", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["SF0000000017", "S001", "", "", "", "收" * 101, "", "", "", "", "", "", "", "", "", ""],
]  # fmt: skip


def _shipments_stored(db: Session, job_id: int | None) -> dict[str, Any]:
    conn = db.connection()
    shipments = [
        dict(r) for r in conn.exec_driver_sql("SELECT * FROM shipment ORDER BY id").mappings()
    ]
    rank = {s["id"]: n for n, s in enumerate(shipments)}
    for s in shipments:
        del s["id"]
        s["receiver_phone_enc"] = _decrypt("phone", s["receiver_phone_enc"])
    events = [
        {**dict(r), "id": None, "shipment_id": rank[r["shipment_id"]]}
        for r in conn.exec_driver_sql("SELECT * FROM shipment_event ORDER BY id").mappings()
    ]
    errors = [
        (e.row, e.column, e.value, e.code, e.message)
        for e in db.scalars(
            select(ImportRowError)
            .where(ImportRowError.job_id == job_id)
            .order_by(ImportRowError.id)
        )
    ]
    return {"shipments": shipments, "events": events, "errors": errors}


@pytest.mark.parametrize("fmt", ["gb18030", "xlsx"])
def test_shipment_fast_path_stores_and_reports_as_the_row_path(
    db: Session, tmp_path: Path, make_customer: Any, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from guanxi.shipments.models import Shipment, ShipmentEvent

    make_customer("顺达", external_id="S001")
    make_customer("李四", external_id="S002", phones=["13800001111"])
    rows = [SHIPMENT_HEADERS, *SHIPMENTS]
    if fmt == "xlsx":
        path = _write_xlsx(tmp_path / "shipments.xlsx", rows)
    else:
        path = _write_csv(tmp_path / "shipments.csv", rows, fmt)
    taken: list[int] = []
    convert = fast_module.FastPath.convert

    def counting(self: Any, number: int, cells: list[str]) -> Any:
        hit = convert(self, number, cells)
        if hit is not None:
            taken.append(number)
        return hit

    def run() -> Any:
        return import_service.run_import(db, kind=ImportKind.shipments, path=path, actor=ACTOR)

    with clock.frozen(NOW):
        with monkeypatch.context() as off:
            off.setattr(fast_module.FastPath, "of", classmethod(lambda cls, parser: None))
            slow = run()
        slow_stored = _shipments_stored(db, slow.job_id)
        db.execute(delete(ShipmentEvent))
        db.execute(delete(Shipment))
        db.commit()
        monkeypatch.setattr(fast_module.FastPath, "convert", counting)
        quick = run()
        quick_stored = _shipments_stored(db, quick.job_id)

    assert _report(quick) == _report(slow)
    assert quick_stored == slow_stored
    # Rows 2-5 and those whose problem shows only with the customer or against the database
    # (unknown customer, delivery before pick-up, no customer named) took the fast path; the
    # rest were refused before it.
    assert taken == [2, 3, 4, 5, 6, 14, 18]
    assert (slow.imported, slow.updated, slow.unchanged) == (4, 0, 0)
    assert slow.rejected == len(SHIPMENTS) - 4
    assert len(slow_stored["shipments"]) == 3
    assert [(e[0], e[3]) for e in slow_stored["errors"]] == [
        (6, "customer_not_found"), (7, "phone_invalid"), (8, "value_unknown"),
        (9, "phone_invalid"), (10, "weight_invalid"), (11, "amount_invalid"),
        (12, "bool_invalid"), (13, "date_impossible"), (15, "less_than_equal"),
        (16, "greater_than_equal"), (17, "string_pattern_mismatch"), (18, "customer_ref_missing"),
        (19, "string_too_long"), (14, "delivered_before_shipped"),
    ]  # fmt: skip
