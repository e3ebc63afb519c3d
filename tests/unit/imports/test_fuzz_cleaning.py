"""Hypothesis over the cell cleaners: any text either parses or raises ``InvalidValue``
(never another exception), valid values are accepted, and cleaning is idempotent."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guanxi.customers.validation import InvalidValue
from guanxi.imports.cleaning import (
    clean_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_fen,
    parse_grams,
    split_list,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Text as it arrives in cells: any code point (surrogates excluded: a decoded file has
# none), with a bias towards the digits, separators and units the parsers look for.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from("0123456789０１２３-/.年月日时分秒:T ¥￥元,kg克斤+eE٣۴"),
    ),
    max_size=40,
)
FUZZ = settings(max_examples=300, deadline=None)
NAIVE_FROM = datetime.datetime(1900, 1, 2)  # noqa: DTZ001 - a wall-clock bound
NAIVE_TO = datetime.datetime(9999, 12, 30)  # noqa: DTZ001 - a wall-clock bound


@FUZZ
@given(ANY_TEXT)
def test_clean_text_is_idempotent_and_trimmed(raw: str) -> None:
    once = clean_text(raw)
    assert clean_text(once) == once
    assert once == once.strip()
    assert "  " not in once


@FUZZ
@given(ANY_TEXT)
def test_parsers_raise_only_invalid_value(raw: str) -> None:
    for parse in (parse_date, parse_fen, parse_grams, parse_bool):
        try:
            parse(raw)
        except InvalidValue:
            pass
    try:
        parse_datetime(raw, SHANGHAI)
    except InvalidValue:
        pass
    assert all(part == part.strip() and part for part in split_list(raw))


@FUZZ
@given(st.integers(min_value=0, max_value=10**14))
def test_fen_round_trip_through_yuan(fen: int) -> None:
    # What an export writes (yuan with two decimals, thousands separators) reads back.
    yuan = f"{Decimal(fen) / 100:,.2f}"
    assert parse_fen(yuan) == fen
    assert parse_fen(f"¥{yuan}") == fen
    assert parse_fen(f"{yuan}元") == fen


@FUZZ
@given(st.integers(min_value=1, max_value=10**14))
def test_negative_amounts_are_refused(fen: int) -> None:
    with pytest.raises(InvalidValue) as err:
        parse_fen(f"-{Decimal(fen) / 100:.2f}")
    assert err.value.code == "amount_negative"


@FUZZ
@given(st.dates(min_value=datetime.date(1900, 1, 1)))
def test_dates_in_every_written_form(day: datetime.date) -> None:
    for text in (
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month}.{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%Y%m%d"),
    ):
        assert parse_date(text) == day, text


@FUZZ
@given(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(9999, 12, 30)))
def test_excel_serials_count_from_1899_12_30(day: datetime.date) -> None:
    serial = (day - datetime.date(1899, 12, 30)).days
    if 10000 <= serial <= 99999:
        assert parse_date(str(serial)) == day


@FUZZ
# Naive bounds: hypothesis draws naive moments, placed on the company clock below.
@given(st.datetimes(min_value=NAIVE_FROM, max_value=NAIVE_TO))
def test_datetimes_round_trip_in_the_company_clock(moment: datetime.datetime) -> None:
    moment = moment.replace(microsecond=0)
    local = moment.replace(tzinfo=SHANGHAI)
    expected = local.astimezone(datetime.UTC)
    assert parse_datetime(moment.strftime("%Y-%m-%d %H:%M:%S"), SHANGHAI) == expected
    assert parse_datetime(local.isoformat(), SHANGHAI) == expected
    assert parse_datetime(expected.isoformat(), SHANGHAI) == expected


@FUZZ
@given(st.integers(min_value=0, max_value=10**6))
def test_weights_in_grams_and_kilograms(grams: int) -> None:
    assert parse_grams(f"{grams}g") == grams
    assert parse_grams(f"{grams}克") == grams
    assert parse_grams(f"{Decimal(grams) / 1000}kg") == grams


@FUZZ
@given(st.lists(st.text(alphabet="abc张三 ", min_size=1, max_size=5), max_size=5))
def test_split_list_round_trips_joined_values(values: list[str]) -> None:
    expected = [v.strip() for v in values if v.strip()]
    assert split_list("、".join(values)) == expected
    assert split_list(",".join(values)) == expected


# Date-shaped text with any numbers in it: years 0000-9999, months and days out of range,
# times and offsets, trailing junk: what a mistyped spreadsheet column holds.
DATE_LIKE = st.builds(
    lambda y, m, d, sep, rest: (
        f"{y:04d}{sep}{m:0{1 if sep else 2}d}{sep}{d:0{1 if sep else 2}d}{rest}"
    ),
    st.one_of(st.sampled_from([0, 1, 9999]), st.integers(min_value=0, max_value=9999)),
    st.one_of(st.sampled_from([1, 12]), st.integers(min_value=0, max_value=99)),
    st.one_of(st.sampled_from([1, 31]), st.integers(min_value=0, max_value=99)),
    st.sampled_from(["-", "/", ".", ""]),
    st.sampled_from(["", " 00:00", "T23:59:59", " 8:30", "+14:00", "T0:00-12:00", "99", "日", "x"]),
)


@FUZZ
@given(DATE_LIKE)
def test_date_like_text_parses_or_is_invalid(raw: str) -> None:
    try:
        day = parse_date(raw)
    except InvalidValue:
        pass
    else:
        # Accepted only when the whole cell is that date (a time after it is allowed):
        # "2024-5-123" is not 12 May, "20240501999" is not 1 May.
        written = {
            day.isoformat(),
            f"{day.year:04d}{day.month}{day.day}",
            f"{day.year:04d}{day.month:02d}{day.day:02d}",
        }
        digits = "".join(c for c in raw.split("T")[0].split(" ")[0] if c.isdigit())
        assert digits in {"".join(c for c in w if c.isdigit()) for w in written}, raw
    try:
        moment = parse_datetime(raw, SHANGHAI)
    except InvalidValue:
        pass
    else:
        assert moment.tzinfo is datetime.UTC
