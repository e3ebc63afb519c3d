"""Hypothesis over the customer identifier rules: any text normalises or raises
``InvalidValue``; what is accepted is ASCII in its one stored form, and normalising the
stored form gives it back (idempotent)."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from guanxi.customers.validation import (
    InvalidValue,
    normalize_credit_code,
    normalize_email,
    normalize_phone,
    normalize_resident_id,
    phone_kind,
)

FUZZ = settings(max_examples=300, deadline=None)
# Digits of every script (Arabic-Indic ٣, Devanagari ३, full-width ３ …) and the junk people
# type around numbers: regexes' ``\d`` matches them all, storage must not.
DIGITISH = st.one_of(
    st.characters(categories=["Nd"]),
    st.sampled_from("0123456789０１２３４５６７８９+-() .·/Xx　"),
)
ANY_TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
    st.text(alphabet=DIGITISH, max_size=24),
    # Mostly-ASCII mobiles with one foreign digit somewhere.
    st.builds(
        lambda pre, digit, post: f"1{pre}{digit}{post}",
        st.text(alphabet="0123456789", min_size=1, max_size=4).map(lambda t: "3" + t[1:]),
        st.characters(categories=["Nd"]),
        st.text(alphabet="0123456789", min_size=1, max_size=9),
    ),
)


def _accepts(normalise: object, raw: str) -> str | None:
    try:
        return normalise(raw)  # type: ignore[operator, no-any-return]
    except InvalidValue:
        return None


@FUZZ
@given(ANY_TEXT)
def test_phones_normalise_to_ascii_e164_idempotently(raw: str) -> None:
    stored = _accepts(normalize_phone, raw)
    if stored is None:
        return
    assert stored.isascii(), stored
    assert stored.startswith("+")
    assert stored[1:].isdigit()
    assert normalize_phone(stored) == stored
    assert phone_kind(stored) in ("mobile", "landline", "other")


@FUZZ
@given(st.integers(min_value=3, max_value=9), st.integers(min_value=0, max_value=10**9 - 1))
def test_chinese_mobiles_in_every_written_form(second: int, rest: int) -> None:
    number = f"1{second}{rest:09d}"
    stored = _accepts(normalize_phone, number)
    if stored is None:  # an unallocated block
        return
    assert stored == f"+86{number}"
    for written in (
        f"+86 {number[:3]}-{number[3:7]}-{number[7:]}",
        f"0086{number}",
        f"86{number}",
        number.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ):
        assert normalize_phone(written) == stored, written


@FUZZ
@given(ANY_TEXT)
def test_resident_ids_are_ascii_and_idempotent(raw: str) -> None:
    stored = _accepts(normalize_resident_id, raw)
    if stored is None:
        return
    assert stored.isascii(), stored
    assert len(stored) == 18
    assert normalize_resident_id(stored) == stored


@FUZZ
@given(
    st.integers(min_value=110000, max_value=659999),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2025, 12, 31)),
    st.integers(min_value=0, max_value=999),
)
def test_valid_resident_ids_are_accepted(area: int, birth: datetime.date, seq: int) -> None:
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    number = body + ric.calc_check_digit(body + "0")
    assert normalize_resident_id(number.lower()) == number
    assert normalize_resident_id(f" {number[:6]} {number[6:14]} {number[14:]} ") == number


@FUZZ
@given(ANY_TEXT)
def test_credit_codes_are_ascii_and_idempotent(raw: str) -> None:
    stored = _accepts(normalize_credit_code, raw)
    if stored is None:
        return
    assert stored.isascii(), stored
    assert len(stored) == 18
    assert normalize_credit_code(stored) == stored


@FUZZ
@given(
    st.text(alphabet="0123456789", min_size=8, max_size=8),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=9, max_size=9),
)
def test_valid_credit_codes_are_accepted(head: str, tail: str) -> None:
    # GB 32100: registering authority, kind and area code are digits, then the
    # organisation code; the 18th character is the check.
    body = head + tail
    code = body + uscc.calc_check_digit(body)
    assert normalize_credit_code(code.lower()) == code
    assert normalize_credit_code(f"{code[:6]}-{code[6:]}") == code


@FUZZ
@given(ANY_TEXT)
def test_emails_are_idempotent(raw: str) -> None:
    stored = _accepts(normalize_email, raw)
    if stored is None:
        return
    assert normalize_email(stored) == stored


@FUZZ
@given(st.emails())
def test_valid_emails_are_accepted(address: str) -> None:
    local, _, domain = address.rpartition("@")
    if ".." in address or len(address) > 254:
        return
    assert normalize_email(address) == f"{local}@{domain.lower()}"
