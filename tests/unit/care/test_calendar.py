"""The festival calendar of care greetings against the published dates, 2024–2030."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from guanxi.care.calendar import FESTIVALS, festival_dates, festivals_on, next_occurrence

# Published dates (the State Council's holiday notices and the Purple Mountain
# Observatory's almanac), month-day per solar year. New Year's Eve is the last day of the
# twelfth month before that Spring Festival: the 29th in 2025, 2026 and 2028 (the 30th
# otherwise). 腊八 (12/8) falls in January of the next solar year, or on the year's 1st of
# January.
CODES = (
    "spring_festival",
    "lantern",
    "dragon_boat",
    "qixi",
    "mid_autumn",
    "double_ninth",
    "new_years_eve",
    "qingming",
    "laba",
)
PUBLISHED: dict[int, tuple[str, ...]] = {
    2024: ("02-10", "02-24", "06-10", "08-10", "09-17", "10-11", "02-09", "04-04", "01-18"),
    2025: ("01-29", "02-12", "05-31", "08-29", "10-06", "10-29", "01-28", "04-04", "01-07"),
    2026: ("02-17", "03-03", "06-19", "08-19", "09-25", "10-18", "02-16", "04-05", "01-26"),
    2027: ("02-06", "02-20", "06-09", "08-08", "09-15", "10-08", "02-05", "04-05", "01-15"),
    2028: ("01-26", "02-09", "05-28", "08-26", "10-03", "10-26", "01-25", "04-04", "01-04"),
    2029: ("02-13", "02-27", "06-16", "08-16", "09-22", "10-16", "02-12", "04-04", "01-22"),
    2030: ("02-03", "02-17", "06-05", "08-05", "09-12", "10-05", "02-02", "04-05", "01-11"),
}
CASES = [
    (year, code, date.fromisoformat(f"{year}-{month_day}"))
    for year, row in PUBLISHED.items()
    for code, month_day in zip(CODES, row, strict=True)
]


@pytest.mark.parametrize(("year", "code", "expected"), CASES)
def test_lunar_and_solar_term_festivals_match_the_published_dates(
    year: int, code: str, expected: date
) -> None:
    assert [d for d, f in festival_dates(year) if f.code == code] == [expected]


def test_the_fixed_solar_days() -> None:
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
