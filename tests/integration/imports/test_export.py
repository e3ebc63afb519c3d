"""Export: masked per role, formula-safe, and an export re-imports without changing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core.errors import PermissionDenied
from guanxi.customers.models import Customer, CustomerAddress, CustomerPhone
from guanxi.customers.schemas import AddressIn
from guanxi.imports.enums import ImportKind
from guanxi.imports.export import export_customers, export_shipments, neutralise
from guanxi.imports.readers import open_table
from guanxi.imports.service import run_import
from guanxi.shipments.models import Shipment


def _read(path: Path) -> list[list[str]]:
    table = open_table(path)
    try:
        return [table.headers] + [cells for _, cells in table.rows()]
    finally:
        table.close()


@pytest.fixture
def people(make_customer: Any) -> list[Any]:
    return [
        make_customer(
            "张三丰",
            external_id="C001",
            phones=["13912345678", "+1 650 253 0000"],
            addresses=[AddressIn(line="浙江省杭州市临平区南苑街道1号")],
            tags=["VIP", "月结"],
            source="wechat",
            birthday="1990-05-01",
            notes='=HYPERLINK("http://evil")',
        ),
        make_customer(
            "杭州顺达物流有限公司",
            kind="enterprise",
            phones=["0571-88881234"],
            email="Boss@ShunDa.cn",
            addresses=[AddressIn(line="上海市浦东新区世纪大道100号")],
            lifecycle_stage="active",
            credit_rating="AA",
        ),
        make_customer("只有名字"),
    ]


def test_masked_export_for_an_agent(
    db: Session, people: list[Any], make_user: Any, tmp_path: Path
) -> None:
    agent = make_user("agent")
    path = tmp_path / "c.csv"
    result = export_customers(db, path=path, viewer=agent)
    assert (result.rows, result.revealed) == (3, False)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel shows Chinese
    rows = _read(path)
    header = rows[0]
    by_name = {r[header.index("客户名称")]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    zhang = by_name["张三丰"]
    assert zhang["手机"] == "139****5678; ****0000"
    assert (zhang["省"], zhang["市"], zhang["区"], zhang["详细地址"]) == (
        "浙江省",
        "杭州市",
        "临平区",
        "南苑街道1号",
    )
    assert zhang["备注"] == '\'=HYPERLINK("http://evil")'
    assert zhang["标签"] == "VIP、月结"
    assert by_name["杭州顺达物流有限公司"]["邮箱"] == "B***@shunda.cn"
    with pytest.raises(PermissionDenied):
        export_customers(db, path=path, viewer=agent, reveal=True)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "customer.exported"))
    assert entry is not None
    assert entry.after == {"rows": 3, "revealed": False, "filters": {"status": "active"}}


def test_neutralise() -> None:
    assert [neutralise(v) for v in ("=1+1", "+86", "-3", "@SUM(A1)", "\tx", "张三", "")] == [
        "'=1+1", "'+86", "'-3", "'@SUM(A1)", "'\tx", "张三", "",
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(
    db: Session, people: list[Any], make_user: Any, tmp_path: Path, fmt: str
) -> None:
    admin = make_user("admin")
    path = tmp_path / f"c.{fmt}"
    result = export_customers(db, path=path, fmt=fmt, viewer=admin, reveal=True)
    assert (result.rows, result.revealed) == (3, True)
    counts = (
        db.scalar(select(func.count()).select_from(Customer)),
        db.scalar(select(func.count()).select_from(CustomerPhone)),
        db.scalar(select(func.count()).select_from(CustomerAddress)),
    )
    versions = {c.id: c.version for c in db.scalars(select(Customer))}
    report = run_import(db, kind=ImportKind.customers, path=path, actor=Actor.system("t"))
    assert (report.imported, report.updated, report.unchanged, report.rejected) == (0, 0, 3, 0)
    assert report.unknown_columns == ["状态", "创建时间"]
    db.expire_all()
    assert {c.id: c.version for c in db.scalars(select(Customer))} == versions
    assert (
        db.scalar(select(func.count()).select_from(Customer)),
        db.scalar(select(func.count()).select_from(CustomerPhone)),
        db.scalar(select(func.count()).select_from(CustomerAddress)),
    ) == counts


def test_shipment_export(db: Session, people: list[Any], make_user: Any, tmp_path: Path) -> None:
    from guanxi.shipments.schemas import ShipmentCreate
    from guanxi.shipments.service import create_shipment

    admin = make_user("admin")
    create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="SF2001", customer_id=people[0].id, fee_fen=1250, weight_g=1500,
            receiver_phone="13800001111", status="delivered",
        ),
        actor=admin,
    )  # fmt: skip
    path = tmp_path / "s.xlsx"
    result = export_shipments(db, path=path, fmt="xlsx", viewer=admin)
    assert result.rows == 1
    rows = _read(path)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["运单号"], row["客户编号"], row["运费(元)"], row["重量(kg)"]) == (
        "SF2001",
        "C001",
        "12.50",
        "1.5",
    )
    assert (row["收件人电话"], row["状态"]) == ("138****1111", "已签收")
    report = run_import(db, kind=ImportKind.shipments, path=path, actor=Actor.system("t"))
    # A masked phone is not a phone: the row is reported and nothing is changed.
    assert (report.rejected, report.errors[0].code) == (1, "phone_invalid")
    clear = tmp_path / "clear.csv"
    export_shipments(db, path=clear, viewer=admin, reveal=True)
    report = run_import(db, kind=ImportKind.shipments, path=clear, actor=Actor.system("t"))
    assert (report.imported, report.updated, report.unchanged, report.rejected) == (0, 0, 1, 0)
    assert db.scalar(select(func.count()).select_from(Shipment)) == 1
