"""From a file row to the domain's input shape, with every problem named by column.

Cells are cleaned here (invisible characters, full-width forms, dates, money, coded values);
the domain rules — phones, ID numbers, credit codes, e-mail, lengths, kinds — are applied by
the domains' own schemas (``CustomerCreate``, ``ContactIn``, ``ShipmentCreate``), the same code
the API runs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from guanxi.core.messages import ERROR_MESSAGES
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.validation import InvalidValue, normalize_phone
from guanxi.imports import cleaning
from guanxi.imports.mapping import ColumnMap, FieldSpec, enum_value

MAX_CELL = 5000  # characters; longer cells are refused before any rule runs
CSV_ERROR = "\x00csv_error"


@dataclass
class RowError:
    """One reason a row was rejected."""

    row: int
    column: str | None
    value: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the report."""
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "code": self.code,
            "message": self.message,
        }


def mask_value(raw: str) -> str:
    """A personal value as shown in an error report: enough to find it, not to use it."""
    text = raw.strip()
    if len(text) >= 8:
        return text[:3] + "*" * (len(text) - 5) + text[-2:]
    return "*" * len(text)


def shown_value(spec: FieldSpec | None, raw: str) -> str:
    """The cell as the report shows it: masked when personal, cut when long."""
    value = mask_value(raw) if spec is not None and spec.personal else raw
    return value if len(value) <= 100 else value[:97] + "..."


def merge_address_parts(address: dict[str, str]) -> None:
    """Combine a row's address cells (``line``, ``detail``, ``province``, ``city``,
    ``district``) the way the customer schema is given them, in place."""
    parts = "".join(address.get(k, "") for k in ("province", "city", "district"))
    if address.get("line") and parts and not address["line"].startswith(parts[:2]):
        # Separate province / city / district columns beside an address line (what
        # an export writes): parse them together.
        address["line"] = parts + address["line"]
        for key in ("province", "city", "district"):
            address.pop(key, None)
    if not address.get("line") and not address.get("detail"):
        # Province / city / district without a street: keep them as the detail.
        address["detail"] = "".join(address.get(k, "") for k in ("province", "city", "district"))


@dataclass
class ParsedRow:
    """A row's cleaned values before the domain schema: ``payload`` for the schema,
    ``refs`` naming another record (the customer of a shipment), ``sources`` recording which
    column each value came from (to name it in errors). ``model`` is set when the fast path
    (``imports.fast``) already built the validated model, ``checked`` when it cleaned and
    checked the payload (a shipment's model waits for its customer)."""

    row: int
    payload: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    sources: dict[tuple[Any, ...], tuple[str, str]] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    model: BaseModel | None = None
    # The payload holds the schema's own values already (the fast path checked them).
    checked: bool = False


class RowParser:
    """Turns the cells of one file into :class:`ParsedRow` values for one import kind."""

    def __init__(
        self, cmap: ColumnMap, tz: datetime.tzinfo, owners: dict[str, int] | None = None
    ) -> None:
        self.cmap = cmap
        self.tz = tz
        self.owners = owners or {}
        # Looked up once, not per cell: an import parses millions of cells.
        self.kind = cmap.kind.value
        self.columns = [(index, spec, cmap.headers[index]) for index, spec in cmap.fields.items()]

    def parse(self, number: int, cells: list[str]) -> ParsedRow:
        """Clean every mapped cell; problems are collected, never raised."""
        out = ParsedRow(number)
        if cells == [CSV_ERROR]:
            out.errors.append(
                RowError(
                    number, None, None, "row_unreadable", "The row cannot be read (broken quotes)"
                )
            )
            return out
        width = len(self.cmap.headers)
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            # Usually an unquoted comma (1,234.00) that shifted every later cell.
            out.errors.append(
                RowError(
                    number,
                    None,
                    None,
                    "row_extra_cells",
                    f"The row has {len(cells)} cells but the header has {width}",
                )
            )
            return out
        phone_n = 0
        for index, spec, header in self.columns:
            raw = cells[index] if index < len(cells) else ""
            if not raw:
                continue
            if len(raw) > MAX_CELL:
                out.errors.append(
                    RowError(
                        number,
                        header,
                        shown_value(spec, raw),
                        "cell_too_long",
                        f"The cell is longer than {MAX_CELL} characters",
                    )
                )
                continue
            if raw[:1] == "'" and raw[1:2] in ("=", "+", "-", "@"):
                # Our own export's guard against formulas (and Excel's text marker).
                raw = raw[1:]
            text = cleaning.clean_text(raw)
            if not text:
                continue
            try:
                value = self._value(spec, text)
            except InvalidValue as exc:
                out.errors.append(
                    RowError(number, header, shown_value(spec, raw), exc.code, exc.message)
                )
                continue
            if spec.name == "guanxi_id":
                out.refs["guanxi_id"] = str(value)
                continue
            if spec.name.startswith("customer_"):
                # Names another record (a shipment's customer): resolved per batch.
                out.refs[spec.name] = value
                continue
            if spec.name == "phone" and self.kind == "customers":
                for part in cleaning.split_list(text):
                    out.payload.setdefault("phones", []).append(part)
                    out.sources[("phones", phone_n)] = (header, raw)
                    phone_n += 1
                continue
            self._place(out, spec, value, header, raw)
        return out

    def _value(self, spec: FieldSpec, text: str) -> Any:
        parse = spec.parse
        if parse == "enum":
            code = enum_value(spec, text)
            if code is None:
                choices = ", ".join(m.value for m in spec.enum or [])
                raise InvalidValue("value_unknown", f"Unknown value; expected one of: {choices}")
            return code
        if parse == "date":
            return cleaning.parse_date(text)
        if parse == "datetime":
            return cleaning.parse_datetime(text, self.tz)
        if parse == "fen":
            return cleaning.parse_fen(text)
        if parse == "grams":
            return cleaning.parse_grams(text)
        if parse == "bool":
            return cleaning.parse_bool(text)
        if parse == "int":
            if not text.isdigit() or len(text) > 12:
                raise InvalidValue("int_parsing", "Must be a whole number")
            return int(text)
        if parse == "list":
            return cleaning.split_list(text)
        if parse == "phone" and spec.name in ("customer_phone",):
            return normalize_phone(text)
        return text

    def _place(self, out: ParsedRow, spec: FieldSpec, value: Any, header: str, raw: str) -> None:
        name = spec.name
        kind = self.kind
        if kind == "customers" and name in (
            "address",
            "province",
            "city",
            "district",
            "address_detail",
        ):
            address = out.payload.setdefault("addresses", [{}])[0]
            key = {"address": "line", "address_detail": "detail"}.get(name, name)
            address[key] = value
            out.sources[("addresses", 0, key)] = (header, raw)
            out.sources.setdefault(("addresses", 0), (header, raw))
            return
        if kind == "customers" and name == "owner":
            owner_id = self.owners.get(value) or self.owners.get(value.lower())
            if owner_id is None:
                out.errors.append(
                    RowError(
                        out.row, header, raw, "owner_unknown", "No such user to own this customer"
                    )
                )
                return
            out.payload["owner_id"] = owner_id
            out.sources[("owner_id",)] = (header, raw)
            return
        out.payload[name] = value
        out.sources[(name,)] = (header, raw)

    # ------------------------------------------------------------------ domain validation

    def validate(
        self, parsed: ParsedRow, schema: type[BaseModel], extra: dict[str, Any] | None = None
    ) -> BaseModel | None:
        """Run the domain schema over the payload; its errors join ``parsed.errors``."""
        payload = {**parsed.payload, **(extra or {})}
        if schema is CustomerCreate and "kind" not in payload and payload.get("credit_code"):
            # A row with a credit code and no kind column is an organisation.
            payload["kind"] = "enterprise"
        if schema is CustomerCreate and "addresses" in payload:
            merge_address_parts(payload["addresses"][0])
        try:
            return schema.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                header, raw = self._source(parsed, loc, err["type"])
                spec = self._spec(header)
                message = ERROR_MESSAGES.get(err["type"], err["msg"])
                try:
                    message = message.format(**(err.get("ctx") or {}))
                except (KeyError, IndexError):
                    message = err["msg"]
                parsed.errors.append(
                    RowError(
                        parsed.row,
                        header,
                        shown_value(spec, raw) if raw else None,
                        err["type"],
                        message,
                    )
                )
            return None

    def _spec(self, header: str | None) -> FieldSpec | None:
        if header is None:
            return None
        for index, spec in self.cmap.fields.items():
            if self.cmap.headers[index] == header:
                return spec
        return None

    def _source(self, parsed: ParsedRow, loc: tuple[Any, ...], code: str) -> tuple[str | None, str]:
        for size in range(len(loc), 0, -1):
            found = parsed.sources.get(loc[:size])
            if found:
                return found
        if not loc:
            # Whole-record rules name their field through the code.
            for name in ("credit_code", "id_number"):
                if name in code and (name,) in parsed.sources:
                    return parsed.sources[(name,)]
        if loc:
            name = str(loc[0])
            return self.cmap.header_of({"phones": "phone"}.get(name, name)), ""
        return None, ""
