"""Which column holds which field: Chinese and English headers recognised automatically,
overridable by a mapping file; and the words people write for coded values (个人, 微信, 已签收).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from guanxi.customers.enums import CreditRating, CustomerKind, LifecycleStage, SourceChannel
from guanxi.imports.cleaning import clean_text
from guanxi.imports.enums import ImportKind
from guanxi.shipments.enums import ServiceType, ShipmentKind, ShipmentStatus


@dataclass(frozen=True)
class FieldSpec:
    """A field an import understands: how its cells are parsed and what headers name it."""

    name: str
    parse: str  # text, list, date, datetime, fen, grams, bool, int, enum, phone
    synonyms: tuple[str, ...]
    personal: bool = False  # values masked in error reports
    many: bool = False  # several columns may feed it (phones)
    enum: type[StrEnum] | None = None


def _f(name: str, parse: str, *synonyms: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, parse, (name, *synonyms), **kw)


_CUSTOMER_REF = [
    _f("customer_external_id", "text", "客户编号", "客户编码", "客户id", "customerid", "customerno",
       "customer_code", "客户代码"),
    _f("customer_credit_code", "text", "客户信用代码", "客户统一社会信用代码", personal=True),
    _f("customer_phone", "phone", "客户手机", "客户电话", "寄件人电话", "寄件人手机",
       "发件人电话", "发件人手机", "sender_phone", personal=True),
]  # fmt: skip

FIELDS: dict[ImportKind, list[FieldSpec]] = {
    ImportKind.customers: [
        _f("guanxi_id", "int", "系统编号", "guanxiid", "系统id"),
        _f(
            "external_id",
            "text",
            "customernumber",
            "客户编号",
            "客户编码",
            "客户id",
            "编号",
            "id",
            "customerid",
            "customerno",
            "customer_code",
            "externalid",
            "客户代码",
            "会员号",
            "会员编号",
        ),
        _f(
            "name",
            "text",
            "客户名称",
            "客户名",
            "名称",
            "姓名",
            "公司名称",
            "企业名称",
            "单位名称",
            "customer",
            "customername",
            "fullname",
            "company",
        ),
        _f(
            "kind",
            "enum",
            "客户类型",
            "类型",
            "客户类别",
            "type",
            "customertype",
            enum=CustomerKind,
        ),
        _f(
            "phone",
            "phone",
            "phones",
            "手机",
            "手机号",
            "手机号码",
            "电话",
            "联系电话",
            "电话号码",
            "座机",
            "固定电话",
            "固话",
            "移动电话",
            "mobile",
            "tel",
            "telephone",
            "phonenumber",
            "cellphone",
            personal=True,
            many=True,
        ),
        _f("email", "text", "邮箱", "电子邮箱", "电子邮件", "e-mail", "mail", personal=True),
        _f(
            "id_number",
            "text",
            "身份证",
            "身份证号",
            "身份证号码",
            "证件号",
            "证件号码",
            "idcard",
            "residentid",
            personal=True,
        ),
        _f(
            "credit_code",
            "text",
            "统一社会信用代码",
            "信用代码",
            "社会信用代码",
            "uscc",
            "creditcode",
            personal=True,
        ),
        _f(
            "address",
            "text",
            "地址",
            "详细地址",
            "联系地址",
            "通讯地址",
            "收货地址",
            "addressline",
            personal=True,
        ),
        _f("province", "text", "省", "省份", "所在省"),
        _f("city", "text", "市", "城市", "所在市"),
        _f("district", "text", "区", "区县", "县区", "所在区"),
        _f("address_detail", "text", "街道地址", "门牌", "detail", personal=True),
        _f(
            "source",
            "enum",
            "来源",
            "来源渠道",
            "渠道",
            "获客渠道",
            "客户来源",
            "channel",
            enum=SourceChannel,
        ),
        _f("industry", "text", "行业", "所属行业"),
        _f("region", "text", "区域", "所属区域", "大区", "片区"),
        _f(
            "owner",
            "text",
            "负责人",
            "客户经理",
            "归属人",
            "销售",
            "accountmanager",
            "owner_username",
        ),
        _f("tags", "list", "标签", "客户标签", "tag", "labels"),
        _f("birthday", "date", "生日", "出生日期", "birthdate", "dateofbirth", personal=True),
        _f(
            "lifecycle_stage",
            "enum",
            "生命周期",
            "生命周期阶段",
            "客户阶段",
            "阶段",
            "stage",
            "lifecycle",
            enum=LifecycleStage,
        ),
        _f("credit_rating", "enum", "信用等级", "信用评级", "rating", enum=CreditRating),
        _f("notes", "text", "备注", "说明", "note", "remark", "remarks", "comment"),
    ],
    ImportKind.contacts: [
        *_CUSTOMER_REF[:2],
        _f("customer_name", "text", "客户名称", "公司名称", "企业名称", "单位名称", "company"),
        _f("name", "text", "联系人", "联系人姓名", "姓名", "contact", "contactname"),
        _f("title", "text", "职务", "职位", "岗位", "jobtitle", "position"),
        _f(
            "phone",
            "phone",
            "联系人电话",
            "联系人手机",
            "手机",
            "手机号",
            "电话",
            "联系电话",
            "mobile",
            "tel",
            personal=True,
        ),
        _f("email", "text", "邮箱", "电子邮箱", "e-mail", "mail", personal=True),
        _f("is_primary", "bool", "主要联系人", "首要联系人", "primary", "isprimary"),
    ],
    ImportKind.shipments: [
        _f(
            "waybill_no",
            "text",
            "运单号",
            "运单编号",
            "快递单号",
            "单号",
            "订单号",
            "waybill",
            "waybillno",
            "trackingno",
            "trackingnumber",
            "orderno",
        ),
        *_CUSTOMER_REF,
        _f("kind", "enum", "单据类型", enum=ShipmentKind),
        _f(
            "service_type",
            "enum",
            "产品类型",
            "服务类型",
            "产品",
            "业务类型",
            "service",
            enum=ServiceType,
        ),
        _f("status", "enum", "状态", "运单状态", "物流状态", enum=ShipmentStatus),
        _f("receiver_name", "text", "收件人", "收件人姓名", "收货人", "receiver", personal=True),
        _f(
            "receiver_phone",
            "phone",
            "收件人电话",
            "收件人手机",
            "收货人电话",
            "receivertel",
            personal=True,
        ),
        _f("origin_province", "text", "始发省", "寄件省", "发件省", "始发省份"),
        _f("origin_city", "text", "始发城市", "始发市", "寄件城市", "发件城市"),
        _f("dest_province", "text", "目的省", "收件省", "目的省份", "到达省"),
        _f("dest_city", "text", "目的城市", "目的市", "收件城市", "到达城市"),
        _f("dest_district", "text", "目的区县", "收件区县", "目的区"),
        _f("weight_g", "grams", "重量", "计费重量", "重量kg", "weight"),
        _f("fee_fen", "fen", "运费", "费用", "金额", "应收运费", "fee", "amount", "price"),
        _f("insured_value_fen", "fen", "保价金额", "保价", "声明价值", "insuredvalue"),
        _f("cod_amount_fen", "fen", "代收货款", "代收金额", "cod", "codamount"),
        _f("door_delivery", "bool", "送货上门", "上门派送"),
        _f("signed_receipt_return", "bool", "签单返还", "回单"),
        _f(
            "created_at",
            "datetime",
            "下单时间",
            "寄件时间",
            "揽收时间",
            "创建时间",
            "日期",
            "date",
            "created",
            "shipdate",
        ),
        _f("promised_at", "datetime", "承诺时间", "承诺送达时间", "预计送达", "时效截止"),
        _f("delivered_at", "datetime", "签收时间", "送达时间", "delivered"),
        _f("is_damaged", "bool", "破损", "是否破损", "damaged"),
        _f("is_lost", "bool", "丢失", "是否丢失", "遗失", "lost"),
        _f("destination", "text", "目的地", "旅游目的地"),
        _f("departure_date", "date", "出发日期", "出团日期"),
        _f("return_date", "date", "返回日期", "回团日期"),
        _f("party_size", "int", "人数", "出行人数"),
        _f("product_name", "text", "商品名称", "品名", "货物名称", "product"),
        _f("quantity", "int", "数量", "件数", "qty"),
    ],
}

# What people write for coded values, besides the code itself and its English label.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "CustomerKind": {
        "个人": "individual", "个人客户": "individual", "散客": "individual",
        "person": "individual", "personal": "individual", "企业": "enterprise",
        "企业客户": "enterprise", "公司": "enterprise", "单位": "enterprise",
        "商家": "enterprise", "company": "enterprise", "business": "enterprise",
        "政府": "government", "政府机关": "government", "机关": "government",
        "事业单位": "government", "政府/事业单位": "government", "public": "government",
    },
    "SourceChannel": {
        "官网": "website", "网站": "website", "网页": "website", "客户端": "app",
        "手机app": "app", "微信": "wechat", "公众号": "wechat", "小程序": "wechat",
        "微信小程序": "wechat", "网点": "outlet", "营业部": "outlet", "门店": "outlet",
        "营业网点": "outlet", "驿站": "pickup_point", "自提点": "pickup_point",
        "代收点": "pickup_point", "快递柜": "pickup_point", "电商": "ecommerce",
        "电商平台": "ecommerce", "淘宝": "ecommerce", "天猫": "ecommerce", "京东": "ecommerce",
        "拼多多": "ecommerce", "抖音": "ecommerce", "推荐": "referral", "转介绍": "referral",
        "老客户推荐": "referral", "陌生拜访": "cold_outreach", "陌拜": "cold_outreach",
        "地推": "cold_outreach", "第三方": "third_party", "合作方": "third_party",
        "渠道商": "third_party", "热线": "hotline", "客服热线": "hotline", "400": "hotline",
        "电话": "hotline", "导入": "import", "其他": "other", "其它": "other",
    },
    "LifecycleStage": {
        "潜在": "prospect", "潜在客户": "prospect", "意向": "prospect", "新客户": "new",
        "新": "new", "新客": "new", "活跃": "active", "活跃客户": "active", "正常": "active",
        "沉睡": "dormant", "休眠": "dormant", "沉默": "dormant", "流失": "churned",
        "已流失": "churned",
    },
    "ShipmentKind": {"运单": "waybill", "快递": "waybill", "订单": "order", "预订": "booking",
                     "预定": "booking", "行程": "booking"},
    "ServiceType": {
        "标准": "standard", "标准快递": "standard", "普通": "standard", "经济": "standard",
        "特快": "express", "加急": "express", "次日达": "express", "标快": "express",
        "当日达": "same_day", "同城当日": "same_day", "即日达": "same_day",
        "冷链": "cold_chain", "国际": "international", "国际快递": "international",
    },
    "ShipmentStatus": {
        "已下单": "created", "待揽收": "created", "下单": "created", "已揽收": "picked_up",
        "已揽件": "picked_up", "揽收": "picked_up", "运输中": "in_transit", "在途": "in_transit",
        "派送中": "out_for_delivery", "派件中": "out_for_delivery", "已签收": "delivered",
        "签收": "delivered", "已送达": "delivered", "妥投": "delivered", "退回": "returned",
        "已退回": "returned", "退件": "returned", "丢失": "lost", "遗失": "lost",
        "取消": "cancelled", "已取消": "cancelled",
    },
    "CreditRating": {},
}  # fmt: skip


def header_key(text: str) -> str:
    """The comparable form of a header: folded, lower case, no units in brackets, no
    spaces, underscores, dashes, colons or required-field stars."""
    text = clean_text(text).lower()
    text = re.sub(r"[(（\[【][^)）\]】]*[)）\]】]", "", text)
    # Composed again once the spaces are gone: "A´" folds to "a", a space and a combining
    # accent, and without the space to an uncomposed "á" that folded again gives "á".
    return unicodedata.normalize("NFKC", re.sub(r"[\s_\-*:：#.]", "", text))


def enum_value(spec: FieldSpec, raw: str) -> str | None:
    """The code for a coded cell (``微信`` -> ``wechat``), or None when not recognised."""
    if spec.enum is None:
        raise TypeError(f"{spec.name} is not a coded field")
    text = clean_text(raw)
    folded = text.lower().replace(" ", "_").replace("-", "_")
    code = _codes(spec.enum).get(folded)
    if code is not None:
        return code
    table = VALUE_SYNONYMS.get(spec.enum.__name__, {})
    return table.get(text) or table.get(folded) or _labels().get(folded)


@cache
def _codes(enum: type[StrEnum]) -> dict[str, str]:
    """An enum's codes by their lower-cased value and member name."""
    out: dict[str, str] = {}
    for member in enum:
        out.setdefault(member.value.lower(), member.value)
        out.setdefault(member.name.lower(), member.value)
    return out


@cache
def _labels() -> dict[str, str]:
    """The UI's own labels, English and Chinese, back to codes (what an export writes)."""
    from guanxi.core.i18n import gettext
    from guanxi.customers.enums import LABELS as CUSTOMER_LABELS
    from guanxi.shipments.enums import LABELS as SHIPMENT_LABELS

    out: dict[str, str] = {}
    for labels in (CUSTOMER_LABELS, SHIPMENT_LABELS):
        for code, label in labels.items():
            for text in (label, gettext("zh_CN", label)):
                out.setdefault(text.lower().replace(" ", "_").replace("-", "_"), code)
    return out


@dataclass
class ColumnMap:
    """The fields of a file's columns; ``unknown`` headers are reported and ignored."""

    kind: ImportKind
    headers: list[str]
    fields: dict[int, FieldSpec] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def header_of(self, name: str, nth: int = 0) -> str:
        """The header of the ``nth`` column feeding field ``name`` (for error reports)."""
        found = [self.headers[i] for i, f in sorted(self.fields.items()) if f.name == name]
        if not found:
            return name
        return found[min(nth, len(found) - 1)]

    def as_json(self) -> dict[str, str | None]:
        """Header -> field name, unknown columns -> None (stored with the job)."""
        out: dict[str, str | None] = {h: None for h in self.headers if h}
        for index, spec in self.fields.items():
            out[self.headers[index]] = spec.name
        return out


class MappingError(Exception):
    """A mapping file that cannot be used; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_mapping(path: Path) -> dict[str, str | None]:
    """A mapping file: JSON ``{"columns": {"header": "field" | null}}`` or the bare object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise MappingError(f"mapping file unreadable: {exc}") from exc
    columns = data.get("columns", data) if isinstance(data, dict) else None
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()
    ):
        raise MappingError('mapping file must be {"columns": {"header": "field" or null}}')
    return columns


def build_map(
    kind: ImportKind, headers: list[str], overrides: dict[str, str | None] | None = None
) -> ColumnMap:
    """Map headers to fields: overrides first (by exact or folded header), then synonyms."""
    specs = {s.name: s for s in FIELDS[kind]}
    by_key: dict[str, FieldSpec] = {}
    for known in FIELDS[kind]:
        for synonym in known.synonyms:
            by_key.setdefault(header_key(synonym), known)
    folded_overrides = {header_key(k): v for k, v in (overrides or {}).items()}
    # Every target is checked, also one whose header folds like a later one's and is
    # overwritten in the folded map ({"A": "bogus", "a": null} reported nothing).
    for target in (overrides or {}).values():
        if target is not None and target not in specs:
            raise MappingError(f"unknown field in mapping file: {target}")
    result = ColumnMap(kind=kind, headers=headers)
    taken: set[str] = set()
    for index, header in enumerate(headers):
        key = header_key(header)
        if not key:
            continue
        spec: FieldSpec | None
        if key in folded_overrides:
            target = folded_overrides[key]
            spec = specs[target] if target else None
        else:
            spec = by_key.get(key)
        if spec is None or (spec.name in taken and not spec.many):
            result.unknown.append(header)
            continue
        taken.add(spec.name)
        result.fields[index] = spec
    return result
