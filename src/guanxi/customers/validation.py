"""Normalisation and validation of customer identifiers.

Phones go through ``phonenumbers`` (China by default), resident ID numbers and unified
social credit codes through ``python-stdnum``. Each function takes what a person would
type — spaces, dashes, brackets, full-width characters — and returns the one stored form,
or raises :class:`InvalidValue` with a machine code the UI translates.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from functools import lru_cache
from typing import Literal

import phonenumbers
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from guanxi.core import clock


class InvalidValue(ValueError):
    """A value that cannot be normalised; ``code`` names the rule, ``message`` explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_PHONE_JUNK = re.compile(r"[\s\-().\u00b7/]")


def _nfkc(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


# re.ASCII throughout: ``\d`` alone matches every script's digits (Arabic-Indic "٠"), which
# NFKC does not fold, and "+8613000٠00000" was stored as a phone number.
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})", re.ASCII)


@lru_cache(maxsize=8192)  # 13000-19999: every block fits
def _mobile_block(block: str) -> str | None:
    """phonenumbers' verdict on a Chinese mobile block (the first five digits, ``13912``):
    the kind of number it holds, or None if not allocated. The metadata decides 11-digit
    numbers starting 13-19 on at most their first five digits (``17400``-``17405``), so one
    answer serves the block; a test compares it with phonenumbers on random numbers."""
    try:
        number = phonenumbers.parse(f"+86{block}000000")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return _kind_of(number)


def normalize_phone(raw: str) -> str:
    """E.164 form of a Chinese mobile or landline, or of an international number.

    Accepts ``13912345678``, ``+86 139-1234-5678``, ``0086 139...``, ``86139...``,
    ``(0571) 8888 1234``, ``0571-88881234``, full-width digits and brackets.
    """
    text = _nfkc(raw)
    if not text:
        raise InvalidValue("phone_empty", "Phone number is empty")
    compact = _PHONE_JUNK.sub("", text)
    mobile = _MOBILE.fullmatch(compact)
    if mobile:
        # Most numbers are plain mobiles: phonenumbers' answer per block, cached.
        if _mobile_block(mobile.group(1)[:5]) is None:
            raise InvalidValue("phone_invalid", "Not a valid phone number")
        return "+86" + mobile.group(1)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif re.fullmatch(r"861[3-9]\d{9}", compact, re.ASCII):
        # A mobile written with the country code but without the plus sign.
        compact = "+" + compact
    if not re.fullmatch(r"\+?\d{5,20}", compact, re.ASCII):
        raise InvalidValue("phone_invalid", "Not a valid phone number")
    try:
        number = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone_invalid", "Not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone_invalid", "Not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_kind(e164: str) -> Literal["mobile", "landline", "other"]:
    """Whether a normalised number is a mobile, a landline or something else."""
    if len(e164) == 14 and e164.startswith("+861"):
        cached = _mobile_block(e164[3:8])
        if cached is not None:
            return cached  # type: ignore[return-value]
    return _kind_of(phonenumbers.parse(e164))


def _kind_of(number: phonenumbers.PhoneNumber) -> Literal["mobile", "landline", "other"]:
    kind = phonenumbers.number_type(number)
    if kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return "mobile"
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        return "landline"
    return "other"


def format_phone(e164: str) -> str:
    """Display form: national for China (``139 1234 5678``), international otherwise."""
    number = phonenumbers.parse(e164)
    if number.country_code == 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_resident_id(raw: str) -> str:
    """An 18-character resident ID number (居民身份证号码), upper-case X.

    Checks the format, the check digit (GB 11643) and the birth date. The area code is not
    checked against history: ``stdnum.cn.ric.validate`` refuses genuine numbers whose
    district code is newer than the holder's birth (e.g. 330113 临平区, created in 2021).
    """
    value = re.sub(r"\s", "", _nfkc(raw)).upper()
    if len(value) != 18:
        raise InvalidValue("id_number_length", "A resident ID number has 18 characters")
    if not re.fullmatch(r"\d{17}[\dX]", value, re.ASCII):
        raise InvalidValue("id_number_format", "A resident ID number is 17 digits and a digit or X")
    # stdnum expects the whole number and ignores its last character.
    if ric.calc_check_digit(value) != value[17]:
        raise InvalidValue("id_number_checksum", "The resident ID number's check digit is wrong")
    try:
        birth = resident_id_birth_date(value)
    except ValueError as exc:
        raise InvalidValue(
            "id_number_birth_date", "The resident ID number contains an impossible birth date"
        ) from exc
    if birth.year < 1900 or birth > clock.now().date():
        raise InvalidValue(
            "id_number_birth_date", "The resident ID number contains an impossible birth date"
        )
    return value


def resident_id_birth_date(id_number: str) -> datetime.date:
    """The birth date encoded in positions 7–14 (raises ValueError if impossible)."""
    return datetime.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def normalize_credit_code(raw: str) -> str:
    """An 18-character unified social credit code (统一社会信用代码), validated."""
    value = re.sub(r"[\s\-]", "", _nfkc(raw)).upper()
    if len(value) != 18:
        raise InvalidValue("credit_code_length", "A unified social credit code has 18 characters")
    if not re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", value):
        raise InvalidValue(
            "credit_code_format", "The unified social credit code contains invalid characters"
        )
    try:
        uscc.validate(value)
    except StdnumError as exc:
        raise InvalidValue(
            "credit_code_checksum", "The unified social credit code's check character is wrong"
        ) from exc
    return value


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalize_email(raw: str) -> str:
    """An e-mail address, trimmed, domain lower-cased; a syntax check only (no DNS)."""
    value = _nfkc(raw)
    if len(value) > 254 or not _EMAIL.fullmatch(value) or ".." in value:
        raise InvalidValue("email_invalid", "Not a valid e-mail address")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"
