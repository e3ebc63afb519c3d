"""Normalisation of phones, resident IDs, credit codes and e-mail addresses."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from guanxi.customers.validation import (
    InvalidValue,
    format_phone,
    normalize_credit_code,
    normalize_email,
    normalize_phone,
    normalize_resident_id,
    phone_kind,
    resident_id_birth_date,
)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13912345678", "+8613912345678"),
        ("+86 139-1234-5678", "+8613912345678"),
        ("+86 (139) 1234 5678", "+8613912345678"),
        ("0086 139 1234 5678", "+8613912345678"),
        ("8613912345678", "+8613912345678"),
        ("１３９１２３４５６７８", "+8613912345678"),
        ("＋８６ １３９－１２３４－５６７８", "+8613912345678"),
        ("(0571) 8888 1234", "+8657188881234"),
        ("0571-88881234", "+8657188881234"),
        ("010-6552 1234", "+861065521234"),
        ("+852 9123 4567", "+85291234567"),
    ],
)
def test_normalize_phone(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "phone_empty"),
        ("   ", "phone_empty"),
        ("12345", "phone_invalid"),
        ("1391234567", "phone_invalid"),
        ("139123456789", "phone_invalid"),
        ("abc", "phone_invalid"),
        ("+86 139 1234 567a", "phone_invalid"),
    ],
)
def test_invalid_phones(raw: str, code: str) -> None:
    with pytest.raises(InvalidValue) as info:
        normalize_phone(raw)
    assert info.value.code == code


def test_phone_kind_and_display() -> None:
    assert phone_kind("+8613912345678") == "mobile"
    assert phone_kind("+8657188881234") == "landline"
    assert format_phone("+8613912345678") == "139 1234 5678"
    assert format_phone("+8657188881234") == "0571 8888 1234"
    assert format_phone("+85291234567") == "+852 9123 4567"


mobiles = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["130", "135", "139", "150", "158", "177", "186", "189", "199"]),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)


@given(mobiles, st.sampled_from(["{}", "+86{}", "+86 {0:.3} {1}", "0086-{}", "86{}"]))
def test_phone_variants_agree_and_normalisation_is_idempotent(number: str, template: str) -> None:
    if "{1}" in template:
        raw = f"+86 {number[:3]} {number[3:]}"
    else:
        raw = template.format(number)
    e164 = normalize_phone(raw)
    assert e164 == "+86" + number
    assert normalize_phone(e164) == e164


def _rid(area: str, birth: str, seq: str = "123") -> str:
    return area + birth + seq + ric.calc_check_digit(area + birth + seq + "0")


def test_resident_id_accepts_new_district_for_old_birth() -> None:
    # 330113 (临平区) was created in 2021; its residents born in 1980 hold such numbers.
    value = _rid("330113", "19800115")
    assert normalize_resident_id(value.lower()) == value
    assert resident_id_birth_date(value) == datetime.date(1980, 1, 15)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("33011319800115", "id_number_length"),
        ("3301131980011512A4", "id_number_format"),
        ("330113198001151235", "id_number_checksum"),
        (_rid("330113", "19800230"), "id_number_birth_date"),
        (_rid("330113", "18991231"), "id_number_birth_date"),
        (_rid("330113", "29990101"), "id_number_birth_date"),
    ],
)
def test_resident_id_errors(raw: str, code: str) -> None:
    if code == "id_number_checksum":
        good = _rid("330113", "19800115", "123")
        raw = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidValue) as info:
        normalize_resident_id(raw)
    assert info.value.code == code


@given(
    st.sampled_from(["110105", "310115", "330113", "440305", "500103"]),
    st.dates(min_value=datetime.date(1920, 1, 1), max_value=datetime.date(2020, 12, 31)),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.integers(min_value=0, max_value=16),
)
def test_generated_ids_pass_and_one_digit_corruption_fails(
    area: str, birth: datetime.date, seq: str, position: int
) -> None:
    value = _rid(area, birth.strftime("%Y%m%d"), seq)
    assert normalize_resident_id(value) == value
    digit = value[position]
    corrupted = value[:position] + str((int(digit) + 1) % 10) + value[position + 1 :]
    with pytest.raises(InvalidValue):
        normalize_resident_id(corrupted)


def test_credit_code() -> None:
    body = "91330110MA2H3X4Y5"
    code = body + uscc.calc_check_digit(body)
    assert normalize_credit_code(code.lower()) == code
    assert normalize_credit_code(f" {code[:6]} {code[6:]} ") == code
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    for raw, err in (
        (code[:10], "credit_code_length"),
        (code[:16] + "IO", "credit_code_format"),
        (wrong, "credit_code_checksum"),
    ):
        with pytest.raises(InvalidValue) as info:
            normalize_credit_code(raw)
        assert info.value.code == err


def test_email() -> None:
    assert normalize_email(" Zhang.San@Example.COM ") == "Zhang.San@example.com"
    for bad in ("zhang", "a@b", "a b@c.cn", "a@@b.cn", "a@b..cn", "@b.cn", "x" * 250 + "@b.cn"):
        with pytest.raises(InvalidValue) as info:
            normalize_email(bad)
        assert info.value.code == "email_invalid"
