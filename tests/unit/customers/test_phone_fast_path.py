"""The cached mobile fast path answers exactly as phonenumbers does."""

from __future__ import annotations

import random

import phonenumbers

from guanxi.customers import validation


def _reference(number: str) -> tuple[str | None, str | None]:
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_valid_number(parsed):
        return None, None
    kind = phonenumbers.number_type(parsed)
    mobile = (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    name = (
        "mobile"
        if kind in mobile
        else "landline"
        if kind == phonenumbers.PhoneNumberType.FIXED_LINE
        else "other"
    )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), name


def test_fast_path_matches_phonenumbers_on_every_block() -> None:
    rnd = random.Random(20261125)
    checked = valid = 0
    # Every 5-digit block 13000-19999, three random numbers in each.
    for block in range(13000, 20000):
        for _ in range(3):
            number = f"{block}{rnd.randrange(10**6):06d}"
            expected, kind = _reference(number)
            try:
                got = validation.normalize_phone(number)
            except validation.InvalidValue:
                got = None
            assert got == expected, number
            if got is not None:
                valid += 1
                assert validation.phone_kind(got) == kind, number
            checked += 1
    assert checked == 21000
    assert 10000 < valid < checked  # both allocated and unallocated blocks were exercised
