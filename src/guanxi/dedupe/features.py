"""The comparison features of customers: normalised names and addresses, blind indexes.

Only what linkage needs leaves the database, and nothing in clear that is encrypted there:
phones, e-mail, ID numbers and credit codes travel as their keyed blind indexes (opaque
strings, equal exactly when the values are). Names and address lines are folded so the
variants one person arrives with compare equal: full-width and traditional characters,
spaces, and for organisations the legal-form suffix (有限公司, 分公司 ...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache
from typing import Any

import pyarrow as pa
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerAddress, CustomerPhone

# Legal forms and branch markers stripped from organisation names, longest first so that
# 股份有限公司 goes before 有限公司.
_ORG_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "集团",
    "公司",
    "co.,ltd.",
    "co., ltd.",
    "co.ltd.",
    "ltd.",
    "ltd",
    "co.",
    "inc.",
)
_SPACE = re.compile(r"[\s\u3000·.,，。()（）\-]+")

# Arrow schema of the feature table; also the shape of an incremental check's new records.
SCHEMA = pa.schema(
    [
        ("unique_id", pa.int64()),
        ("kind", pa.string()),
        ("name_n", pa.string()),
        ("name_core", pa.string()),
        ("phones", pa.list_(pa.string())),
        ("email", pa.string()),
        ("id_number", pa.string()),
        ("credit_code", pa.string()),
        ("birthday", pa.string()),
        ("province", pa.string()),
        ("city", pa.string()),
        ("district", pa.string()),
        ("detail_n", pa.string()),
        ("building", pa.string()),
    ]
)


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """Traditional characters folded to simplified (張偉 -> 张伟)."""
    return str(_t2s().convert(text))


def fold(text: str | None) -> str | None:
    """NFKC, simplified characters, lower case, no spaces or punctuation; None if empty."""
    if not text:
        return None
    out = _SPACE.sub("", simplified(unicodedata.normalize("NFKC", text)).lower())
    return out or None


def core_name(name_n: str | None, kind: str) -> str | None:
    """An organisation's name without its legal form or branch marker; people unchanged."""
    if not name_n or kind == "individual":
        return name_n
    core = name_n
    stripped = True
    while stripped:  # 某某物流股份有限公司分公司 -> 某某物流
        stripped = False
        for suffix in _ORG_SUFFIXES:
            if core.endswith(suffix) and len(core) > len(suffix) + 1:
                core = core[: -len(suffix)]
                stripped = True
    return core


def building(detail_n: str | None) -> str | None:
    """The street and number of a folded address line, without the room (…号, …弄)."""
    if not detail_n:
        return None
    for mark in ("号", "弄"):
        at = detail_n.find(mark)
        if at > 0:
            return detail_n[: at + 1]
    return detail_n


def _rows_to_table(
    customers: Sequence[Row[Any] | tuple[Any, ...]],
    phones: dict[int, list[str]],
    addresses: dict[int, tuple[str | None, str | None, str | None, str | None]],
) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for row in customers:
        cid, kind, name, email, id_number, credit, birthday = tuple(row)
        name_n = fold(name)
        province, city, district, detail = addresses.get(cid, (None, None, None, None))
        cols["unique_id"].append(cid)
        cols["kind"].append(kind)
        cols["name_n"].append(name_n)
        cols["name_core"].append(core_name(name_n, kind))
        cols["phones"].append(phones.get(cid) or None)
        cols["email"].append(email)
        cols["id_number"].append(id_number)
        cols["credit_code"].append(credit)
        cols["birthday"].append(birthday.isoformat() if birthday else None)
        cols["province"].append(province)
        cols["city"].append(city)
        cols["district"].append(district)
        detail_n = fold(detail)
        cols["detail_n"].append(detail_n)
        cols["building"].append(building(detail_n))
    return pa.table(cols, schema=SCHEMA)


# The id a not-yet-saved record is compared under (real ids start at 1).
NEW_RECORD_ID = 0


def record_table(
    *,
    name: str,
    kind: str,
    phones: Sequence[str] = (),
    email: str | None = None,
    id_number: str | None = None,
    credit_code: str | None = None,
    birthday: str | None = None,
    address: tuple[str | None, str | None, str | None, str | None] | None = None,
) -> pa.Table:
    """The feature row of a record about to be created (normalised values, in memory).

    Identifiers become blind indexes here, the same keyed hash stored beside each encrypted
    value, so the new record compares with stored ones without decrypting anything.
    """
    from guanxi.security.crypto import cipher

    c = cipher()

    def bidx(field: str, value: str | None) -> str | None:
        return c.blind_index(field, value) if value else None

    row = (NEW_RECORD_ID, kind, name, bidx("email", email), bidx("id_number", id_number))
    customers = [
        (*row, bidx("credit_code", credit_code), date.fromisoformat(birthday) if birthday else None)
    ]
    phone_idx = {NEW_RECORD_ID: [c.blind_index("phone", p) for p in phones]}
    addresses = {NEW_RECORD_ID: address} if address else {}
    return _rows_to_table(customers, phone_idx, addresses)


_CUSTOMER_COLS = (
    Customer.id,
    Customer.kind,
    Customer.name,
    Customer.email_bidx,
    Customer.id_number_bidx,
    Customer.credit_code_bidx,
    Customer.birthday,
)


def load_features(
    session: Session, ids: Iterable[int] | None = None, *, chunk: int = 200_000
) -> pa.Table:
    """The feature table of the active customers (all, or the given ids).

    Read in id ranges so a million customers never sit in memory as ORM objects; only the
    first address (the one a record is known by) is compared.
    """
    id_list = sorted(set(ids)) if ids is not None else None
    tables: list[pa.Table] = []
    if id_list is not None:
        groups = [id_list[i : i + 500] for i in range(0, len(id_list), 500)]
        for group in groups:
            tables.append(_load_range(session, Customer.id.in_(group), group_ids=group))
    else:
        top = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1)) or 0
        for lo in range(0, top, chunk):
            tables.append(
                _load_range(session, Customer.id > lo, Customer.id <= lo + chunk, group_ids=None)
            )
    if not tables:
        return SCHEMA.empty_table()
    return drop_common_addresses(pa.concat_tables(tables))


# An address line shared by more customers than this (a campus, a market, an industrial
# park written without numbers) says little about who is who, and as a blocking key it
# would make one block of all of them: it is left out of the comparison.
COMMON_ADDRESS = 50


def drop_common_addresses(table: pa.Table, limit: int = COMMON_ADDRESS) -> pa.Table:
    """Blank ``detail_n`` / ``building`` where more than ``limit`` customers share them
    within a city."""
    import pyarrow.compute as pc

    for column in ("detail_n", "building"):
        counts = table.group_by(["city", column]).aggregate([([], "count_all")])
        common = counts.filter(pc.greater(counts["count_all"], limit))
        if common.num_rows == 0:
            continue
        keys = pc.binary_join_element_wise(common["city"], common[column], "\x1f")
        mine = pc.binary_join_element_wise(table["city"], table[column], "\x1f")
        blank = pc.fill_null(pc.is_in(mine, value_set=keys), False)
        cleaned = pc.if_else(blank, pa.scalar(None, pa.string()), table[column])
        table = table.set_column(table.schema.get_field_index(column), column, cleaned)
    return table


def _load_range(session: Session, *where: Any, group_ids: list[int] | None) -> pa.Table:
    active = Customer.status == CustomerStatus.active.value
    customers = session.execute(
        select(*_CUSTOMER_COLS).where(active, *where).order_by(Customer.id)
    ).all()
    if not customers:
        return SCHEMA.empty_table()
    lo, hi = customers[0][0], customers[-1][0]
    span = (
        CustomerPhone.customer_id.in_(group_ids)
        if group_ids is not None
        else CustomerPhone.customer_id.between(lo, hi)
    )
    phones: dict[int, list[str]] = {}
    for cid, bidx in session.execute(
        select(CustomerPhone.customer_id, CustomerPhone.phone_bidx)
        .where(span)
        .order_by(CustomerPhone.customer_id, CustomerPhone.position)
    ):
        phones.setdefault(cid, []).append(bidx)
    addr_span = (
        CustomerAddress.customer_id.in_(group_ids)
        if group_ids is not None
        else CustomerAddress.customer_id.between(lo, hi)
    )
    addresses: dict[int, tuple[str | None, str | None, str | None, str | None]] = {}
    for cid, province, city, district, detail in session.execute(
        select(
            CustomerAddress.customer_id,
            CustomerAddress.province,
            CustomerAddress.city,
            CustomerAddress.district,
            CustomerAddress.detail,
        )
        .where(addr_span)
        .order_by(CustomerAddress.customer_id, CustomerAddress.position.desc())
    ):
        # Ordered by position descending: the last one written is position 0.
        addresses[cid] = (province, city, district, detail)
    return _rows_to_table(list(customers), phones, addresses)
