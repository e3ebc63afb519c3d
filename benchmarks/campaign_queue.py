"""Launching a campaign to 500,000 recipients (issue #7: queueing >= 20,000 messages/s into
the outbox), beside the same run's baseline of the outbox's own bulk queue.

    python benchmarks/campaign_queue.py                  # 500,000 recipients on SQLite
    python benchmarks/campaign_queue.py --pg postgresql+psycopg://postgres@127.0.0.1:55432/bench

What is timed, alternating, median of ``--repeat`` runs, each with an empty outbox:

* **launch**: ``campaigns.launch.launch`` of an SMS campaign (no control group, one
  variant with the customer's name and the tracked link) to an audience of N customers:
  the claim, the snapshot (members read, frequency caps read, the seeded split, N
  recipient rows with their link codes), the rendering of N messages and their queueing
  through notify's ``queue_bulk`` in 50,000-message transactions, commits included.
  ``queue`` is the part spent inside ``queue_bulk`` (rendering included: the items are
  rendered while they are written).
* **baseline**: ``queue_bulk`` of N prepared ``(key, customer, params, subject, body)``
  items of the same shape in one transaction (what outbox_queue.py calls "bulk").

Target (issue #7): >= 20,000 messages/s into the outbox.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # on this checkout's code
from sqlalchemy import Engine, text

from guanxi import domains
from guanxi.config import Environment, Settings
from guanxi.core import clock
from guanxi.core.db import make_engine, make_sessionmaker, write_transaction
from guanxi.core.migrate import upgrade
from guanxi.notify.outbox import BulkItem, Category, Channel, queue_bulk
from guanxi.security import crypto

# Noon in Shanghai: outside the quiet hours, so every message is due at once.
NOON = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
TEMPLATE = "campaign_offer"


def _engine(args: argparse.Namespace, scratch: Path) -> Engine:
    settings = Settings(
        env=Environment.development,
        database_url=args.pg or f"sqlite:///{scratch / 'campaign.db'}",
        data_dir=scratch / "keys",
    )
    crypto.configure(settings)
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    upgrade(engine)
    return engine


def _customers(engine: Engine, count: int) -> list[int]:
    """``count`` active customers in one region (the audience)."""
    with engine.begin() as conn:
        have = conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one()
        if have < count:
            now = datetime.now(UTC)
            conn.execute(
                text(
                    "INSERT INTO customer (kind, name, source, lifecycle_stage, status, region, "
                    "created_at, updated_at, version) VALUES "
                    "('individual', :name, 'other', 'active', 'active', '浙江省', :at, :at, 1)"
                ),
                [{"name": f"客户{i}", "at": now} for i in range(count - have)],
            )
        return [int(i) for i in conn.execute(text("SELECT id FROM customer ORDER BY id")).scalars()]


def _setup(engine: Engine) -> tuple[Any, int]:
    """The bench user, the SMS template and the audience."""
    from guanxi.audit.service import Actor
    from guanxi.campaigns.audiences import save_audience
    from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn
    from guanxi.demo.campaigns import ensure_sms_template
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    with make_sessionmaker(engine)() as session:
        user = create_user(
            session,
            user_in=UserCreate(
                username="bench",
                display_name="bench",
                role="admin",
                password=secrets.token_urlsafe(16),
            ),
            actor=Actor.system("bench"),
        )
        ensure_sms_template(session, user)
        audience = save_audience(
            session,
            audience_in=AudienceIn(
                name="基准客群", definition=AudienceDefinition(regions=["浙江省"])
            ),
            actor=user,
        )
        return user, audience.id


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox_message"))
        conn.execute(text("DELETE FROM campaign_recipient"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) outbox_message")
            conn.exec_driver_sql("VACUUM (ANALYZE) campaign_recipient")


def run_launch(engine: Engine, user: Any, audience_id: int, n: int) -> tuple[float, float]:
    """(whole launch, inside queue_bulk) seconds."""
    from guanxi.campaigns import launch as launching
    from guanxi.campaigns import service
    from guanxi.campaigns.schemas import CampaignIn

    sessions = make_sessionmaker(engine)
    with sessions() as session:
        campaign = service.create_campaign(
            session,
            campaign_in=CampaignIn(
                name=f"基准活动{time.time_ns()}",
                audience_id=audience_id,
                channel="sms",
                target_url="https://example.com/promo",
                control_pct=0,
                variants=[
                    {
                        "code": "A",
                        "sms_template": TEMPLATE,
                        "body_zh": "{name}您好，寄件8折：{link}",
                    }
                ],
            ),
            actor=user,
        )
        cid = campaign.id
    spent = [0.0]
    real = launching.queue_bulk

    def timed(*a: Any, **kw: Any) -> int:
        started = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - started

    launching.queue_bulk = timed  # type: ignore[assignment]
    try:
        with clock.frozen(NOON), sessions() as session:
            started = time.perf_counter()
            result = launching.launch(session, campaign_id=cid, now=NOON)
            elapsed = time.perf_counter() - started
    finally:
        launching.queue_bulk = real
    assert result.queued == n, (result.queued, n)
    return elapsed, spent[0]


def run_baseline(engine: Engine, ids: list[int], run: int) -> float:
    items: list[BulkItem] = [
        (
            f"campaign:bench{run}:{cid}",
            cid,
            {
                "name": f"客户{cid}",
                "company": "关系速递",
                "link": f"https://g.example/c/{cid:016d}",
            },
            "",
            f"客户{cid}您好，寄件8折：https://g.example/c/{cid:016d}",
        )
        for cid in ids
    ]
    sessions = make_sessionmaker(engine)
    started = time.perf_counter()
    with clock.frozen(NOON), sessions() as session, write_transaction(session):
        added = queue_bulk(
            session,
            items,
            channel=Channel.sms,
            category=Category.marketing,
            template=TEMPLATE,
            source=f"campaign:bench{run}",
            now=NOON,
        )
    elapsed = time.perf_counter() - started
    assert added == len(ids), added
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--recipients", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", help="a PostgreSQL URL (an empty scratch database)")
    args = parser.parse_args()
    domains.load()
    with tempfile.TemporaryDirectory(prefix="campaign-bench-") as tmp:
        engine = _engine(args, Path(tmp))
        ids = _customers(engine, args.recipients)
        n = len(ids)
        user, audience_id = _setup(engine)
        print(f"{engine.dialect.name}: a campaign to {n:,} recipients (SMS, no control group)")
        launches: list[float] = []
        queues: list[float] = []
        bases: list[float] = []
        for run in range(args.repeat):
            _empty(engine)
            whole, queue = run_launch(engine, user, audience_id, n)
            launches.append(whole)
            queues.append(queue)
            _empty(engine)
            bases.append(run_baseline(engine, ids, run))
            print(
                f"  run {run + 1}: launch {n / whole:,.0f}/s ({whole:.2f} s; queue "
                f"{n / queue:,.0f}/s), baseline queue_bulk {n / bases[-1]:,.0f}/s"
            )
        _empty(engine)
        engine.dispose()
    w, q, b = statistics.median(launches), statistics.median(queues), statistics.median(bases)
    print(
        f"median: launch {n / w:,.0f} recipients/s ({w:.2f} s), of which queueing "
        f"{n / q:,.0f} messages/s ({q:.2f} s); baseline queue_bulk {n / b:,.0f} messages/s "
        f"({b:.2f} s); launch takes {w / b:.2f}x the baseline time"
    )
    rate = n / w
    print(f"target >= 20,000 messages/s (whole launch): {'met' if rate >= 20_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
