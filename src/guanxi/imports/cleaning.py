"""Cleaning of cell values: invisible characters, full-width forms, Chinese dates, money.

These are the rules for raw text from files; the domain rules (phones, ID numbers, credit
codes, addresses) are the customers domain's own and are applied through its schemas, the
same code the API runs.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from guanxi.customers.validation import InvalidValue

# Zero-width spaces and joiners, word joiner, BOM, soft hyphen, bidi marks: pasted from web
# pages and chat apps, invisible on screen, fatal to exact matching.
_INVISIBLE = re.compile(
    "[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\x00-\x08\x0b-\x1f\x7f]"
)
_SPACES = re.compile(r"\s+")


def clean_text(raw: str) -> str:
    """NFKC (full-width letters and digits folded), invisible characters removed, spaces
    collapsed and trimmed. Newlines inside a cell become single spaces."""
    if not raw:
        return ""
    if raw.isprintable() and unicodedata.is_normalized("NFKC", raw):
        # Most cells: nothing to fold. Printable excludes every invisible character above
        # and every space but U+0020, so only runs of plain spaces could remain.
        if "  " not in raw and raw[0] != " " and raw[-1] != " ":
            return raw
    text = unicodedata.normalize("NFKC", raw)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


# Excel counts days from 1899-12-30 (its 1900 leap-year bug included).
_EXCEL_EPOCH = datetime.date(1899, 12, 30)
_DATE_PATTERNS = [
    re.compile(r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
]
_TIME = re.compile(
    r"[T\s]*(?P<h>\d{1,2})[:时点](?P<mi>\d{1,2})"
    r"(?:分|:(?P<s>\d{1,2})(?:\.\d+)?)?(?:(?P<s2>\d{1,2})秒)?"
)


def parse_date(raw: str) -> datetime.date:
    """2024-05-01, 2024/5/1, 2024.5.1, 2024年5月1日, 20240501 or an Excel serial (45413)."""
    text = clean_text(raw)
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        serial = float(text)
        if 1 <= serial < 2958466:  # Excel's range: 1900-01-01 .. 9999-12-31
            return _EXCEL_EPOCH + datetime.timedelta(days=int(serial))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            rest = text[match.end() :]
            # Only a time may follow (a datetime cell in a date column): the match alone
            # read "2024-5-123" as 12 May and "20240501999" as 1 May.
            if rest.strip() and not _TIME.fullmatch(rest):
                break
            try:
                return datetime.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError as exc:
                raise InvalidValue("date_impossible", "Not a real calendar date") from exc
    raise InvalidValue("date_invalid", "Not a date (use 2024-05-01 or 2024年5月1日)")


def parse_datetime(raw: str, tz: datetime.tzinfo) -> datetime.datetime:
    """A date with an optional time, in ``tz`` (the company's clock) unless it names an
    offset; returned in UTC. Excel serials with a fraction carry the time of day."""
    text = clean_text(raw)
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        serial = float(text)
        if 1 <= serial < 2958466:
            moment = datetime.datetime.combine(_EXCEL_EPOCH, datetime.time()) + datetime.timedelta(
                days=serial
            )
            return _to_utc(moment.replace(tzinfo=tz))
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return _to_utc(parsed)
    day = parse_date(text)
    rest = ""
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            rest = text[match.end() :]
            break
    hour = minute = second = 0
    if rest.strip():
        time_match = _TIME.fullmatch(rest)
        if not time_match:
            raise InvalidValue("datetime_invalid", "Not a date and time (2024-05-01 14:30)")
        hour, minute = int(time_match["h"]), int(time_match["mi"])
        second = int(time_match["s"] or time_match["s2"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise InvalidValue("datetime_invalid", "Not a date and time (2024-05-01 14:30)")
    moment = datetime.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz)
    return _to_utc(moment)


def _to_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC; a moment whose UTC falls outside years 1-9999 is invalid input
    (``0001-01-01`` in Shanghai is in year 0), not an OverflowError."""
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError as exc:
        raise InvalidValue("datetime_invalid", "Not a date and time (2024-05-01 14:30)") from exc


_MONEY_JUNK = re.compile(r"[,\s¥￥元圆rmbRMBCNY]")


def parse_fen(raw: str) -> int:
    """An amount in yuan (``12.5``, ``¥1,234.00``, ``12.5元``) as integer fen, exactly."""
    text = _MONEY_JUNK.sub("", clean_text(raw))
    if not re.fullmatch(r"-?\d+(\.\d{1,2})?", text):
        raise InvalidValue("amount_invalid", "Not an amount in yuan (at most two decimals)")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation as exc:  # pragma: no cover - the pattern above rules it out
        raise InvalidValue("amount_invalid", "Not an amount in yuan") from exc
    if fen < 0:
        raise InvalidValue("amount_negative", "An amount cannot be negative")
    if fen > 10**14:
        raise InvalidValue("amount_too_large", "The amount is too large")
    return int(fen)


_WEIGHT = re.compile(r"(?P<n>\d+(\.\d+)?)\s*(?P<unit>kg|公斤|千克|g|克|斤)?", re.I)


def parse_grams(raw: str) -> int:
    """A weight as integer grams: ``1.5`` and ``1.5kg`` are kilograms, ``300g`` / ``300克``
    grams, ``2斤`` half-kilos."""
    text = clean_text(raw).replace(" ", "")
    match = _WEIGHT.fullmatch(text)
    if not match:
        raise InvalidValue("weight_invalid", "Not a weight (e.g. 1.5 or 1.5kg)")
    number = Decimal(match["n"])
    unit = (match["unit"] or "kg").lower()
    factor = {"kg": 1000, "公斤": 1000, "千克": 1000, "g": 1, "克": 1, "斤": 500}[unit]
    grams = int(number * factor)
    if grams > 10**9:
        raise InvalidValue("weight_too_large", "The weight is too large")
    return grams


_TRUE = {"1", "y", "yes", "true", "t", "是", "有", "√", "✓"}
_FALSE = {"0", "n", "no", "false", "f", "否", "无", "没有", ""}


def parse_bool(raw: str) -> bool:
    """是/否, yes/no, true/false, 1/0, √ and empty (no)."""
    text = clean_text(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidValue("bool_invalid", "Not yes or no (是 / 否)")


def split_list(raw: str) -> list[str]:
    """A cell holding several values: separated by , ， ; ； 、 / or newlines."""
    return [p for p in (x.strip() for x in re.split(r"[,，;；、/|\n]", raw)) if p]
