"""Header recognition, mapping overrides and coded values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guanxi.imports.enums import ImportKind
from guanxi.imports.mapping import FIELDS, MappingError, build_map, enum_value, load_mapping


def _fields(
    headers: list[str], kind: ImportKind = ImportKind.customers, **kw: object
) -> list[str | None]:
    cmap = build_map(kind, headers, **kw)  # type: ignore[arg-type]
    return [cmap.fields[i].name if i in cmap.fields else None for i in range(len(headers))]


def test_chinese_and_english_headers() -> None:
    headers = [
        "*客户名称",
        "手机号码",
        "联系电话",
        "地址",
        "客户类型",
        "来源渠道",
        "生日",
        "Email",
        "Customer Name",
    ]
    assert _fields(headers) == [
        "name", "phone", "phone", "address", "kind", "source", "birthday", "email", None,
    ]  # fmt: skip
    cmap = build_map(ImportKind.customers, headers)
    # A second name column is reported, not silently merged; several phone columns are fine.
    assert cmap.unknown == ["Customer Name"]
    assert cmap.header_of("phone", 1) == "联系电话"


def test_headers_with_units_and_spacing() -> None:
    headers = ["运单号", "运费(元)", "重量（kg）", "客户 编号", "签收时间"]
    assert _fields(headers, ImportKind.shipments) == [
        "waybill_no", "fee_fen", "weight_g", "customer_external_id", "delivered_at",
    ]  # fmt: skip


def test_overrides_win_and_can_ignore(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"columns": {"抬头": "name", "手机": None}}), encoding="utf-8")
    overrides = load_mapping(path)
    assert _fields(["抬头", "手机", "备注"], overrides=overrides) == ["name", None, "notes"]
    with pytest.raises(MappingError, match="unknown field"):
        build_map(ImportKind.customers, ["x"], {"x": "shoe_size"})
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(MappingError):
        load_mapping(path)


def test_coded_values() -> None:
    specs = {s.name: s for s in FIELDS[ImportKind.customers]}
    assert enum_value(specs["kind"], "企业客户") == "enterprise"
    assert enum_value(specs["kind"], "Individual") == "individual"
    assert enum_value(specs["source"], "微信小程序") == "wechat"
    assert enum_value(specs["source"], "Cold Outreach") == "cold_outreach"
    assert enum_value(specs["credit_rating"], "aa") == "AA"
    assert enum_value(specs["source"], "火星") is None
    ship = {s.name: s for s in FIELDS[ImportKind.shipments]}
    assert enum_value(ship["status"], "已签收") == "delivered"
    assert enum_value(ship["service_type"], "冷链") == "cold_chain"
