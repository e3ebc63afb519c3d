"""Customer search latency on a demo database (target: p95 <= 50 ms at 1,000,000 customers;
growth from 100k to 1M at most 2x).

    python benchmarks/search.py --customers 100000 --db /tmp/guanxi-100k.db
    python benchmarks/search.py --customers 1000000 --db /tmp/guanxi-1m.db

Each query goes through the real service function (``customers.queries.list_customers``:
SQL, decryption of the page's phones, ORM loading). Baseline in the same run: a primary-key
fetch of one customer with the raw sqlite3 driver.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import ensure_demo_db, summary_ms
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.customers.queries import CustomerFilters, list_customers
from guanxi.security.crypto import cipher
from guanxi.security.models import User
from guanxi.shipments.models import Shipment


def build_queries(session: Session, rng: random.Random, per_class: int) -> dict[str, list[str]]:
    """Realistic query strings drawn from the data itself."""
    max_id = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1)) or 1
    ids = [rng.randint(1, max_id) for _ in range(per_class * 4)]
    people = list(
        session.scalars(
            select(Customer.name).where(Customer.id.in_(ids), Customer.kind == "individual")
        )
    )
    companies = list(
        session.scalars(
            select(Customer.name).where(Customer.id.in_(ids), Customer.kind != "individual")
        )
    )
    phones = list(
        session.scalars(select(CustomerPhone.phone_enc).where(CustomerPhone.customer_id.in_(ids)))
    )
    codes = list(
        session.scalars(
            select(Customer.credit_code_enc).where(
                Customer.id.in_(ids), Customer.credit_code_enc.is_not(None)
            )
        )
    )
    max_ship = session.scalar(select(Shipment.id).order_by(Shipment.id.desc()).limit(1)) or 1
    waybills = list(
        session.scalars(
            select(Shipment.waybill_no).where(
                Shipment.id.in_([rng.randint(1, max_ship) for _ in range(per_class)])
            )
        )
    )

    def fmt_phone(e164: str) -> str:
        d = e164[3:]
        return (
            rng.choice([d, f"+86 {d[:3]}-{d[3:7]}-{d[7:]}", f"{d[:3]} {d[3:7]} {d[7:]}"])
            if len(d) == 11
            else d
        )

    def fragment(name: str) -> str:
        core = name.replace("有限公司", "").replace("有限责任公司", "")
        if len(core) <= 2:
            return core
        start = rng.randint(0, max(0, len(core) - 3))
        return core[start : start + rng.choice([2, 3])]

    return {
        "2-char person name": [p[:2] for p in rng.sample(people, min(per_class, len(people)))],
        "company fragment": [
            fragment(c) for c in rng.sample(companies, min(per_class, len(companies)))
        ],
        "phone (any format)": [fmt_phone(cipher().decrypt("phone", p)) for p in phones[:per_class]],
        "credit code": [cipher().decrypt("credit_code", c) for c in codes[:per_class]],
        "waybill number": waybills[:per_class],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    db_path = args.db or Path(f"/tmp/guanxi-bench-{args.customers}.db")
    settings = ensure_demo_db(db_path, args.customers)
    engine = make_engine(settings.database_url)
    rng = random.Random(args.seed)
    with make_sessionmaker(engine)() as session:
        viewer = session.scalar(select(User).where(User.username == "agent"))
        assert viewer is not None, "demo users missing"
        total = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
        queries = build_queries(session, rng, args.per_class)
        session.rollback()
        # Warm-up: the first queries fault pages into the cache, as on a server that runs.
        for qs in queries.values():
            for q in qs[:10]:
                list_customers(session, filters=CustomerFilters(q=q), viewer=viewer, limit=20)
        results = {}
        all_times: list[float] = []
        empty = 0
        for label, qs in queries.items():
            times = []
            for q in qs:
                session.expunge_all()
                t0 = time.perf_counter()
                rows, _ = list_customers(
                    session, filters=CustomerFilters(q=q), viewer=viewer, limit=20
                )
                times.append(time.perf_counter() - t0)
                session.rollback()
                empty += not rows
            results[label] = summary_ms(times)
            all_times += times

    raw = sqlite3.connect(str(db_path))
    base = []
    for _ in range(1000):
        cid = rng.randint(1, total or 1)
        t0 = time.perf_counter()
        raw.execute("SELECT * FROM customer WHERE id = ?", (cid,)).fetchall()
        base.append(time.perf_counter() - t0)
    raw.close()

    print(f"customers: {total:,}   queries: {len(all_times)}   with no result: {empty}")
    print(f"{'query class':<22}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for label, s in results.items():
        print(f"{label:<22}{s['n']:>6}{s['p50']:>10.2f}{s['p95']:>10.2f}{s['max']:>10.2f}")
    overall = summary_ms(all_times)
    b = summary_ms(base)
    print(
        f"{'ALL':<22}{overall['n']:>6}{overall['p50']:>10.2f}{overall['p95']:>10.2f}{overall['max']:>10.2f}"
    )
    print(
        f"{'baseline: raw PK fetch':<22}{b['n']:>6}{b['p50']:>10.3f}{b['p95']:>10.3f}{b['max']:>10.3f}"
    )
    print(
        f"target p95 <= 50 ms: {'MET' if overall['p95'] <= 50 else 'NOT MET'} ({overall['p95']:.1f} ms)"
    )


if __name__ == "__main__":
    main()
