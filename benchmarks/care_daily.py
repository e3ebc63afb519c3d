"""The daily care run for a million customers (issue #6: <= 30 s), beside a bare insert of
the same number of outbox rows measured in the same run.

    python benchmarks/care_daily.py                       # 1,000,000 customers, SQLite
    python benchmarks/care_daily.py --customers 100000
    python benchmarks/care_daily.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/bench

The worst day: National Day (1 October), a festival greeting to every consenting
customer, plus the day's birthdays with the birthday rule. Customers are bulk-generated
once per size (SQLite under /tmp, or a fresh PostgreSQL database): 90 % with a mobile,
40 % with an e-mail address, 80 % consenting to marketing SMS and 50 % to e-mail,
birthdays spread over the year, five regions, four in five individuals.

Timed, median of ``--repeat`` runs, each from a clean outbox:

* **care**: ``guanxi.care.run.run_day`` for the day — both rules planned with set-based
  SQL (audience, contact points, consent, caps), every message rendered in its language
  and queued through ``notify.outbox.queue_bulk`` (on PostgreSQL a binary COPY fed while
  the messages are rendered), the run rows and audit written;
* **bare**: one ``executemany`` of as many rows (same columns, same sizes) into a copy of
  the outbox table with no index beyond its key — the least it costs to write them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))  # on this checkout's code
from sqlalchemy import inspect, text

from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

DAY = date(2026, 10, 1)
TARGET_SECONDS = 30.0
REGIONS = ["浙江省", "江苏省", "广东省", "上海市", "北京市"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


def _rows(customers: int, seed: int) -> tuple[list[tuple[Any, ...]], ...]:
    """Customers, phones, consents (as tuples in column order)."""
    rng = random.Random(seed)
    created = datetime(2024, 1, 1, tzinfo=UTC).replace(tzinfo=None).isoformat(sep=" ")
    people, phones, consents = [], [], []
    for cid in range(1, customers + 1):
        individual = rng.random() < 0.8
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
            if individual
            else f"{rng.choice(REGIONS)[:2]}{cid}物流有限公司"
        )
        born = date(1960 + rng.randrange(45), 1, 1).toordinal() + rng.randrange(365)
        email = f"enc-email-{cid}" if rng.random() < 0.4 else None
        people.append(
            (
                cid,
                "individual" if individual else "enterprise",
                name,
                email,
                "other",
                rng.choice(REGIONS),
                date.fromordinal(born).isoformat() if individual else None,
                "active",
                "active",
                "en" if rng.random() < 0.03 else None,
                created,
                created,
                1,
            )
        )
        if rng.random() < 0.9:
            phones.append(
                (cid, 0, "mobile", f"enc-phone-{cid}", f"bidx{cid}", f"{cid % 10000:04d}")
            )
        if rng.random() < 0.8:
            consents.append((cid, "marketing_sms", True, "demo", created))
        if rng.random() < 0.5:
            consents.append((cid, "marketing_email", True, "demo", created))
    return people, phones, consents


CUSTOMER_COLUMNS = (
    "id, kind, name, email_enc, source, region, birthday, lifecycle_stage, status, language, "
    "created_at, updated_at, version"
)
PHONE_COLUMNS = "customer_id, position, kind, phone_enc, phone_bidx, last4"
CONSENT_COLUMNS = "customer_id, purpose, granted, source, updated_at"


def filled(url: str, customers: int) -> bool:
    """Whether the database already holds the generated customers."""
    engine = make_engine(url, sqlite_mmap_bytes=0)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("customer"):
                return False
            return conn.execute(text("SELECT count(*) FROM customer")).scalar() == customers
    finally:
        engine.dispose()


def build(url: str, customers: int, seed: int) -> None:
    """Bulk-generate the customers into a freshly migrated database."""
    engine = make_engine(url, sqlite_mmap_bytes=0)
    upgrade(engine)
    started = time.perf_counter()
    people, phones, consents = _rows(customers, seed)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if engine.dialect.name == "postgresql":
            cur = raw.cursor()
            for table, columns, rows in (
                ("customer", CUSTOMER_COLUMNS, people),
                ("customer_phone", PHONE_COLUMNS, phones),
                ("customer_consent", CONSENT_COLUMNS, consents),
            ):
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
            cur.execute("SELECT setval(pg_get_serial_sequence('customer', 'id'), %s)", (customers,))
        else:
            for table, columns, rows in (
                ("customer", CUSTOMER_COLUMNS, people),
                ("customer_phone", PHONE_COLUMNS, phones),
                ("customer_consent", CONSENT_COLUMNS, consents),
            ):
                marks = ", ".join("?" * (columns.count(",") + 1))
                conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # type: ignore[arg-type]
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    print(f"generated {customers:,} customers in {time.perf_counter() - started:.0f}s")  # noqa: T201


def rules(session: Any) -> list[int]:
    """The National Day greeting and the birthday greeting, switched on."""
    from sqlalchemy import select

    from guanxi.audit.service import Actor
    from guanxi.care import service
    from guanxi.care.models import CareRule
    from guanxi.care.schemas import CareRuleIn
    from guanxi.security.models import User
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    existing = list(session.scalars(select(CareRule.id).where(CareRule.name.like("bench %"))))
    if existing:
        return existing
    admin = session.scalar(select(User).where(User.username == "benchadmin")) or create_user(
        session,
        user_in=UserCreate(
            username="benchadmin",
            display_name="bench",
            role="admin",
            password="bench password 1",  # noqa: S106 - a throw-away benchmark database
        ),  # type: ignore[arg-type]
        actor=Actor.system("bench"),
    )
    ids = []
    for body in (
        {
            "name": "bench national day",
            "kind": "festival",
            "festivals": ["national_day"],
            "sms_template": "care_greeting",
            "subject_zh": "{{ company }}祝您国庆快乐",
            "body_zh": "{{ name }}，{{ company }}祝您{{ festival }}快乐！假期寄件，我们照常为您服务。",
            "subject_en": "Happy {{ festival }}",
            "body_en": "Happy {{ festival }}, {{ name }}! Best wishes from {{ company }}.",
            "priority": 60,
        },
        {
            "name": "bench birthday",
            "kind": "birthday",
            "sms_template": "care_birthday",
            "subject_zh": "{{ name }}，生日快乐",
            "body_zh": "{{ name }}，{{ company }}祝您生日快乐，万事如意！",
            "priority": 80,
        },
    ):
        rule = service.create_rule(session, rule_in=CareRuleIn.model_validate(body), actor=admin)
        service.set_enabled(session, rule_id=rule.id, enabled=True, actor=admin)
        ids.append(rule.id)
    return ids


def clean(engine: Any) -> None:
    """Forget the previous repetition's messages and runs.

    On PostgreSQL the deleted rows are vacuumed away at once: otherwise the next run meets
    a dead index entry of the very same key for each of its rows, and autovacuum cleaning
    up the previous repetition while the run inserts — what an outbox of real days, with
    new keys every day, never has.
    """
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox_message WHERE source LIKE 'care:%'"))
        conn.exec_driver_sql("DELETE FROM care_run")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) outbox_message")


def care(engine: Any) -> tuple[float, int]:
    """One daily run of the festival day; seconds and messages queued."""
    from guanxi.care.run import run_day

    now = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    with make_sessionmaker(engine)() as session:
        started = time.perf_counter()
        result = run_day(session, day=DAY, now=now, timezone="Asia/Shanghai", language="zh_CN")
        seconds = time.perf_counter() - started
    return seconds, sum(o.figures.get("queued", 0) for o in result.outcomes)


def bare(engine: Any, count: int) -> float:
    """``executemany`` of ``count`` outbox-shaped rows into an index-free copy."""
    body = "王伟，关系速递祝您国庆节快乐！假期寄件，我们照常为您服务。"
    now = datetime(2026, 10, 1, 1, 0, tzinfo=UTC).replace(tzinfo=None).isoformat(sep=" ")
    rows = [
        (f"care:1:2026-10-01:{i}", "sms", "marketing", i, "care_greeting",
         '{"company": "关系速递", "festival": "国庆节", "name": "王伟"}', "", body,
         "care:1:festival", now, now, "pending", 0, "unknown")
        for i in range(1, count + 1)
    ]  # fmt: skip
    columns = (
        "key, channel, category, customer_id, template, params, subject, body, source, "
        "next_attempt_at, created_at, status, attempts, delivery"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_outbox")
        conn.exec_driver_sql(
            "CREATE TABLE bench_outbox (id INTEGER PRIMARY KEY, key VARCHAR(120) UNIQUE, "
            "channel VARCHAR(10), category VARCHAR(16), customer_id INTEGER, template VARCHAR(40), "
            "params TEXT, subject VARCHAR(200), body TEXT, source VARCHAR(120), "
            "next_attempt_at TIMESTAMP, created_at TIMESTAMP, status VARCHAR(10), "
            "attempts INTEGER, delivery VARCHAR(12))"
            if engine.dialect.name == "sqlite"
            else "CREATE TABLE bench_outbox (id SERIAL PRIMARY KEY, key VARCHAR(120) UNIQUE, "
            "channel VARCHAR(10), category VARCHAR(16), customer_id INTEGER, template VARCHAR(40), "
            "params TEXT, subject VARCHAR(200), body TEXT, source VARCHAR(120), "
            "next_attempt_at TIMESTAMP, created_at TIMESTAMP, status VARCHAR(10), "
            "attempts INTEGER, delivery VARCHAR(12))"
        )
    marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * 14)
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.executemany(f"INSERT INTO bench_outbox ({columns}) VALUES ({marks})", rows)  # noqa: S608
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE bench_outbox")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--pg", help="a PostgreSQL URL of an empty database to fill")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / f"guanxi-care-{args.customers}"
    folder.mkdir(exist_ok=True)
    db = folder / "care.db"
    settings = bench_settings(db)
    os.environ["GUANXI_DATA_DIR"] = str(settings.data_dir)
    domains.load()
    crypto.configure(settings)
    url = args.pg or settings.database_url
    if not filled(url, args.customers):
        build(url, args.customers, args.seed)
    engine = make_engine(url, sqlite_mmap_bytes=0)
    with make_sessionmaker(engine)() as session:
        rules(session)
    cares, bares, queued = [], [], 0
    for _ in range(args.repeat):
        clean(engine)
        seconds, queued = care(engine)
        cares.append(seconds)
        bares.append(bare(engine, queued))
    clean(engine)
    engine.dispose()
    median, baseline = statistics.median(cares), statistics.median(bares)
    backend = "postgresql" if args.pg else "sqlite"
    print(  # noqa: T201
        f"care daily run, {args.customers:,} customers, {backend}: {queued:,} messages queued\n"
        f"  care run  median {median:6.1f} s  ({queued / median:,.0f} messages/s)  "
        f"runs: {', '.join(f'{s:.1f}' for s in cares)}\n"
        f"  bare insert median {baseline:6.1f} s  ({queued / baseline:,.0f} rows/s)\n"
        f"  ratio {median / baseline:.1f}x; target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if median <= TARGET_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
