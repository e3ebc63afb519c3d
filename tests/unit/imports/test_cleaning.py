"""Cell cleaning: invisible characters, full-width forms, Chinese dates, money, weights."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from guanxi.customers.validation import InvalidValue
from guanxi.imports import cleaning

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_clean_text_folds_and_strips() -> None:
    assert cleaning.clean_text("\u200b张三\ufeff ") == "张三"
    assert cleaning.clean_text("１３９ １２３４\u00a0５６７８") == "139 1234 5678"
    assert cleaning.clean_text("杭州\n顺达\t物流") == "杭州 顺达 物流"
    assert cleaning.clean_text("ＡＢＣ公司") == "ABC公司"
    assert cleaning.clean_text("") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01", datetime.date(2024, 5, 1)),
        ("2024/5/1", datetime.date(2024, 5, 1)),
        ("2024.5.1", datetime.date(2024, 5, 1)),
        ("2024年5月1日", datetime.date(2024, 5, 1)),
        ("２０２４年５月１日", datetime.date(2024, 5, 1)),
        ("20240501", datetime.date(2024, 5, 1)),
        ("45413", datetime.date(2024, 5, 1)),  # Excel serial
        ("45413.75", datetime.date(2024, 5, 1)),
    ],
)
def test_parse_date(raw: str, expected: datetime.date) -> None:
    assert cleaning.parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("2024-02-30", "date_impossible"),
        ("2024年13月1日", "date_impossible"),
        ("soon", "date_invalid"),
    ],
)
def test_parse_date_refuses(raw: str, code: str) -> None:
    with pytest.raises(InvalidValue) as info:
        cleaning.parse_date(raw)
    assert info.value.code == code


def test_parse_datetime_in_the_company_timezone() -> None:
    utc = datetime.UTC
    assert cleaning.parse_datetime("2026-11-11 09:30", SHANGHAI) == datetime.datetime(
        2026, 11, 11, 1, 30, tzinfo=utc
    )
    assert cleaning.parse_datetime("2026年11月11日 9时30分", SHANGHAI) == datetime.datetime(
        2026, 11, 11, 1, 30, tzinfo=utc
    )
    assert cleaning.parse_datetime("2026/11/11", SHANGHAI) == datetime.datetime(
        2026, 11, 10, 16, 0, tzinfo=utc
    )
    assert cleaning.parse_datetime("2026-11-11T09:30:00+00:00", SHANGHAI) == datetime.datetime(
        2026, 11, 11, 9, 30, tzinfo=utc
    )
    # Excel serial with a time of day: 45413.5 is 2024-05-01 12:00 local.
    assert cleaning.parse_datetime("45413.5", SHANGHAI) == datetime.datetime(
        2024, 5, 1, 4, 0, tzinfo=utc
    )
    with pytest.raises(InvalidValue):
        cleaning.parse_datetime("2026-11-11 25:00", SHANGHAI)


@pytest.mark.parametrize(
    ("raw", "fen"),
    [
        ("12.5", 1250),
        ("¥1,234.00", 123400),
        ("12.5元", 1250),
        ("０.０１", 1),
        ("0", 0),
        ("RMB 3", 300),
    ],
)
def test_parse_fen_exact(raw: str, fen: int) -> None:
    assert cleaning.parse_fen(raw) == fen


@pytest.mark.parametrize("raw", ["12.345", "abc", "1e5", "-5"])
def test_parse_fen_refuses(raw: str) -> None:
    with pytest.raises(InvalidValue):
        cleaning.parse_fen(raw)


def test_parse_grams_units() -> None:
    assert cleaning.parse_grams("1.5") == 1500
    assert cleaning.parse_grams("1.5kg") == 1500
    assert cleaning.parse_grams("300g") == 300
    assert cleaning.parse_grams("300克") == 300
    assert cleaning.parse_grams("2斤") == 1000
    with pytest.raises(InvalidValue):
        cleaning.parse_grams("heavy")


def test_parse_bool_and_lists() -> None:
    assert [cleaning.parse_bool(x) for x in ("是", "否", "Y", "no", "1", "", "√")] == [
        True, False, True, False, True, False, True,
    ]  # fmt: skip
    with pytest.raises(InvalidValue):
        cleaning.parse_bool("maybe")
    assert cleaning.split_list("VIP、月结；电商, 大客户") == ["VIP", "月结", "电商", "大客户"]
