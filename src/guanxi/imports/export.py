"""Export of customers and shipments to CSV (UTF-8 with BOM, so Excel shows Chinese) and
XLSX, streamed page by page with the list's filters, masked per role.

A cell that begins with ``= + - @`` (or a tab / carriage return) is prefixed with an
apostrophe so a spreadsheet shows it as text instead of running it as a formula; the
importer removes that apostrophe again, so an export re-imports unchanged. Headers are the
ones the importer recognises, in the reader's language.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core.db import write_transaction
from guanxi.core.i18n import gettext
from guanxi.customers.enums import LABELS as CUSTOMER_LABELS
from guanxi.customers.models import Customer, CustomerAddress
from guanxi.customers.queries import CustomerFilters, list_customers
from guanxi.customers.validation import format_phone
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_credit_code, mask_email, mask_id_number, mask_phone
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.shipments.enums import LABELS as SHIPMENT_LABELS
from guanxi.shipments.models import Shipment

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAGE = 2000

CUSTOMER_COLUMNS = [
    ("guanxi_id", "系统编号", "Guanxi ID"),
    ("external_id", "客户编号", "Customer number"),
    ("name", "客户名称", "Name"),
    ("kind", "客户类型", "Kind"),
    ("phones", "手机", "Phone"),
    ("email", "邮箱", "Email"),
    ("id_number", "身份证号", "ID number"),
    ("credit_code", "统一社会信用代码", "Credit code"),
    ("province", "省", "Province"),
    ("city", "市", "City"),
    ("district", "区", "District"),
    ("detail", "详细地址", "Address"),
    ("source", "来源渠道", "Source"),
    ("industry", "行业", "Industry"),
    ("region", "区域", "Region"),
    ("owner", "负责人", "Account manager"),
    ("tags", "标签", "Tags"),
    ("birthday", "生日", "Birthday"),
    ("lifecycle_stage", "生命周期阶段", "Lifecycle stage"),
    ("credit_rating", "信用等级", "Credit rating"),
    ("notes", "备注", "Notes"),
    ("status", "状态", "Status"),
    ("created_at", "创建时间", "Created"),
]

SHIPMENT_COLUMNS = [
    ("waybill_no", "运单号", "Waybill"),
    ("customer_external_id", "客户编号", "Customer number"),
    ("customer_name", "客户名称", "Customer name"),
    ("kind", "单据类型", "Kind"),
    ("service_type", "产品类型", "Service type"),
    ("status", "状态", "Status"),
    ("receiver_name", "收件人", "Receiver"),
    ("receiver_phone", "收件人电话", "Receiver phone"),
    ("origin_province", "始发省", "Origin province"),
    ("origin_city", "始发城市", "Origin city"),
    ("dest_province", "目的省", "Destination province"),
    ("dest_city", "目的城市", "Destination city"),
    ("dest_district", "目的区县", "Destination district"),
    ("weight", "重量(kg)", "Weight (kg)"),
    ("fee", "运费(元)", "Fee (yuan)"),
    ("insured_value", "保价金额", "Insured value"),
    ("cod_amount", "代收货款", "COD amount"),
    ("created_at", "下单时间", "Created"),
    ("promised_at", "承诺时间", "Promised"),
    ("delivered_at", "签收时间", "Delivered"),
    ("is_damaged", "破损", "Damaged"),
    ("is_lost", "丢失", "Lost"),
]


def neutralise(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula (CSV / formula injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


class _Sink(Protocol):
    def row(self, values: Sequence[str]) -> None: ...
    def close(self) -> None: ...


class _CsvSink:
    def __init__(self, path: Path) -> None:
        self.fh = path.open("w", encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.fh)

    def row(self, values: Sequence[str]) -> None:
        self.writer.writerow(values)

    def close(self) -> None:
        self.fh.close()


class _XlsxSink:
    def __init__(self, path: Path) -> None:
        import xlsxwriter

        # constant_memory streams rows to disk; strings stay strings (no formula parsing).
        self.book = xlsxwriter.Workbook(
            str(path),
            {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False},
        )
        self.sheet = self.book.add_worksheet()
        self.n = 0

    def row(self, values: Sequence[str]) -> None:
        self.sheet.write_row(self.n, 0, values)
        self.n += 1

    def close(self) -> None:
        self.book.close()


def _sink(path: Path, fmt: str) -> _Sink:
    return _XlsxSink(path) if fmt == "xlsx" else _CsvSink(path)


@dataclass
class ExportResult:
    """What an export wrote."""

    rows: int
    revealed: bool
    path: Path


def _label(lang: str, labels: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    return gettext(lang, labels[code]) if code in labels else code


def _may_reveal(viewer: User | None, reveal: bool) -> bool:
    if not reveal:
        return False
    if viewer is None or not has_permission(viewer, Permission.customer_export_clear):
        from guanxi.core.errors import PermissionDenied

        raise PermissionDenied("missing permission customer.export_clear")
    return True


def _customer_pages(
    session: Session, filters: CustomerFilters, viewer: User | None
) -> Iterator[list[Customer]]:
    if viewer is None:
        # The command line without --as: every customer, identifiers masked.
        last = None
        while True:
            stmt = select(Customer).order_by(Customer.id).limit(PAGE)
            if filters.status:
                stmt = stmt.where(Customer.status == filters.status)
            if last is not None:
                stmt = stmt.where(Customer.id > last)
            page = list(session.scalars(stmt))
            if not page:
                return
            yield page
            last = page[-1].id
            session.expunge_all()
    else:
        cursor = None
        while True:
            page, cursor = list_customers(
                session, filters=filters, viewer=viewer, sort="id", cursor=cursor, limit=PAGE
            )
            if page:
                yield page
            if not cursor:
                return
            session.expunge_all()


def export_customers(
    session: Session,
    *,
    path: Path,
    fmt: str = "csv",
    viewer: User | None = None,
    filters: CustomerFilters | None = None,
    reveal: bool = False,
    lang: str = "zh_CN",
    actor: Actor | None = None,
) -> ExportResult:
    """Write the customers matching ``filters`` that ``viewer`` may see; audited."""
    filters = filters or CustomerFilters()
    clear = _may_reveal(viewer, reveal)
    c = cipher()
    sink = _sink(path, fmt)
    count = 0
    try:
        sink.row([zh if lang == "zh_CN" else en for _, zh, en in CUSTOMER_COLUMNS])
        for page in _customer_pages(session, filters, viewer):
            ids = [cu.id for cu in page]
            first_address: dict[int, CustomerAddress] = {}
            for found in session.scalars(
                select(CustomerAddress)
                .where(CustomerAddress.customer_id.in_(ids))
                .order_by(CustomerAddress.customer_id, CustomerAddress.position)
            ):
                first_address.setdefault(found.customer_id, found)
            for cu in page:
                phones = [c.decrypt("phone", p.phone_enc) for p in cu.phones]
                email = c.decrypt("email", cu.email_enc) if cu.email_enc else ""
                id_no = c.decrypt("id_number", cu.id_number_enc) if cu.id_number_enc else ""
                credit = c.decrypt("credit_code", cu.credit_code_enc) if cu.credit_code_enc else ""
                address = first_address.get(cu.id)
                values: dict[str, Any] = {
                    "guanxi_id": str(cu.id),
                    "external_id": cu.external_id or "",
                    "name": cu.name,
                    "kind": _label(lang, CUSTOMER_LABELS, cu.kind),
                    "phones": "; ".join(
                        format_phone(p) if clear else mask_phone(p) for p in phones
                    ),
                    "email": email if clear else (mask_email(email) if email else ""),
                    "id_number": id_no if clear else (mask_id_number(id_no) if id_no else ""),
                    "credit_code": credit
                    if clear
                    else (mask_credit_code(credit) if credit else ""),
                    "province": address.province if address else "",
                    "city": address.city if address else "",
                    "district": address.district if address else "",
                    "detail": address.detail if address else "",
                    "source": _label(lang, CUSTOMER_LABELS, cu.source),
                    "industry": cu.industry or "",
                    "region": cu.region or "",
                    "owner": cu.owner.display_name if cu.owner else "",
                    "tags": "、".join(t.name for t in cu.tags),
                    "birthday": cu.birthday.isoformat() if cu.birthday else "",
                    "lifecycle_stage": _label(lang, CUSTOMER_LABELS, cu.lifecycle_stage),
                    "credit_rating": cu.credit_rating or "",
                    "notes": cu.notes or "",
                    "status": _label(lang, CUSTOMER_LABELS, cu.status),
                    "created_at": cu.created_at.isoformat(),
                }
                sink.row([neutralise(str(values[key] or "")) for key, _, _ in CUSTOMER_COLUMNS])
                count += 1
    finally:
        sink.close()
    _audit(session, "customer.exported", count, clear, viewer, actor, fmt, filters)
    return ExportResult(rows=count, revealed=clear, path=path)


def _yuan(fen: int | None) -> str:
    if not fen:
        return "0"
    return f"{fen // 100}.{fen % 100:02d}" if fen % 100 else str(fen // 100)


def export_shipments(
    session: Session,
    *,
    path: Path,
    fmt: str = "csv",
    viewer: User | None = None,
    customer_id: int | None = None,
    status: str | None = None,
    reveal: bool = False,
    lang: str = "zh_CN",
    actor: Actor | None = None,
) -> ExportResult:
    """Write shipments (optionally of one customer or status); receiver phones masked."""
    clear = _may_reveal(viewer, reveal)
    c = cipher()
    sink = _sink(path, fmt)
    count = 0
    see_all = viewer is None or has_permission(viewer, Permission.customer_read_all)
    try:
        sink.row([zh if lang == "zh_CN" else en for _, zh, en in SHIPMENT_COLUMNS])
        last = 0
        while True:
            stmt = (
                select(Shipment, Customer.external_id, Customer.name)
                .join(Customer, Customer.id == Shipment.customer_id)
                .where(Shipment.id > last)
                .order_by(Shipment.id)
                .limit(PAGE)
            )
            if customer_id is not None:
                stmt = stmt.where(Shipment.customer_id == customer_id)
            if status:
                stmt = stmt.where(Shipment.status == status)
            if not see_all and viewer is not None:
                stmt = stmt.where(Customer.owner_id == viewer.id)
            page = session.execute(stmt).all()
            if not page:
                break
            for s, ext, cname in page:
                phone = c.decrypt("phone", s.receiver_phone_enc) if s.receiver_phone_enc else ""
                values = {
                    "waybill_no": s.waybill_no,
                    "customer_external_id": ext or "",
                    "customer_name": cname,
                    "kind": _label(lang, SHIPMENT_LABELS, s.kind),
                    "service_type": _label(lang, SHIPMENT_LABELS, s.service_type),
                    "status": _label(lang, SHIPMENT_LABELS, s.status),
                    "receiver_name": s.receiver_name or "",
                    "receiver_phone": (format_phone(phone) if clear else mask_phone(phone))
                    if phone
                    else "",
                    "origin_province": s.origin_province or "",
                    "origin_city": s.origin_city or "",
                    "dest_province": s.dest_province or "",
                    "dest_city": s.dest_city or "",
                    "dest_district": s.dest_district or "",
                    "weight": f"{s.weight_g / 1000:g}" if s.weight_g is not None else "",
                    "fee": _yuan(s.fee_fen),
                    "insured_value": _yuan(s.insured_value_fen),
                    "cod_amount": _yuan(s.cod_amount_fen),
                    "created_at": s.created_at.isoformat(),
                    "promised_at": s.promised_at.isoformat() if s.promised_at else "",
                    "delivered_at": s.delivered_at.isoformat() if s.delivered_at else "",
                    "is_damaged": "是" if s.is_damaged else "否",
                    "is_lost": "是" if s.is_lost else "否",
                }
                sink.row([neutralise(str(values[key])) for key, _, _ in SHIPMENT_COLUMNS])
                count += 1
            last = page[-1][0].id
            session.expunge_all()
    finally:
        sink.close()
    _audit(session, "shipment.exported", count, clear, viewer, actor, fmt, None)
    return ExportResult(rows=count, revealed=clear, path=path)


def _audit(
    session: Session,
    action: str,
    count: int,
    clear: bool,
    viewer: User | None,
    actor: Actor | None,
    fmt: str,
    filters: CustomerFilters | None,
) -> None:
    who = actor or (Actor(viewer.id, viewer.username) if viewer else Actor.system("cli"))
    described = (
        {k: str(v) for k, v in vars(filters).items() if v not in (None, {}, "")} if filters else {}
    )
    with write_transaction(session):
        record(
            session,
            actor=who,
            action=action,
            target_type="export",
            target_id=fmt,
            after={"rows": count, "revealed": clear, "filters": described},
        )
