"""The fast path of the customer import: a row whose every cell is plainly valid becomes its
``CustomerCreate`` without the schema's validation machinery.

Most rows of a real file are ordinary (a name, an 11-digit mobile, an address line, a date
in ISO form, a known channel). For such a row this module applies the same rules the schema
would — the same normalisers (``normalize_phone``, ``normalize_email``, ...), the same length
limits, the same kind rules — and builds the model with ``model_construct``, which skips the
validator (about half of a row's time before the write). The first thing it is not sure of
(a cell too long, an unknown coded value, an invalid phone, a birthday in the future, a
formula guard, a ``guanxi_id``...) sends the whole row to the ordinary path
(:meth:`RowParser.parse` then :meth:`RowParser.validate`), which produces the error report.
So the outcome of every row — the model for a good one, the errors for a bad one — is the
ordinary path's; ``tests/integration/imports/test_fast_path.py`` compares the two on a mixed
file.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from guanxi.core import clock
from guanxi.customers.enums import CustomerKind
from guanxi.customers.schemas import AddressIn, CustomerCreate
from guanxi.customers.validation import (
    InvalidValue,
    normalize_credit_code,
    normalize_email,
    normalize_phone,
    normalize_resident_id,
)
from guanxi.imports import cleaning
from guanxi.imports.mapping import FieldSpec, enum_value
from guanxi.imports.rows import CSV_ERROR, MAX_CELL, ParsedRow, RowParser, merge_address_parts
from guanxi.shipments.schemas import ShipmentCreate

# What a cell of each field may hold for the schema to take it as it is (its
# ``max_length``); the text fields' ``min_length`` of 1 holds for any non-empty cleaned cell.
_TEXT_LIMITS = {"external_id": 64, "name": 200, "industry": 50, "region": 50, "notes": 4000}
_IDENTIFIERS: dict[str, tuple[int, Callable[[str], str]]] = {
    "email": (254, normalize_email),
    "id_number": (30, normalize_resident_id),
    "credit_code": (30, normalize_credit_code),
}
_ADDRESS_KEYS = {
    "address": "line",
    "address_detail": "detail",
    "province": "province",
    "city": "city",
    "district": "district",
}
_ADDRESS_LIMITS = {"line": 300, "detail": 300, "province": 30, "city": 30, "district": 30}
_PLAIN_MOBILE = re.compile(r"1[3-9]\d{9}")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ENUM_CACHE_LIMIT = 4096  # distinct spellings remembered per coded column
M = TypeVar("M", bound=BaseModel)


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The model's field defaults (fields without one left out, as ``model_construct`` does)."""
    defaults = {
        name: f.get_default(call_default_factory=True)
        for name, f in model.model_fields.items()
        if not f.is_required()
    }
    if not all(v is None or isinstance(v, str | int) for v in defaults.values()):
        # Shared between instances below: only immutable defaults (None, enum members) may be.
        raise TypeError(f"{model.__name__} has a mutable default; the fast path cannot share it")
    return defaults


_CUSTOMER_DEFAULTS = _defaults(CustomerCreate)
_ADDRESS_DEFAULTS = _defaults(AddressIn)
_SHIPMENT_DEFAULTS = _defaults(ShipmentCreate)


def _construct(model: type[M], defaults: dict[str, Any], fields: dict[str, Any]) -> M:
    """``model.model_construct(**fields)`` without its per-field default lookup (a deep copy
    of each default, most of the fast path's time): the same instance state, built once."""
    obj = model.__new__(model)
    state = dict(defaults)
    state.update(fields)
    object.__setattr__(obj, "__dict__", state)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class _Slow(Exception):
    """This row is not plainly valid: the ordinary path decides."""


Op = Callable[[str, dict[str, Any]], None]


class FastPath:
    """The plainly valid rows of one file, for one import kind (see the module's text)."""

    def __init__(self, parser: RowParser) -> None:
        self.parser = parser
        self.width = len(parser.cmap.headers)
        self.today = clock.now().date()
        self.ops: list[tuple[int, Op]] = [
            (index, self._op(spec)) for index, spec, _header in parser.columns
        ]

    @classmethod
    def of(cls, parser: RowParser) -> FastPath | None:
        """The fast path for the parser's import kind (contacts have none: few rows)."""
        if parser.kind == "customers":
            return CustomerFastPath(parser)
        if parser.kind == "shipments":
            return ShipmentFastPath(parser)
        return None

    def start_batch(self) -> None:
        """Read the clock once per batch (the birthday rule compares with today)."""
        self.today = clock.now().date()

    def convert(self, number: int, cells: list[str]) -> ParsedRow | None:
        """The row, ready for its writer, or None when the ordinary path must decide."""
        if len(cells) > self.width or cells == [CSV_ERROR]:
            return None
        fields: dict[str, Any] = {}
        try:
            for index, op in self.ops:
                raw = cells[index] if index < len(cells) else ""
                if not raw:
                    continue
                if len(raw) > MAX_CELL or raw[0] == "'":
                    return None
                text = cleaning.clean_text(raw)
                if text:
                    op(text, fields)
            return self._finish(number, fields)
        except (_Slow, InvalidValue):
            return None

    def _finish(self, number: int, fields: dict[str, Any]) -> ParsedRow | None:
        raise NotImplementedError

    def _op(self, spec: FieldSpec) -> Op:
        raise NotImplementedError


class CustomerFastPath(FastPath):
    """Builds ``CustomerCreate`` (``ParsedRow.model``) for plainly valid customer rows."""

    def _finish(self, number: int, fields: dict[str, Any]) -> ParsedRow | None:
        if "name" not in fields:
            return None
        known_id = fields.pop("guanxi_id", None)
        address = fields.get("addresses")
        if address is not None:
            merge_address_parts(address)
            for key, value in address.items():
                if len(value) > _ADDRESS_LIMITS[key]:
                    return None
            if not address.get("line") and not address.get("detail"):
                return None
            fields["addresses"] = [_construct(AddressIn, _ADDRESS_DEFAULTS, address)]
        if "phones" in fields and len(fields["phones"]) > 10:
            return None
        kind = fields.get("kind")
        if kind is None and fields.get("credit_code"):
            # As RowParser.validate: a row with a credit code and no kind is an organisation.
            kind = fields["kind"] = CustomerKind.enterprise
        kind = kind or CustomerKind.individual
        if kind is CustomerKind.individual and fields.get("credit_code"):
            return None
        if kind is not CustomerKind.individual and fields.get("id_number"):
            return None
        row = ParsedRow(number, model=_construct(CustomerCreate, _CUSTOMER_DEFAULTS, fields))
        if known_id is not None:
            row.refs["guanxi_id"] = str(known_id)
        return row

    def _op(self, spec: FieldSpec) -> Op:
        name = spec.name
        if name == "phone":
            return self._phone
        if name in _TEXT_LIMITS:
            return _text(name, _TEXT_LIMITS[name])
        if name in _IDENTIFIERS:
            limit, normalise = _IDENTIFIERS[name]
            return _identifier(name, limit, normalise)
        if name in _ADDRESS_KEYS:
            return _address_part(_ADDRESS_KEYS[name])
        if spec.parse == "enum":
            return _coded(spec)
        if name == "birthday":
            return self._birthday
        if name == "tags":
            return _tags
        if name == "owner":
            return self._owner
        if name == "guanxi_id":
            return _guanxi_id
        return _never

    def _phone(self, text: str, fields: dict[str, Any]) -> None:
        # The common case (one plain mobile) needs no splitting; InvalidValue goes to the
        # ordinary path, which reports it.
        parts = [text] if _PLAIN_MOBILE.fullmatch(text) else cleaning.split_list(text)
        for part in parts:
            if len(part) > 40:
                raise _Slow
            fields.setdefault("phones", []).append(normalize_phone(part))

    def _birthday(self, text: str, fields: dict[str, Any]) -> None:
        match = _ISO_DATE.fullmatch(text)
        try:
            if match:
                day = datetime.date(int(match[1]), int(match[2]), int(match[3]))
            else:
                day = cleaning.parse_date(text)
        except ValueError as exc:  # InvalidValue included
            raise _Slow from exc
        if day > self.today:
            raise _Slow
        fields["birthday"] = day

    def _owner(self, text: str, fields: dict[str, Any]) -> None:
        owners = self.parser.owners
        owner_id = owners.get(text) or owners.get(text.lower())
        if owner_id is None:
            raise _Slow
        fields["owner_id"] = owner_id


# ShipmentCreate's limits, field by field: text lengths, integer ranges.
_SHIPMENT_TEXT = {
    "receiver_name": 100, "origin_province": 30, "origin_city": 30, "dest_province": 30,
    "dest_city": 30, "dest_district": 30, "destination": 100, "product_name": 200,
}  # fmt: skip
_SHIPMENT_INTS: dict[str, tuple[int, int]] = {
    "weight_g": (0, 10**8),
    "fee_fen": (0, 10**12),
    "insured_value_fen": (0, 10**12),
    "cod_amount_fen": (0, 10**12),
    "party_size": (1, 10_000),
    "quantity": (1, 10**9),
}
_WAYBILL = re.compile(r"[A-Za-z0-9\-]{6,40}")
_MOMENT_CACHE_LIMIT = 100_000  # distinct date-time spellings remembered (a day has 1,440)


class ShipmentFastPath(FastPath):
    """Cleans plainly valid shipment rows into the schema's values (``ParsedRow.payload``,
    ``checked``); :meth:`model` makes the ``ShipmentCreate`` once the customer is known."""

    def __init__(self, parser: RowParser) -> None:
        self.moments: dict[str, datetime.datetime] = {}
        super().__init__(parser)

    def _finish(self, number: int, fields: dict[str, Any]) -> ParsedRow | None:
        if "waybill_no" not in fields:
            return None
        refs = {k: fields.pop(k) for k in _CUSTOMER_REFS if k in fields}
        return ParsedRow(number, payload=fields, refs=refs, checked=True)

    @staticmethod
    def model(payload: dict[str, Any], customer_id: int) -> ShipmentCreate:
        """The row's model: what ``ShipmentCreate`` makes of the same values."""
        return _construct(
            ShipmentCreate, _SHIPMENT_DEFAULTS, {**payload, "customer_id": customer_id}
        )

    def _op(self, spec: FieldSpec) -> Op:
        name, parse = spec.name, spec.parse
        if name == "waybill_no":
            return _waybill
        if name in _CUSTOMER_REFS:
            return _customer_phone if name == "customer_phone" else _ref(name)
        if name in _SHIPMENT_TEXT:
            return _text(name, _SHIPMENT_TEXT[name])
        if name == "receiver_phone":
            return _identifier(name, 40, normalize_phone)
        if parse == "enum":
            return _coded(spec)
        if parse in ("fen", "grams", "int"):
            return _bounded(name, parse, *_SHIPMENT_INTS[name])
        if parse == "bool":
            return _boolean(name)
        if parse == "datetime":
            return self._moment(name)
        if parse == "date":
            return _day(name)
        return _never

    def _moment(self, name: str) -> Op:
        moments, tz = self.moments, self.parser.tz

        def op(text: str, fields: dict[str, Any]) -> None:
            moment = moments.get(text)
            if moment is None:
                moment = cleaning.parse_datetime(text, tz)
                if len(moments) < _MOMENT_CACHE_LIMIT:
                    moments[text] = moment
            fields[name] = moment

        return op


_CUSTOMER_REFS = ("customer_external_id", "customer_credit_code", "customer_phone")


def _waybill(text: str, fields: dict[str, Any]) -> None:
    if not _WAYBILL.fullmatch(text):
        raise _Slow
    fields["waybill_no"] = text.upper()


def _ref(name: str) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        fields[name] = text

    return op


def _customer_phone(text: str, fields: dict[str, Any]) -> None:
    fields["customer_phone"] = normalize_phone(text)


def _bounded(name: str, parse: str, low: int, high: int) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        if parse == "fen":
            value = cleaning.parse_fen(text)
        elif parse == "grams":
            value = cleaning.parse_grams(text)
        else:
            if not text.isdigit() or len(text) > 12:
                raise _Slow
            value = int(text)
        if not low <= value <= high:
            raise _Slow
        fields[name] = value

    return op


def _boolean(name: str) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        fields[name] = cleaning.parse_bool(text)

    return op


def _day(name: str) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        fields[name] = cleaning.parse_date(text)

    return op


def _text(name: str, limit: int) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        if len(text) > limit:
            raise _Slow
        fields[name] = text

    return op


def _identifier(name: str, limit: int, normalise: Callable[[str], str]) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        if len(text) > limit:
            raise _Slow
        fields[name] = normalise(text)  # InvalidValue: the ordinary path reports it

    return op


def _address_part(key: str) -> Op:
    def op(text: str, fields: dict[str, Any]) -> None:
        fields.setdefault("addresses", {})[key] = text

    return op


def _coded(spec: FieldSpec) -> Op:
    enum = spec.enum
    if enum is None:  # pragma: no cover - every coded field names its enum
        return _never
    members: dict[str, Any] = {}

    def op(text: str, fields: dict[str, Any]) -> None:
        member = members.get(text)
        if member is None:
            code = enum_value(spec, text)
            try:
                member = enum(code) if code is not None else None
            except ValueError:
                member = None
            if member is None:
                raise _Slow
            if len(members) < _ENUM_CACHE_LIMIT:
                members[text] = member
        fields[spec.name] = member

    return op


def _tags(text: str, fields: dict[str, Any]) -> None:
    tags = cleaning.split_list(text)
    if len(tags) > 30 or any(len(t) > 50 for t in tags):
        raise _Slow
    fields["tags"] = tags


def _guanxi_id(text: str, fields: dict[str, Any]) -> None:
    if not text.isdigit() or len(text) > 12:
        raise _Slow
    fields["guanxi_id"] = int(text)


def _never(text: str, fields: dict[str, Any]) -> None:
    raise _Slow
