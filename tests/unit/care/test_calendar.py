"""The festival calendar of care greetings against the published dates, 2024–2030."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from guanxi.care.calendar import FESTIVALS, festival_dates, festivals_on, next_occurrence

# Published dates (the State Council's holiday notices and the Purple Mountain
# Observatory's almanac): Spring Festival, Lantern, Dragon Boat, Qixi, Mid-Autumn, Double
# Ninth, and New Year's Eve (the last day of the twelfth month before that Spring Festival).
PUBLISHED: dict[str, list[date]] = {
    "spring_festival": [
        date(2024, 2, 10),
        date(2025, 1, 29),
        date(2026, 2, 17),
        date(2027, 2, 6),
        date(2028, 1, 26),
        date(2029, 2, 13),
        date(2030, 2, 3),
    ],
    "lantern": [
        date(2024, 2, 24),
        date(2025, 2, 12),
        date(2026, 3, 3),
        date(2027, 2, 20),
        date(2028, 2, 9),
        date(2029, 2, 27),
        date(2030, 2, 17),
    ],
    "dragon_boat": [
        date(2024, 6, 10),
        date(2025, 5, 31),
        date(2026, 6, 19),
        date(2027, 6, 9),
        date(2028, 5, 28),
        date(2029, 6, 16),
        date(2030, 6, 5),
    ],
    "qixi": [
        date(2024, 8, 10),
        date(2025, 8, 29),
        date(2026, 8, 19),
        date(2027, 8, 8),
        date(2028, 8, 26),
        date(2029, 8, 16),
        date(2030, 8, 5),
    ],
    "mid_autumn": [
        date(2024, 9, 17),
        date(2025, 10, 6),
        date(2026, 9, 25),
        date(2027, 9, 15),
        date(2028, 10, 3),
        date(2029, 9, 22),
        date(2030, 9, 12),
    ],
    "double_ninth": [
        date(2024, 10, 11),
        date(2025, 10, 29),
        date(2026, 10, 18),
        date(2027, 10, 8),
        date(2028, 10, 26),
        date(2029, 10, 16),
        date(2030, 10, 5),
    ],
    # 除夕: 29th of the twelfth month in 2025, 2026, 2028 (30 days in the month otherwise).
    "new_years_eve": [
        date(2024, 2, 9),
        date(2025, 1, 28),
        date(2026, 2, 16),
        date(2027, 2, 5),
        date(2028, 1, 25),
        date(2029, 2, 12),
        date(2030, 2, 2),
    ],
    "qingming": [
        date(2024, 4, 4),
        date(2025, 4, 4),
        date(2026, 4, 5),
        date(2027, 4, 5),
        date(2028, 4, 4),
        date(2029, 4, 4),
        date(2030, 4, 5),
    ],
}
# 腊八 (12/8) falls in January of the next solar year, or on the year's 1st of January.
LABA = [
    date(2024, 1, 18),
    date(2025, 1, 7),
    date(2026, 1, 26),
    date(2027, 1, 15),
    date(2028, 1, 4),
    date(2029, 1, 22),
    date(2030, 1, 11),
]


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_lunar_and_solar_term_festivals_match_the_published_dates(code: str) -> None:
    for expected in PUBLISHED[code]:
        found = [d for d, f in festival_dates(expected.year) if f.code == code]
        assert found == [expected], (code, expected.year)


def test_laba_and_the_fixed_solar_days() -> None:
    for expected in LABA:
        assert [d for d, f in festival_dates(expected.year) if f.code == "laba"] == [expected]
    for year in range(2024, 2031):
        days = {f.code: d for d, f in festival_dates(year) if f.solar is not None}
        assert days == {
            "new_year": date(year, 1, 1),
            "womens_day": date(year, 3, 8),
            "labour_day": date(year, 5, 1),
            "childrens_day": date(year, 6, 1),
            "national_day": date(year, 10, 1),
        }


def test_each_festival_comes_once_a_year_2024_to_2030() -> None:
    for year in range(2024, 2031):
        codes = [f.code for _d, f in festival_dates(year)]
        assert sorted(codes) == sorted(FESTIVALS), year


def test_new_years_eve_is_the_last_day_of_the_twelfth_month_whether_29th_or_30th() -> None:
    # 2025-01-28 is 腊月二十九 (the month has 29 days); 2024-02-09 is 腊月三十.
    assert [f.code for f in festivals_on(date(2025, 1, 28))] == ["new_years_eve"]
    assert festivals_on(date(2025, 1, 27)) == ()
    assert [f.code for f in festivals_on(date(2024, 2, 9))] == ["new_years_eve"]
    assert festivals_on(date(2024, 2, 8)) == ()


def test_a_leap_month_repeats_no_festival() -> None:
    # 2025 has a leap sixth month and 2023 a leap second month: the festivals of the
    # months after fall once, on the ordinary month.
    for year in (2023, 2025):
        codes = [f.code for _d, f in festival_dates(year)]
        assert len(codes) == len(set(codes))
    assert [d for d, f in festival_dates(2025) if f.code == "qixi"] == [date(2025, 8, 29)]
    # Laba of lunar 2022 came on 30 December 2022, and that of lunar 2023 in January 2024:
    # the solar year 2023 had none.
    assert sorted(FESTIVALS) == sorted({f.code for _d, f in festival_dates(2023)} | {"laba"})
    assert [f.code for f in festivals_on(date(2022, 12, 30))] == ["laba"]


def test_two_festivals_on_one_day_are_both_named() -> None:
    # Mid-Autumn Festival fell on National Day in 2020: both are greeted.
    assert [f.code for f in festivals_on(date(2020, 10, 1))] == ["national_day", "mid_autumn"]


def test_names_in_both_languages() -> None:
    mid = FESTIVALS["mid_autumn"]
    assert (mid.name("zh_CN"), mid.name("en")) == ("中秋节", "Mid-Autumn Festival")
    assert FESTIVALS["new_years_eve"].is_lunar
    assert not FESTIVALS["qingming"].is_lunar


def test_next_occurrence() -> None:
    assert next_occurrence("mid_autumn", date(2026, 9, 26)) == date(2027, 9, 15)
    assert next_occurrence("mid_autumn", date(2026, 9, 25)) == date(2026, 9, 25)
    assert next_occurrence("no_such_day", date(2026, 1, 1)) is None


def test_outside_the_lunar_table_only_solar_days_are_known() -> None:
    day = date(2100, 10, 1)
    assert [f.code for f in festivals_on(day)] == ["national_day"]
    assert festivals_on(day - timedelta(days=1)) == ()
