"""Counting an audience of a million customers (issue #7: 5 filters, p95 <= 500 ms), beside
the same run's baselines: the same count written by hand as one bare SQL statement, and
the count of one filter alone.

    python benchmarks/audience_count.py                       # 1,000,000 customers, SQLite
    python benchmarks/audience_count.py --customers 100000
    python benchmarks/audience_count.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/bench

The database is bulk-generated once per size (SQLite under /tmp, or a fresh PostgreSQL
database), migrated up to the audiences' revision: customers of three kinds in ten
regions, 2 % archived, 30 % owned by one of five salespeople; 30 % tagged; 80 % with a
marketing-SMS consent, 50 % e-mail; 60 % loyalty members in four tiers; one analytics run
with every active customer's RFM class, CLV and churn band; about 2.5 shipments a
customer over two years.

Timed (``--repeat`` counts each, median and p95 of the wall-clock time; on SQLite also of
this process's CPU time, which other work on the machine does not inflate):

* **audience**: ``campaigns.audiences.count_members`` of the issue's typical audience —
  individual customers in two regions, with marketing-SMS consent, in three RFM segments,
  silver or gold members (5 filters) — the newest-run look-ups included;
* **bare**: the same count hand-written as one SQL statement, joined as ``count_members``
  joins (and again with ``IN (subquery)`` lists, the obvious way to write it);
* **one filter**: ``count_members`` of the region filter alone;
* **heavy**: 8 filters, adding churn band, a CLV floor and a shipment in the last 90 days.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))  # on this checkout's code
from sqlalchemy import inspect, text

from benchmarks._common import bench_settings, percentile
from guanxi import domains
from guanxi.core.db import Base, make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

TARGET_MS = 500.0
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
REGIONS = [
    "广东省", "浙江省", "江苏省", "山东省", "四川省", "河南省", "福建省", "湖北省", "上海市", "北京市",
]  # fmt: skip
SOURCES = ["website", "app", "wechat", "outlet", "ecommerce", "referral", "hotline", "other"]
STAGES = ["prospect", "new", "active", "dormant", "churned"]
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
SEGMENTS = [
    "champions", "loyal", "potential_loyalist", "new", "at_risk", "cant_lose", "hibernating",
    "lost",
]  # fmt: skip
TIERS = [("member", 0.55), ("silver", 0.25), ("gold", 0.15), ("diamond", 0.05)]
BANDS = ["low", "medium", "high"]

AUDIENCE = {
    "kinds": ["individual"],
    "regions": ["浙江省", "江苏省"],
    "consents": ["marketing_sms"],
    "segments": ["at_risk", "cant_lose", "hibernating"],
    "tiers": ["silver", "gold"],
}
HEAVY = {
    **AUDIENCE,
    "churn_bands": ["medium", "high"],
    "clv_min_fen": 10_000,
    "shipped_within_days": 90,
}
# The same 5 filters by hand, twice: as the joins count_members builds (each customer's
# analytics class, membership and consent looked up by key), and as plain IN lists.
BARE_SQL = """
SELECT count(*) FROM customer AS c
JOIN analytics_customer_class AS k ON k.run_id = :run AND k.customer_id = c.id
JOIN loyalty_member AS m ON m.customer_id = c.id
JOIN customer_consent AS s ON s.customer_id = c.id AND s.purpose = 'marketing_sms'
WHERE c.status = 'active' AND c.kind = 'individual' AND c.region IN ('浙江省', '江苏省')
  AND k.segment IN ('at_risk', 'cant_lose', 'hibernating') AND m.tier IN ('silver', 'gold')
  AND s.granted = :yes
"""
BARE_IN_SQL = """
SELECT count(*) FROM customer AS c
WHERE c.status = 'active' AND c.kind = 'individual' AND c.region IN ('浙江省', '江苏省')
  AND c.id IN (SELECT customer_id FROM customer_consent
               WHERE purpose = 'marketing_sms' AND granted = :yes)
  AND c.id IN (SELECT customer_id FROM analytics_customer_class
               WHERE run_id = :run AND segment IN ('at_risk', 'cant_lose', 'hibernating'))
  AND c.id IN (SELECT customer_id FROM loyalty_member WHERE tier IN ('silver', 'gold'))
"""


def _stamp(moment: datetime, sqlite: bool) -> Any:
    """A UTC moment as the column stores it (SQLite: text that sorts)."""
    return (
        moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        if sqlite
        else moment
    )


def _rows(
    customers: int, seed: int, owners: list[int], sqlite: bool
) -> dict[str, list[dict[str, Any]]]:
    """Every generated row by table (dicts of column values)."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {
        t: []
        for t in (
            "customer", "tag", "customer_tag", "customer_consent", "loyalty_member",
            "analytics_run", "analytics_step", "analytics_customer_class",
            "analytics_customer_clv", "analytics_customer_churn", "shipment",
        )
    }  # fmt: skip
    stamp = lambda m: _stamp(m, sqlite)  # noqa: E731
    created = stamp(datetime(2024, 1, 1, tzinfo=UTC))
    yes: Any = 1 if sqlite else True
    out["tag"] = [{"id": i + 1, "name": name} for i, name in enumerate(TAGS)]
    out["analytics_run"] = [
        {"id": 1, "started_at": stamp(NOW), "finished_at": stamp(NOW), "as_of": stamp(NOW),
         "status": "succeeded", "trigger": "cli", "requested": ""}
    ]  # fmt: skip
    out["analytics_step"] = [
        {"run_id": 1, "step": step, "status": "succeeded", "input_key": "",
         "started_at": stamp(NOW), "rows": customers, "seconds": 0.0, "metrics": "{}"}
        for step in ("rfm", "clv", "churn")
    ]  # fmt: skip
    waybill = 0
    for cid in range(1, customers + 1):
        roll = rng.random()
        kind = "individual" if roll < 0.8 else "enterprise" if roll < 0.97 else "government"
        active = rng.random() >= 0.02
        out["customer"].append(
            {"id": cid, "kind": kind, "name": f"客户{cid}", "source": rng.choice(SOURCES),
             "industry": None if kind == "individual" else rng.choice(["电商", "制造", "医药"]),
             "region": rng.choice(REGIONS),
             "owner_id": rng.choice(owners) if rng.random() < 0.3 else None,
             "language": "en" if rng.random() < 0.03 else None,
             "lifecycle_stage": rng.choice(STAGES), "status": "active" if active else "archived",
             "created_at": created, "updated_at": created, "version": 1}
        )  # fmt: skip
        if rng.random() < 0.3:
            for tag in rng.sample(range(1, len(TAGS) + 1), rng.choice((1, 1, 2))):
                out["customer_tag"].append({"customer_id": cid, "tag_id": tag})
        for purpose, share in (("marketing_sms", 0.8), ("marketing_email", 0.5)):
            if rng.random() < share:
                out["customer_consent"].append(
                    {"customer_id": cid, "purpose": purpose, "granted": yes, "source": "demo",
                     "updated_at": created}
                )  # fmt: skip
        shipments = rng.choice((0, 0, 1, 2, 3, 4, 5, 6))
        last = None
        for _ in range(shipments):
            waybill += 1
            at = NOW - timedelta(minutes=rng.randrange(730 * 24 * 60))
            last = at if last is None or at > last else last
            out["shipment"].append(
                {"waybill_no": f"BA{waybill:010d}", "customer_id": cid, "status": "delivered",
                 "fee_fen": rng.randrange(800, 5000), "created_at": stamp(at)}
            )  # fmt: skip
        if rng.random() < 0.6:
            tier = rng.choices([t for t, _ in TIERS], [w for _, w in TIERS])[0]
            points = rng.randrange(0, 20_000)
            out["loyalty_member"].append(
                {"customer_id": cid, "tier": tier, "tier_since": created, "joined_at": created,
                 "balance": points, "lifetime_points": points}
            )  # fmt: skip
        if not active:
            continue
        segment = "prospect" if last is None else rng.choice(SEGMENTS)
        out["analytics_customer_class"].append(
            {"run_id": 1, "customer_id": cid,
             "last_shipment_at": None if last is None else stamp(last),
             "recency_days": None if last is None else (NOW - last).days,
             "frequency": shipments, "monetary_fen": shipments * 2000, "r": 3, "f": 3, "m": 3,
             "segment": segment, "frequency_class": rng.choice(BANDS),
             "value_tier": rng.choice(BANDS), "relationship": "potential"}
        )  # fmt: skip
        clv = rng.randrange(0, 200_000)
        out["analytics_customer_clv"].append(
            {"run_id": 1, "customer_id": cid, "frequency": 1.0, "recency": 1.0, "age": 1.0,
             "p_alive": 0.5, "expected_purchases": 1.0, "expected_spend_fen": clv, "clv_fen": clv}
        )  # fmt: skip
        out["analytics_customer_churn"].append(
            {"run_id": 1, "customer_id": cid, "risk": rng.random(), "band": rng.choice(BANDS),
             "reasons": "[]"}
        )  # fmt: skip
    return out


def _tuples(
    table: str, rows: Iterable[dict[str, Any]], sqlite: bool
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows of ``table`` as tuples of every column given or with a plain default."""
    columns = Base.metadata.tables[table].columns
    given = list(next(iter(rows), {}).keys()) if isinstance(rows, list) else []
    names = [c.name for c in columns if c.name in given or (
        not c.nullable and c.default is not None and not callable(c.default.arg))]  # fmt: skip
    defaults = {
        c.name: (
            int(c.default.arg) if sqlite and isinstance(c.default.arg, bool) else c.default.arg
        )
        for c in columns
        if c.name in names and c.name not in given and c.default is not None
    }
    return names, [tuple(r.get(n, defaults.get(n)) for n in names) for r in rows]


def owners_of(session: Any) -> list[int]:
    """Five salespeople (created once)."""
    from sqlalchemy import select

    from guanxi.audit.service import Actor
    from guanxi.security.models import User
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    ids = list(session.scalars(select(User.id).where(User.username.like("benchsales%"))))
    for n in range(len(ids), 5):
        user = create_user(
            session,
            user_in=UserCreate(
                username=f"benchsales{n}",
                display_name=f"销售{n}",
                role="sales",
                password="bench password 1",  # noqa: S106 - a throw-away benchmark database
            ),  # type: ignore[arg-type]
            actor=Actor.system("bench"),
        )
        ids.append(user.id)
    return ids


def filled(url: str, customers: int) -> bool:
    """Whether the database already holds the generated customers and analytics."""
    engine = make_engine(url, sqlite_mmap_bytes=0)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("campaign_audience"):
                return False
            return (
                conn.execute(text("SELECT count(*) FROM customer")).scalar() == customers
                and conn.execute(text("SELECT count(*) FROM analytics_step")).scalar() == 3
            )
    finally:
        engine.dispose()


def build(url: str, customers: int, seed: int) -> None:
    """Bulk-generate the data into a freshly migrated database (up to the audiences)."""
    engine = make_engine(url, sqlite_mmap_bytes=0)
    upgrade(engine, "0019")
    sqlite = engine.dialect.name == "sqlite"
    with make_sessionmaker(engine)() as session:
        owners = owners_of(session)
        session.commit()
    started = time.perf_counter()
    tables = _rows(customers, seed, owners, sqlite)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        for table, rows in tables.items():
            names, values = _tuples(table, rows, sqlite)
            if not values:
                continue
            columns = ", ".join(names)
            if sqlite:
                marks = ", ".join("?" * len(names))
                cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)  # noqa: S608
            else:
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in values:
                        copy.write_row(row)
        if not sqlite:
            for table in ("customer", "tag", "analytics_run", "analytics_step", "shipment"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    print(  # noqa: T201
        f"generated {customers:,} customers, {len(tables['shipment']):,} shipments "
        f"in {time.perf_counter() - started:.0f}s"
    )


def timed(fn: Callable[[], int], repeat: int) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU seconds of this process for each of ``repeat`` calls (after one
    warm-up), and the count. On SQLite the query runs in this process, so its CPU time is
    the count's cost even when other work shares the machine's cores."""
    count = fn()
    seconds, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return seconds, cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--pg", help="a PostgreSQL URL of an empty database to fill")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / f"guanxi-audience-{args.customers}"
    folder.mkdir(exist_ok=True)
    db = folder / "audience.db"
    settings = bench_settings(db)
    os.environ["GUANXI_DATA_DIR"] = str(settings.data_dir)
    domains.load()
    crypto.configure(settings)
    url = args.pg or settings.database_url
    if not filled(url, args.customers):
        build(url, args.customers, args.seed)

    from guanxi.campaigns.audiences import count_members
    from guanxi.campaigns.schemas import AudienceDefinition
    from guanxi.core import clock

    engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    audience = AudienceDefinition.model_validate(AUDIENCE)
    heavy = AudienceDefinition.model_validate(HEAVY)
    one = AudienceDefinition(regions=AUDIENCE["regions"])
    results: dict[str, tuple[list[float], list[float], int]] = {}
    with make_sessionmaker(engine)() as session, clock.frozen(NOW):

        def bare(sql: str) -> Callable[[], int]:
            params = {"run": 1, "yes": 1 if sqlite else True}
            return lambda: int(session.execute(text(sql), params).scalar_one())

        for name, fn in (
            ("audience (5 filters)", lambda: count_members(session, audience)),
            ("bare SQL (same 5)", bare(BARE_SQL)),
            ("bare SQL, IN lists", bare(BARE_IN_SQL)),
            ("one filter (region)", lambda: count_members(session, one)),
            ("heavy (8 filters)", lambda: count_members(session, heavy)),
        ):
            results[name] = timed(fn, args.repeat)
            session.rollback()
    engine.dispose()
    backend = "postgresql" if args.pg else "sqlite"
    lines = [f"audience count, {args.customers:,} customers, {backend}, {args.repeat} counts each"]
    for name, (seconds, cpu, count) in results.items():
        lines.append(
            f"  {name:22s} median {statistics.median(seconds) * 1000:7.1f} ms  "
            f"p95 {percentile(seconds, 95) * 1000:7.1f} ms  ({count:,} customers)"
            + (
                f"  cpu median {statistics.median(cpu) * 1000:6.1f} ms p95 "
                f"{percentile(cpu, 95) * 1000:6.1f} ms"
                if sqlite
                else ""
            )
        )
    main_p95 = percentile(results["audience (5 filters)"][0], 95) * 1000
    ratio = statistics.median(results["audience (5 filters)"][0]) / statistics.median(
        results["bare SQL (same 5)"][0]
    )
    lines.append(
        f"  ratio to bare {ratio:.2f}x; target p95 <= {TARGET_MS:.0f} ms: "
        f"{'met' if main_p95 <= TARGET_MS else 'NOT met'}"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.append(f"  load average during the run: {load} ({os.cpu_count()} cores)")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
