"""Realistic synthetic data (zh_CN) for an express company: customers with contacts,
addresses, tags and encrypted identifiers, and about ten shipments each with a weekly
rhythm, Double 11 / 618 peaks and a Spring Festival dip.

Deterministic for a seed (ciphertexts differ, plaintexts do not). Generation is vectorised
with numpy per chunk of customers and written with the raw driver (``executemany`` on
SQLite, ``COPY`` on PostgreSQL), one transaction per chunk, so a million customers and ten
million shipments fit in minutes and a bounded amount of memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
from faker.providers.company.zh_CN import Provider as CompanyProvider
from faker.providers.person.zh_CN import Provider as PersonProvider
from sqlalchemy import Engine, text
from stdnum.cn import ric, uscc

from guanxi.core import clock
from guanxi.customers.addresses import _tables
from guanxi.customers.tokens import name_tokens
from guanxi.demo.history import CustomerDraft, History, ShipmentDraft, waybill_no
from guanxi.security.crypto import FieldCipher, cipher

Progress = Callable[[str, int, int], None]

SOURCES = [
    "website",
    "app",
    "wechat",
    "outlet",
    "pickup_point",
    "ecommerce",
    "referral",
    "cold_outreach",
    "third_party",
    "hotline",
]
SOURCE_P = [0.12, 0.18, 0.2, 0.14, 0.08, 0.14, 0.06, 0.03, 0.02, 0.03]
INDUSTRIES = [
    "电商",
    "制造",
    "服装",
    "生鲜",
    "医药",
    "电子",
    "餐饮",
    "教育",
    "家居",
    "汽配",
    "化妆品",
    "图书",
]
STAGES = ["prospect", "new", "active", "dormant", "churned"]
STAGE_P = [0.05, 0.15, 0.55, 0.17, 0.08]
RATINGS = ["AAA", "AA", "A", "B", "C"]
RATING_P = [0.1, 0.25, 0.4, 0.18, 0.07]
TAGS = [
    "月结客户",
    "电商大客户",
    "冷链",
    "国际件",
    "高价值",
    "投诉敏感",
    "VIP",
    "新客户",
    "节日关怀",
]
TITLES = ["物流经理", "采购主管", "行政", "仓储主管", "总经理助理", "财务", "电商运营"]
SERVICES = ["standard", "express", "same_day", "cold_chain", "international"]
SERVICE_P = [0.62, 0.25, 0.05, 0.05, 0.03]
SERVICE_DAYS = np.array([3, 1, 0, 2, 6])  # promised transit days by service
SERVICE_BASE_FEN = np.array([800, 1800, 2500, 3000, 9000])
# Shipping rates: expected shipments over the two-year span while a customer, before the
# planted churn ends it (about ten per customer remain on average). Individuals: gamma
# (a few a year, heavy-tailed); enterprises and government: lognormal (dozens).
INDIVIDUAL_SHIPMENTS = 10.0
INDIVIDUAL_SHAPE = 1.2
ORGANISATION_MU = 2.9
ORGANISATION_SCALE = 1.75
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]
LANDLINE_AREAS = ["571", "21", "10", "755", "20", "512", "25", "574", "28", "27"]
STREET_WORDS = [
    "文一西路",
    "人民大道",
    "解放路",
    "中山路",
    "建设路",
    "长江路",
    "科技园路",
    "南京路",
    "和平街",
    "星光街",
    "滨江大道",
    "迎宾路",
    "工业园路",
    "学院路",
    "振兴路",
    "东风路",
]
BRAND_WORDS = [
    "顺达",
    "恒通",
    "华盛",
    "鼎新",
    "万家",
    "金桥",
    "瑞丰",
    "宏远",
    "嘉禾",
    "联创",
    "天成",
    "新源",
    "永信",
    "博远",
    "佳和",
    "中汇",
    "润泽",
    "诚信",
    "兴隆",
    "锦程",
]
ORG_WORDS = ["物流", "贸易", "电子商务", "科技", "服饰", "食品", "医药", "实业", "供应链", "电器"]
ORG_SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"]
EN_NAMES = [
    "Shunda Logistics Co., Ltd.",
    "Evergreen Trading Ltd.",
    "Pacific Supply Chain Co.",
    "Golden Bridge Electronics",
    "Harbor Foods Ltd.",
    "Sunrise Apparel Co.",
]
GOV_NAMES = [
    "人民政府办公室",
    "税务局",
    "市场监督管理局",
    "人民医院",
    "第一中学",
    "图书馆",
    "邮政管理局",
]
# Provinces that ship the most, weighted up.
PROVINCE_WEIGHT = {
    "广东省": 12,
    "浙江省": 11,
    "江苏省": 9,
    "上海市": 6,
    "北京市": 5,
    "山东省": 5,
    "福建省": 4,
    "河南省": 3,
    "四川省": 3,
    "湖北省": 3,
}
SPRING_FESTIVALS = [date(2024, 2, 10), date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6)]


@dataclass(frozen=True)
class DemoSummary:
    """What one ``generate`` call wrote."""

    customers: int
    shipments: int
    contacts: int
    addresses: int
    phones: int
    events: int
    seconds: float
    # (original id, duplicate id) of every planted duplicate: the truth a de-duplication
    # run is measured against.
    duplicates: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class _Area:
    province: str
    city: str
    district: str | None
    code: str


@cache
def _areas() -> tuple[list[_Area], np.ndarray]:
    """Every district with its sampling weight (big express provinces heavier)."""
    areas: list[_Area] = []
    seen: set[str] = set()
    for cities in _tables().cities.values():
        for c in cities:
            if c.code in seen:
                continue
            seen.add(c.code)
            if c.districts:
                areas += [_Area(c.province, c.name, d, code) for d, code in c.districts.items()]
            else:
                areas.append(_Area(c.province, c.name, None, c.code))
    areas.sort(key=lambda a: a.code)
    weights = np.array([PROVINCE_WEIGHT.get(a.province, 1.0) for a in areas], dtype=float)
    return areas, weights / weights.sum()


def _day_weights(start: date, days: int) -> np.ndarray:
    """Relative shipping volume per day: weekly rhythm and the retail calendar."""
    w = np.ones(days)
    for i in range(days):
        d = start + timedelta(days=i)
        w[i] *= 0.55 if d.weekday() == 6 else (0.8 if d.weekday() == 5 else 1.0)
        if d.month == 11 and 10 <= d.day <= 14:
            w[i] *= 3.2 if d.day in (11, 12) else 2.0  # Double 11
        elif d.month == 6 and 16 <= d.day <= 19:
            w[i] *= 1.8  # 618
        elif d.month == 12 and d.day >= 10:
            w[i] *= 1.2
        for sf in SPRING_FESTIVALS:
            delta = (d - sf).days
            if -10 <= delta <= 10:
                w[i] *= 0.25 if -3 <= delta <= 6 else 0.6
    normalised: np.ndarray = w / w.sum()
    return normalised


def _fmt_times(values: np.ndarray, dialect: str) -> list[Any]:
    """datetime64[us] (UTC) -> what the driver stores for UTCDateTime on this dialect."""
    if dialect == "sqlite":
        # SQLAlchemy's SQLite DateTime text form: "YYYY-MM-DD HH:MM:SS.ffffff".
        out = np.char.replace(np.datetime_as_string(values, unit="us"), "T", " ")
        return out.tolist()  # type: ignore[no-any-return]
    return [v.replace(tzinfo=UTC) for v in values.astype("datetime64[us]").tolist()]


def _fmt_optional_times(values: np.ndarray, mask: np.ndarray, dialect: str) -> list[Any]:
    formatted = _fmt_times(values, dialect)
    return [v if m else None for v, m in zip(formatted, mask.tolist(), strict=True)]


class _Writer:
    """Bulk insert with the raw driver: executemany (SQLite) or COPY (PostgreSQL)."""

    # Secondary indexes with random keys make every insert a random B-tree write; on a fresh
    # load they are dropped and rebuilt once at the end from sorted data, which is far cheaper.
    DEFERRED_INDEX_TABLES = (
        "shipment",
        "shipment_event",
        "customer_search_token",
        "customer_phone",
    )

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.cur = self.raw.cursor()
        self.deferred: list[str] = []
        if self.dialect == "sqlite":
            self.cur.execute("PRAGMA cache_size=-262144")  # 256 MB for the load only
            # The load is one process on a fresh file: durability per chunk is not needed.
            self.cur.execute("PRAGMA synchronous=OFF")
            # Memory-mapped pages count as resident memory; a bulk load gains little from them.
            self.cur.execute("PRAGMA mmap_size=0")
            self.cur.execute("BEGIN IMMEDIATE")
            self._defer_indexes()

    def _defer_indexes(self) -> None:
        """Drop the secondary indexes of empty bulk tables; :meth:`close` recreates them."""
        self.cur.execute("SELECT EXISTS (SELECT 1 FROM shipment)")
        (has_rows,) = self.cur.fetchone() or (0,)
        if has_rows:
            return
        marks = ",".join("?" * len(self.DEFERRED_INDEX_TABLES))
        self.cur.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
            f"AND tbl_name IN ({marks})",
            self.DEFERRED_INDEX_TABLES,
        )
        for name, sql in self.cur.fetchall():
            self.deferred.append(sql)
            self.cur.execute(f'DROP INDEX "{name}"')

    def rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "sqlite":
            marks = ",".join("?" * len(columns))
            # Table and column names are this module's constants, never input.
            sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})"  # noqa: S608
            self.cur.executemany(sql, rows)
        else:
            with self.cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def commit(self) -> None:
        self.raw.commit()
        if self.dialect == "sqlite":
            self.cur.execute("BEGIN IMMEDIATE")

    def close(self, progress: Progress | None = None) -> None:
        if self.dialect == "sqlite":
            for done, sql in enumerate(self.deferred, start=1):
                self.cur.execute(sql)
                if progress:
                    progress("indexes", done, len(self.deferred))
            self.raw.commit()
            self.cur.execute("PRAGMA synchronous=NORMAL")
        self.raw.close()


def _sealed(c: FieldCipher, field: str, value: str | None) -> tuple[str | None, str | None]:
    """(ciphertext, blind index) of a value, or (None, None)."""
    if not value:
        return None, None
    return c.encrypt(field, value), c.blind_index(field, value)


def _resident_id(area: str, birth: date, seq: int) -> str:
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum ignores the last character


def _credit_code(area: str, serial: int) -> str:
    body = f"91{area}MA{serial:07d}"[:17]
    return body + uscc.calc_check_digit(body)


def generate(
    engine: Engine,
    *,
    customers: int,
    seed: int = 42,
    owner_ids: Sequence[int] = (),
    progress: Progress | None = None,
    chunk_size: int = 20_000,
    now: datetime | None = None,
    duplicate_rate: float = 0.0,
    history: History | None = None,
) -> DemoSummary:
    """Append ``customers`` synthetic customers and their shipments to the database.

    Churn is planted (:mod:`guanxi.demo.history`): every customer may leave, more readily
    after a complaint whose service level was missed or a claim that went badly, and ships
    nothing after leaving. Pass a :class:`~guanxi.demo.history.History` to keep the
    complaints, inquiries and claims behind it for :meth:`History.write` (and, with
    ``truth=True``, the latent churn state); without one only the churn is planted.

    ``duplicate_rate`` of them are second records of another generated customer, as if the
    same person had arrived again through another channel, with realistic variants
    (traditional characters, a typo, a landline instead of the mobile, no district, the
    company name with or without 有限公司 / 分公司, fewer identifiers). The summary lists the
    planted pairs.
    """
    started = time.perf_counter()
    now = (now or clock.now()).astimezone(UTC).replace(microsecond=0)
    with engine.connect() as conn:
        first_customer = (conn.scalar(text("SELECT MAX(id) FROM customer")) or 0) + 1
        first_shipment = (conn.scalar(text("SELECT MAX(id) FROM shipment")) or 0) + 1
        tag_ids = _ensure_tags(conn)
        conn.commit()
    writer = _Writer(engine)
    totals = dict.fromkeys(
        ("customers", "shipments", "contacts", "addresses", "phones", "events"), 0
    )
    span_days = 730
    start_day = (now - timedelta(days=span_days)).date()
    day_p = _day_weights(start_day, span_days)
    history = history or History(tickets=False)
    history.begin(seed=seed, now=now, start_day=start_day, day_weights=day_p)
    receivers = _receiver_pool(np.random.default_rng([seed, 999_999]), 20_000)
    planted: list[tuple[int, int]] = []
    try:
        next_customer, next_shipment = first_customer, first_shipment
        for index, lo in enumerate(range(0, customers, chunk_size)):
            n = min(chunk_size, customers - lo)
            rng = np.random.default_rng([seed, index])
            counts = _chunk(
                writer,
                rng,
                n,
                next_customer,
                next_shipment,
                owner_ids,
                tag_ids,
                now,
                start_day,
                day_p,
                receivers,
                duplicate_rate,
                planted,
                history=history,
                index=index,
            )
            writer.commit()
            for key, value in counts.items():
                totals[key] += value
            next_customer += n
            next_shipment += counts["shipments"]
            if progress:
                progress("customers", lo + n, customers)
    finally:
        writer.close(progress)
    return DemoSummary(**totals, seconds=time.perf_counter() - started, duplicates=tuple(planted))


@cache
def _provinces() -> np.ndarray:
    """The province of every area of :func:`_areas`, as an array to index."""
    return np.array([a.province for a in _areas()[0]], dtype=object)


def _no_shipments() -> ShipmentDraft:
    empty = np.empty(0, dtype="datetime64[us]")
    none = np.empty(0, dtype=bool)
    return ShipmentDraft(
        owner=np.empty(0, dtype=np.int64),
        created=empty,
        promised=empty,
        delivered=empty,
        arrived=none,
        damaged=none,
        lost=none,
        fee=np.empty(0, dtype=np.int64),
        insured=np.empty(0, dtype=np.int64),
        region=np.empty(0, dtype=object),
    )


def _plant(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """(duplicate position, original position) pairs within a chunk, disjoint."""
    m = int(round(n * rate))
    if m == 0 or n < 2 * m:
        return np.empty((0, 2), dtype=np.int64)
    picked = rng.permutation(n)[: 2 * m]
    return np.stack([np.maximum(picked[:m], picked[m:]), np.minimum(picked[:m], picked[m:])], 1)


@cache
def _t2s() -> tuple[Any, Any]:
    import opencc

    return opencc.OpenCC("s2t"), opencc.OpenCC("t2s")


def _traditional(text: str) -> str:
    return str(_t2s()[0].convert(text))


def _vary(
    rng: np.random.Generator,
    dup: np.ndarray,
    kinds: np.ndarray,
    names: list[str],
    mobiles: list[str],
    landline: np.ndarray,
    phones_per: np.ndarray,
    no_district: np.ndarray,
) -> None:
    """Give each planted duplicate one or two of the variants real second records carry.

    The name and the phone are never both changed, so a duplicate always keeps one of the
    two facts a person would recognise; the address keeps its street and number.
    """
    given = _given_chars()
    for j in dup.tolist():
        variant = int(rng.integers(0, 6))
        name = names[j]
        if variant == 0:  # written in traditional characters (港澳台 / some apps)
            names[j] = _traditional(name)
        elif variant == 1:  # a typo in the given name / brand word
            at = len(name) - 1 if kinds[j] == 0 else min(len(name) - 1, 3)
            typo = given[int(rng.integers(0, len(given)))]
            names[j] = name[:at] + (typo if typo != name[at] else "某") + name[at + 1 :]
        elif variant == 2:  # the office landline instead of the mobile
            mobiles[2 * j] = f"+8610{int(rng.integers(60_000_000, 69_999_999))}"
            landline[j] = True
            phones_per[j] = 1
        elif variant == 3:  # the address without its district
            no_district[j] = True
        elif variant == 4:  # 有限公司 dropped, or a 分公司 of the same company
            if kinds[j] > 0:
                core = name.removesuffix("有限责任公司").removesuffix("股份有限公司")
                core = core.removesuffix("有限公司")
                names[j] = core if rng.random() < 0.5 else f"{core}分公司"
            else:
                names[j] = _traditional(name)
        else:  # a different mobile (a second phone) and no district
            mobiles[2 * j] = mobiles[2 * j + 1]
            no_district[j] = bool(rng.random() < 0.5)
        if rng.random() < 0.3 and variant not in (2, 5):
            no_district[j] = True


def _ensure_tags(conn: Any) -> list[int]:
    for name in TAGS:
        if conn.scalar(text("SELECT id FROM tag WHERE name = :n"), {"n": name}) is None:
            conn.execute(text("INSERT INTO tag (name) VALUES (:n)"), {"n": name})
    return [int(conn.scalar(text("SELECT id FROM tag WHERE name = :n"), {"n": n})) for n in TAGS]


def _mobiles(rng: np.random.Generator, n: int) -> list[str]:
    prefixes = np.array(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), n)]
    rest = rng.integers(0, 10**8, n)
    return [f"+86{p}{r:08d}" for p, r in zip(prefixes.tolist(), rest.tolist(), strict=True)]


def _receiver_pool(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], list[str]]:
    """Pre-encrypted receiver phones (encrypting ten million would dominate the run)."""
    phones = _mobiles(rng, n)
    c = cipher()
    return (
        _person_names(rng, n),
        [c.encrypt("phone", p) for p in phones],
        [c.blind_index("phone", p) for p in phones],
    )


@cache
def _surnames() -> tuple[list[str], np.ndarray]:
    names = list(PersonProvider.last_names.keys())
    weights = np.array(list(PersonProvider.last_names.values()), dtype=float)
    return names, weights / weights.sum()


@cache
def _given_chars() -> list[str]:
    return [g for g in PersonProvider.first_names if len(g) == 1]


def _person_names(rng: np.random.Generator, n: int) -> list[str]:
    """Surname by real frequency plus a one- or two-character given name."""
    surnames, p = _surnames()
    given = _given_chars()
    s = rng.choice(len(surnames), n, p=p)
    g1 = rng.integers(0, len(given), n)
    g2 = rng.integers(0, len(given), n)
    two = rng.random(n) < 0.7
    return [
        surnames[a] + given[b] + (given[c] if t else "")
        for a, b, c, t in zip(s.tolist(), g1.tolist(), g2.tolist(), two.tolist(), strict=True)
    ]


def _org_names(rng: np.random.Generator, kinds: np.ndarray, areas: list[_Area]) -> list[str]:
    n = len(kinds)
    brand = rng.integers(0, len(BRAND_WORDS), n)
    prefix = rng.integers(0, len(CompanyProvider.company_prefixes), n)
    org = rng.integers(0, len(ORG_WORDS), n)
    suffix = rng.integers(0, len(ORG_SUFFIXES), n)
    english = rng.random(n) < 0.03
    use_prefix = rng.random(n) < 0.4
    gov = rng.integers(0, len(GOV_NAMES), n)
    names = []
    for i in range(n):
        city = areas[i].city.removesuffix("市")
        if kinds[i] == 2:
            names.append(f"{city}{GOV_NAMES[gov[i]]}")
        elif english[i]:
            names.append(EN_NAMES[brand[i] % len(EN_NAMES)])
        else:
            word = (
                CompanyProvider.company_prefixes[prefix[i]]
                if use_prefix[i]
                else BRAND_WORDS[brand[i]]
            )
            names.append(f"{city}{word}{ORG_WORDS[org[i]]}{ORG_SUFFIXES[suffix[i]]}")
    return names


def _chunk(
    w: _Writer,
    rng: np.random.Generator,
    n: int,
    first_id: int,
    first_shipment: int,
    owner_ids: Sequence[int],
    tag_ids: list[int],
    now: datetime,
    start_day: date,
    day_p: np.ndarray,
    receivers: tuple[list[str], list[str], list[str]],
    duplicate_rate: float = 0.0,
    planted: list[tuple[int, int]] | None = None,
    *,
    history: History,
    index: int,
) -> dict[str, int]:
    c = cipher()
    d = w.dialect
    ids = np.arange(first_id, first_id + n)
    kinds = rng.choice(3, n, p=[0.75, 0.23, 0.02])  # individual / enterprise / government
    kind_names = np.array(["individual", "enterprise", "government"])[kinds]
    all_areas, area_p = _areas()
    area_idx = rng.choice(len(all_areas), n, p=area_p)
    areas = [all_areas[i] for i in area_idx.tolist()]
    people = _person_names(rng, n)
    orgs = _org_names(rng, kinds, areas)
    names = [people[i] if kinds[i] == 0 else orgs[i] for i in range(n)]

    created_days = rng.integers(30, 3 * 365, n)
    created = (
        np.datetime64(now.replace(tzinfo=None), "us")
        - created_days.astype("timedelta64[D]")
        - rng.integers(0, 86_400, n).astype("timedelta64[s]")
    )
    owners = np.array(owner_ids or [0])[rng.integers(0, max(1, len(owner_ids)), n)]
    has_owner = (kinds > 0) | (rng.random(n) < 0.3)
    sources = np.array(SOURCES)[rng.choice(len(SOURCES), n, p=SOURCE_P)]
    stages = np.array(STAGES)[rng.choice(len(STAGES), n, p=STAGE_P)]
    ratings = np.array(RATINGS)[rng.choice(len(RATINGS), n, p=RATING_P)]
    industries = np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), n)]
    birth_days = rng.integers(18 * 365, 70 * 365, n)
    has_birthday = (kinds == 0) & (rng.random(n) < 0.6)
    has_id = has_birthday & (rng.random(n) < 0.5)
    has_email = rng.random(n) < 0.4
    archived = rng.random(n) < 0.01
    # The ID number's sequence from the customer id, so two people share a number only when
    # born the same day in the same county with ids a multiple of 1000 apart.
    id_seq = ids % 1000
    today = now.date()

    customer_rows: list[tuple[Any, ...]] = []
    phone_rows: list[tuple[Any, ...]] = []
    address_rows: list[tuple[Any, ...]] = []
    contact_rows: list[tuple[Any, ...]] = []
    token_rows: list[tuple[str, int]] = []
    tag_rows: list[tuple[int, int]] = []
    phones_per = 1 + (rng.random(n) < 0.3)
    mobiles = _mobiles(rng, n * 2)
    landline = (kinds > 0) & (rng.random(n) < 0.25)
    land_area = np.array(LANDLINE_AREAS)[rng.integers(0, len(LANDLINE_AREAS), n)]
    land_num = rng.integers(20_000_000, 89_999_999, n)
    street = np.array(STREET_WORDS)[rng.integers(0, len(STREET_WORDS), n)]
    house = rng.integers(1, 999, n)
    room = rng.integers(101, 2808, n)
    second_address = rng.random(n) < 0.25
    # Whose e-mail / credit code a record carries: its own, or its original's when planted.
    owner_of = ids.copy()
    no_district = np.zeros(n, dtype=bool)
    keeps_ids = np.ones(n, dtype=bool)
    dups = _plant(rng, n, duplicate_rate)
    if len(dups):
        dup, src = dups[:, 0], dups[:, 1]
        for arr in (kinds, area_idx, birth_days, has_birthday, id_seq, phones_per, landline):
            arr[dup] = arr[src]
        for arr in (land_area, land_num, street, house, room, owner_of):
            arr[dup] = arr[src]
        kind_names[dup] = kind_names[src]
        second_address[dup] = False
        # Both records of a planted pair stay active: the truth is about live customers.
        archived[dup] = archived[src] = False
        has_email[dup] = has_email[src] & (rng.random(len(dup)) < 0.5)
        # Another channel seldom captures the ID number or credit code again.
        keeps_ids[dup] = rng.random(len(dup)) < 0.3
        has_id[dup] = has_id[src] & keeps_ids[dup]
        for j, k in zip(dup.tolist(), src.tolist(), strict=True):
            mobiles[2 * j], mobiles[2 * j + 1] = mobiles[2 * k], mobiles[2 * k + 1]
            areas[j] = areas[k]
            names[j] = names[k]
        _vary(rng, dup, kinds, names, mobiles, landline, phones_per, no_district)
        if planted is not None:
            planted.extend(
                (int(ids[k]), int(ids[j])) for j, k in zip(dup.tolist(), src.tolist(), strict=True)
            )
    created_s = _fmt_times(created, d)
    for i in range(n):
        cid = int(ids[i])
        kind = kinds[i]
        birthday = today - timedelta(days=int(birth_days[i])) if has_birthday[i] else None
        area = areas[i]
        email = (
            f"user{owner_of[i]}@{'qq.com' if kind == 0 else 'corp.example.cn'}"
            if has_email[i]
            else None
        )
        id_number = (
            _resident_id(area.code if len(area.code) == 6 else "110105", birthday, int(id_seq[i]))
            if has_id[i] and birthday
            else None
        )
        credit = (
            _credit_code(area.code.ljust(6, "0")[:6], int(owner_of[i]) % 10_000_000)
            if kind > 0 and keeps_ids[i]
            else None
        )
        customer_rows.append(
            (
                cid,
                str(kind_names[i]),
                names[i],
                *_sealed(c, "email", email),
                *_sealed(c, "id_number", id_number),
                *_sealed(c, "credit_code", credit),
                str(sources[i]),
                str(industries[i]) if kind > 0 else None,
                area.province,
                int(owners[i]) if has_owner[i] and owner_ids else None,
                birthday.isoformat() if birthday and d == "sqlite" else birthday,
                str(stages[i]),
                str(ratings[i]) if kind > 0 else None,
                None,
                "archived" if archived[i] else "active",
                created_s[i],
                created_s[i],
                created_s[i] if archived[i] else None,
                1,
            )
        )
        numbers = [mobiles[2 * i], mobiles[2 * i + 1]][: int(phones_per[i])]
        if landline[i]:
            numbers[0] = f"+86{land_area[i]}{land_num[i]}"[: 3 + len(land_area[i]) + 8]
        for pos, number in enumerate(numbers):
            phone_kind = "landline" if landline[i] and pos == 0 else "mobile"
            phone_rows.append(
                (
                    cid,
                    pos,
                    phone_kind,
                    c.encrypt("phone", number),
                    c.blind_index("phone", number),
                    number[-4:],
                )
            )
        detail = f"{street[i]}{house[i]}号{room[i]}室" if kind == 0 else f"{street[i]}{house[i]}号"
        address_rows.append(
            (
                cid,
                0,
                "默认" if kind == 0 else "公司",
                area.province,
                area.city,
                None if no_district[i] else area.district,
                _traditional(detail) if no_district[i] and i % 2 else detail,
                None if no_district[i] else area.code,
            )
        )
        if second_address[i]:
            other = all_areas[int(area_idx[(i + 1) % n])]
            address_rows.append(
                (
                    cid,
                    1,
                    "其他",
                    other.province,
                    other.city,
                    other.district,
                    f"{street[(i + 3) % n]}{house[(i + 7) % n]}号",
                    other.code,
                )
            )
        tokens = name_tokens(names[i])
        if kind > 0:
            k = 1 + int(rng.integers(0, 3))
            contact_names = _person_names(rng, k)
            for pos, cname in enumerate(contact_names):
                cphone = mobiles[(2 * i + pos + 7) % len(mobiles)]
                contact_rows.append(
                    (
                        cid,
                        pos,
                        cname,
                        TITLES[(cid + pos) % len(TITLES)],
                        c.encrypt("phone", cphone),
                        c.blind_index("phone", cphone),
                        None,
                        pos == 0,
                    )
                )
                tokens |= name_tokens(cname)
        token_rows.extend((t, cid) for t in tokens)
        if (cid * 2654435761) % 100 < 20:
            tag_rows.append((cid, tag_ids[cid % len(tag_ids)]))
    w.rows(
        "customer",
        [
            "id",
            "kind",
            "name",
            "email_enc",
            "email_bidx",
            "id_number_enc",
            "id_number_bidx",
            "credit_code_enc",
            "credit_code_bidx",
            "source",
            "industry",
            "region",
            "owner_id",
            "birthday",
            "lifecycle_stage",
            "credit_rating",
            "notes",
            "status",
            "created_at",
            "updated_at",
            "archived_at",
            "version",
        ],
        customer_rows,
    )
    w.rows(
        "customer_phone",
        ["customer_id", "position", "kind", "phone_enc", "phone_bidx", "last4"],
        phone_rows,
    )
    w.rows(
        "customer_address",
        [
            "customer_id",
            "position",
            "label",
            "province",
            "city",
            "district",
            "detail",
            "division_code",
        ],
        address_rows,
    )
    w.rows(
        "contact_person",
        [
            "customer_id",
            "position",
            "name",
            "title",
            "phone_enc",
            "phone_bidx",
            "email_enc",
            "is_primary",
        ],
        contact_rows,
    )
    w.rows("customer_search_token", ["token", "customer_id"], token_rows)
    w.rows("customer_tag", ["customer_id", "tag_id"], tag_rows)

    shipments, events = _shipments(
        w,
        rng,
        n,
        ids,
        kinds,
        areas,
        all_areas,
        area_p,
        created,
        now,
        start_day,
        day_p,
        first_shipment,
        receivers,
        history,
        index,
    )
    return {
        "customers": n,
        "shipments": shipments,
        "contacts": len(contact_rows),
        "addresses": len(address_rows),
        "phones": len(phone_rows),
        "events": events,
    }


def _shipments(
    w: _Writer,
    rng: np.random.Generator,
    n: int,
    ids: np.ndarray,
    kinds: np.ndarray,
    areas: list[_Area],
    all_areas: list[_Area],
    area_p: np.ndarray,
    customer_created: np.ndarray,
    now: datetime,
    start_day: date,
    day_p: np.ndarray,
    first_id: int,
    receivers: tuple[list[str], list[str], list[str]],
    history: History,
    index: int,
) -> tuple[int, int]:
    # Each customer ships as a Poisson process at their own rate (heavy-tailed: individuals
    # a few a year, enterprises dozens) from the day after they became a customer, following
    # the calendar's weights; the planted churn then thins and ends it (``history.plan``).
    span_days = len(day_p)
    rate = (
        np.where(
            kinds == 0,
            rng.gamma(INDIVIDUAL_SHAPE, INDIVIDUAL_SHIPMENTS / INDIVIDUAL_SHAPE, n),
            np.minimum(rng.lognormal(ORGANISATION_MU, 0.9, n), 2000) * ORGANISATION_SCALE,
        )
        / span_days
    )
    epoch = np.datetime64(start_day, "us")
    active_from = np.maximum(customer_created + np.timedelta64(1, "h"), epoch)
    first_day = np.ceil((active_from - epoch).astype(np.int64) / (86_400 * 10**6)).astype(np.int64)
    cum_weight = np.concatenate([[0.0], np.cumsum(day_p * span_days)])
    exposure = cum_weight[span_days] - cum_weight[np.minimum(first_day, span_days)]
    counts = rng.poisson(rate * exposure)
    total = int(counts.sum())
    if total == 0:
        history.plan(
            index,
            CustomerDraft(ids, kinds, active_from, rate),
            _no_shipments(),
        )
        history.accept(np.empty(0, dtype=np.int64))
        return 0, 0
    owner = np.repeat(np.arange(n), counts)
    u = cum_weight[first_day[owner]] + rng.random(total) * exposure[owner]
    day = np.clip(np.searchsorted(cum_weight, u, side="right") - 1, first_day[owner], span_days - 1)
    seconds = (
        rng.normal(14 * 3600, 3 * 3600, total).clip(6 * 3600, 22 * 3600).astype(np.int64) - 8 * 3600
    )
    created = (
        epoch
        + day.astype("timedelta64[D]")
        + seconds.astype("timedelta64[s]")
        + rng.integers(0, 10**6, total).astype("timedelta64[us]")
    )
    # Early hours of a customer's first day: not before they became one.
    created = np.maximum(created, active_from[owner] + np.timedelta64(10, "m"))
    now64 = np.datetime64(now.replace(tzinfo=None), "us")
    created = np.minimum(created, now64 - np.timedelta64(10, "m"))
    service = rng.choice(len(SERVICES), total, p=SERVICE_P)
    weight = (rng.lognormal(7.0, 1.0, total)).clip(100, 60_000).astype(np.int64)
    fee = SERVICE_BASE_FEN[service] + (np.maximum(weight - 1000, 0) // 1000) * np.where(
        service == 0, 200, 500
    )
    insured = np.where(rng.random(total) < 0.1, rng.integers(50, 5000, total) * 100, 0)
    fee = fee + insured // 200  # premium 0.5 %
    cod = np.where(rng.random(total) < 0.05, rng.integers(20, 3000, total) * 100, 0)
    door = rng.random(total) < 0.3
    receipt = rng.random(total) < 0.04
    promised = created + (SERVICE_DAYS[service] * 24 + 20).astype("timedelta64[h]")
    late = rng.random(total) < 0.065
    transit_hours = np.where(
        late,
        (SERVICE_DAYS[service] * 24 + 20) + rng.integers(2, 72, total),
        rng.integers(4, 20, total) + SERVICE_DAYS[service] * 20,
    )
    delivered = created + transit_hours.astype("timedelta64[h]")
    lost = rng.random(total) < 0.001
    damaged = (rng.random(total) < 0.005) & ~lost
    returned = (rng.random(total) < 0.004) & ~lost
    arrived = (delivered <= now64) & ~lost
    status = np.where(
        lost,
        "lost",
        np.where(
            arrived,
            np.where(returned, "returned", "delivered"),
            np.where(now64 - created < np.timedelta64(6, "h"), "picked_up", "in_transit"),
        ),
    )
    dest_idx = rng.choice(len(all_areas), total, p=area_p)
    recv = rng.integers(0, len(receivers[0]), total)

    # The service history raised from these shipments plants the churn: what survives it
    # is written.
    keep = history.plan(
        index,
        CustomerDraft(ids, kinds, active_from, rate),
        ShipmentDraft(
            owner=owner,
            created=created,
            promised=promised,
            delivered=delivered,
            arrived=arrived,
            damaged=damaged,
            lost=lost,
            fee=fee,
            insured=insured,
            region=_provinces()[dest_idx],
        ),
    )
    owner, created, promised, delivered, arrived = (
        owner[keep],
        created[keep],
        promised[keep],
        delivered[keep],
        arrived[keep],
    )
    service, weight, fee, insured, cod = (
        service[keep],
        weight[keep],
        fee[keep],
        insured[keep],
        cod[keep],
    )
    door, receipt, lost, damaged, status = (
        door[keep],
        receipt[keep],
        lost[keep],
        damaged[keep],
        status[keep],
    )
    dest_idx, recv = dest_idx[keep], recv[keep]
    total = len(owner)
    sid = np.arange(first_id, first_id + total)
    history.accept(sid)

    d = w.dialect
    created_s = _fmt_times(created, d)
    promised_s = _fmt_times(promised, d)
    delivered_s = _fmt_optional_times(delivered, arrived, d)
    services = np.array(SERVICES)[service].tolist()
    statuses = status.tolist()
    rows = []
    for j in range(total):
        o = int(owner[j])
        origin = areas[o]
        dest = all_areas[int(dest_idx[j])]
        r = int(recv[j])
        sj = int(sid[j])
        rows.append(
            (
                sj,
                "waybill",
                waybill_no(sj),
                int(ids[o]),
                services[j],
                statuses[j],
                receivers[0][r],
                receivers[1][r],
                receivers[2][r],
                origin.province,
                origin.city,
                dest.province,
                dest.city,
                dest.district,
                int(weight[j]),
                int(fee[j]),
                int(insured[j]),
                int(cod[j]),
                bool(door[j]),
                bool(receipt[j]),
                created_s[j],
                promised_s[j],
                delivered_s[j],
                bool(damaged[j]),
                bool(lost[j]),
            )
        )
    w.rows(
        "shipment",
        [
            "id",
            "kind",
            "waybill_no",
            "customer_id",
            "service_type",
            "status",
            "receiver_name",
            "receiver_phone_enc",
            "receiver_phone_bidx",
            "origin_province",
            "origin_city",
            "dest_province",
            "dest_city",
            "dest_district",
            "weight_g",
            "fee_fen",
            "insured_value_fen",
            "cod_amount_fen",
            "door_delivery",
            "signed_receipt_return",
            "created_at",
            "promised_at",
            "delivered_at",
            "is_damaged",
            "is_lost",
        ],
        rows,
    )

    # Timelines only for the last 30 days: older ones are summarised by the shipment row.
    recent = np.nonzero(created >= now64 - np.timedelta64(30, "D"))[0]
    event_rows: list[tuple[int, Any, str, str | None]] = []
    steps = [("created", 0), ("picked_up", 1), ("in_transit", 6)]
    for j in recent.tolist():
        sj = int(sid[j])
        base = created[j]
        for name, hours in steps:
            at = base + np.timedelta64(hours, "h")
            if at <= now64:
                event_rows.append(
                    (
                        sj,
                        at,
                        name,
                        areas[int(owner[j])].city if name != "in_transit" else "转运中心",
                    )
                )
        if arrived[j]:
            event_rows.append(
                (
                    sj,
                    delivered[j] - np.timedelta64(3, "h"),
                    "out_for_delivery",
                    all_areas[int(dest_idx[j])].city,
                )
            )
            event_rows.append((sj, delivered[j], statuses[j], all_areas[int(dest_idx[j])].city))
        elif lost[j]:
            event_rows.append((sj, min(base + np.timedelta64(48, "h"), now64), "lost", None))
    if event_rows:
        times = _fmt_times(np.array([e[1] for e in event_rows], dtype="datetime64[us]"), d)
        w.rows(
            "shipment_event",
            ["shipment_id", "occurred_at", "status", "location", "note"],
            [(e[0], t, e[2], e[3], None) for e, t in zip(event_rows, times, strict=True)],
        )
    return total, len(event_rows)
