"""The festival calendar of care greetings: China's lunar festivals and solar holidays.

Lunar festivals fall on a day of the Chinese lunisolar calendar (``lunardate``, 1900–2099):
春节 1/1, 元宵 1/15, 端午 5/5, 七夕 7/7, 中秋 8/15, 重阳 9/9, 腊八 12/8 — never in a leap month
(闰月: the festival keeps the ordinary month) — and 除夕, the last day of the twelfth month,
which is its 29th or 30th. Solar days are fixed dates (元旦, 妇女节, 劳动节, 儿童节, 国庆) and
清明, the solar term (the sun at 15° longitude, 4 or 5 April), taken from the maintained
``holidays`` package that the service desk's working calendar already uses.

These are the days the occasions fall on, not the State Council's days off: a greeting is
sent for the festival, whatever the holiday schedule around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
from lunardate import LunarDate

from guanxi.core.i18n import N_


@dataclass(frozen=True)
class Festival:
    """One festival: its code, names, and where it falls (lunar month/day or solar)."""

    code: str
    name_zh: str
    name_en: str
    # (month, day) in the lunar calendar; None for a solar day.
    lunar: tuple[int, int] | None = None
    # (month, day) of a fixed solar date; None for lunar days and 清明.
    solar: tuple[int, int] | None = None

    @property
    def is_lunar(self) -> bool:
        """Whether it follows the lunar calendar (除夕 included)."""
        return self.lunar is not None or self.code == NEW_YEARS_EVE

    def name(self, lang: str) -> str:
        """The festival's name in ``lang`` (zh_CN or en)."""
        return self.name_zh if lang.startswith("zh") else self.name_en


# The last day of the twelfth lunar month: no fixed day number (29 or 30).
NEW_YEARS_EVE = "new_years_eve"
QINGMING = "qingming"

FESTIVALS: dict[str, Festival] = {
    f.code: f
    for f in (
        Festival("new_year", "元旦", "New Year's Day", solar=(1, 1)),
        Festival(NEW_YEARS_EVE, "除夕", "Chinese New Year's Eve"),
        Festival("spring_festival", "春节", "Spring Festival", lunar=(1, 1)),
        Festival("lantern", "元宵节", "Lantern Festival", lunar=(1, 15)),
        Festival("womens_day", "妇女节", "Women's Day", solar=(3, 8)),
        Festival(QINGMING, "清明节", "Qingming Festival"),
        Festival("labour_day", "劳动节", "Labour Day", solar=(5, 1)),
        Festival("childrens_day", "儿童节", "Children's Day", solar=(6, 1)),
        Festival("dragon_boat", "端午节", "Dragon Boat Festival", lunar=(5, 5)),
        Festival("qixi", "七夕节", "Qixi Festival", lunar=(7, 7)),
        Festival("mid_autumn", "中秋节", "Mid-Autumn Festival", lunar=(8, 15)),
        Festival("national_day", "国庆节", "National Day", solar=(10, 1)),
        Festival("double_ninth", "重阳节", "Double Ninth Festival", lunar=(9, 9)),
        Festival("laba", "腊八节", "Laba Festival", lunar=(12, 8)),
    )
}
_BY_LUNAR = {f.lunar: f for f in FESTIVALS.values() if f.lunar is not None}
_BY_SOLAR = {f.solar: f for f in FESTIVALS.values() if f.solar is not None}

# Labels for the rule editor's festival picker (the UI shows the Chinese name beside).
LABELS: dict[str, str] = {
    "new_year": N_("New Year's Day"),
    NEW_YEARS_EVE: N_("Chinese New Year's Eve"),
    "spring_festival": N_("Spring Festival"),
    "lantern": N_("Lantern Festival"),
    "womens_day": N_("Women's Day"),
    QINGMING: N_("Qingming Festival"),
    "labour_day": N_("Labour Day"),
    "childrens_day": N_("Children's Day"),
    "dragon_boat": N_("Dragon Boat Festival"),
    "qixi": N_("Qixi Festival"),
    "mid_autumn": N_("Mid-Autumn Festival"),
    "national_day": N_("National Day"),
    "double_ninth": N_("Double Ninth Festival"),
    "laba": N_("Laba Festival"),
}


@lru_cache(maxsize=256)
def _qingming(year: int) -> date | None:
    """清明 of ``year``: the solar-term day the ``holidays`` package names (its "observed"
    day off after a weekend is not the festival)."""
    for day, name in holidays.country_holidays("CN", years=year).items():
        if name == "Tomb-Sweeping Day":
            return day
    return None


def _lunar(day: date) -> LunarDate | None:
    try:
        return LunarDate.from_solar_date(day.year, day.month, day.day)
    except (ValueError, IndexError):  # outside the library's table (1900-2099)
        return None


@lru_cache(maxsize=4096)
def festivals_on(day: date) -> tuple[Festival, ...]:
    """The festivals that fall on ``day`` (usually none, rarely two), in calendar order."""
    found: list[Festival] = []
    solar = _BY_SOLAR.get((day.month, day.day))
    if solar is not None:
        found.append(solar)
    if _qingming(day.year) == day:
        found.append(FESTIVALS[QINGMING])
    lunar = _lunar(day)
    if lunar is not None and not lunar.is_leap_month:
        festival = _BY_LUNAR.get((lunar.month, lunar.day))
        if festival is not None:
            found.append(festival)
        # 除夕: tomorrow is the first day of the first month.
        tomorrow = _lunar(day + timedelta(days=1))
        if tomorrow is not None and (tomorrow.month, tomorrow.day) == (1, 1):
            if not tomorrow.is_leap_month:
                found.append(FESTIVALS[NEW_YEARS_EVE])
    return tuple(found)


def festival_dates(year: int) -> list[tuple[date, Festival]]:
    """Every festival of the solar year ``year`` with its date, in date order."""
    out: list[tuple[date, Festival]] = []
    day = date(year, 1, 1)
    while day.year == year:
        out.extend((day, f) for f in festivals_on(day))
        day += timedelta(days=1)
    return out


def next_occurrence(code: str, on_or_after: date) -> date | None:
    """The first day on or after ``on_or_after`` that ``code`` falls on (within a year and
    a day — every festival comes once a year); None for an unknown code."""
    if code not in FESTIVALS:
        return None
    day = on_or_after
    for _ in range(400):
        if any(f.code == code for f in festivals_on(day)):
            return day
        day += timedelta(days=1)
    return None  # pragma: no cover - beyond the lunar table's range
