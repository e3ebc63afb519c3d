"""The public survey page (issue #6): p95 of ``GET /q/{token}`` over a running app, beside
``/healthz`` on the same server in the same run.

Database: a demo database of ``--customers`` customers (``benchmarks/_common.py``, built
once as /tmp/guanxi-bench-surveys-<customers>.db) with ``--invitations`` survey invitations of the largest default survey
(after a ticket: eight questions) added in bulk, so the token lookup searches a realistic
index; ``--links`` of them, chosen at random, are the links requested.

Server: ``guanxi serve`` (uvicorn, one worker) on 127.0.0.1. Requests: one at a time over
one keep-alive connection, a survey link then ``/healthz`` in turn, after a warm-up (as a
phone opening its link: one request, small HTML, no further files); then the same with
``--threads`` connections at once (wrk-like load from this process). Each answer must be
200 and show the survey. Target: p95 <= 50 ms.

    python benchmarks/survey_page.py                      # 100,000 customers, 200,000 links
    python benchmarks/survey_page.py --customers 10000 --invitations 20000 --requests 1000
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import ensure_demo_db, percentile
from benchmarks.service_desk import running_server
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.surveys.invitations import hash_token, new_token
from guanxi.surveys.models import SurveyInvitation, SurveyTemplate
from guanxi.surveys.service import current_version

TARGET_MS = 50.0
MARK = b'id="survey-form"'


def ensure_links(database_url: str, invitations: int, links: int, seed: int) -> list[str]:
    """Add invitations up to ``invitations`` (bulk); return ``links`` fresh secrets of open
    ones (made now: only the hash of a secret is stored)."""
    engine = make_engine(database_url)
    rng = random.Random(seed)
    with make_sessionmaker(engine)() as session:
        template = session.scalar(
            select(SurveyTemplate).where(SurveyTemplate.code == "after_ticket")
        )
        assert template is not None
        version = current_version(session, template.id)
        assert version is not None
        have = int(session.scalar(select(func.count()).select_from(SurveyInvitation)) or 0)
        now = datetime.now(UTC)
        rows = []
        for n in range(have, invitations):
            rows.append(
                {
                    "key": f"bench:{n}",
                    "template_id": template.id,
                    "version_id": version.id,
                    "trigger": "manual",
                    "channel": "sms",
                    "token_hash": hash_token(new_token()),
                    "status": "open",
                    "created_at": now,
                    "expires_at": now + timedelta(days=365),
                }
            )
        for i in range(0, len(rows), 5000):
            session.execute(insert(SurveyInvitation), rows[i : i + 5000])
        # The requested links: fresh secrets for randomly chosen open invitations.
        ids = list(session.scalars(select(SurveyInvitation.id)))
        chosen = rng.sample(ids, min(links, len(ids)))
        tokens = []
        for inv_id in chosen:
            token = new_token()
            session.execute(
                SurveyInvitation.__table__.update()  # type: ignore[attr-defined]
                .where(SurveyInvitation.id == inv_id)
                .values(
                    reminder_token_hash=hash_token(token),
                    status="open",
                    expires_at=now + timedelta(days=365),
                )
            )
            tokens.append(token)
        session.commit()
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return tokens


def sequential(
    host: str, port: int, tokens: list[str], requests: int, warmup: int
) -> tuple[list[float], list[float], int]:
    """(survey page seconds, /healthz seconds, page bytes): one connection, in turn."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Accept-Language": "zh-CN"}
    page, floor, size = [], [], 0
    try:
        for i in range(warmup + requests):
            token = tokens[i % len(tokens)]
            started = time.perf_counter()
            conn.request("GET", f"/q/{token}", headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200 or MARK not in body:
                raise SystemExit(f"/q/{token}: HTTP {response.status} {body[:200]!r}")
            size = len(body)
            started = time.perf_counter()
            conn.request("GET", "/healthz")
            health = conn.getresponse()
            health.read()
            health_elapsed = time.perf_counter() - started
            if i >= warmup:
                page.append(elapsed)
                floor.append(health_elapsed)
    finally:
        conn.close()
    return page, floor, size


def concurrent(
    host: str, port: int, tokens: list[str], per_thread: int, threads: int, path: str | None
) -> tuple[list[float], float]:
    """(latencies, seconds of the whole run): ``threads`` keep-alive connections at once
    requesting survey links (or ``path``)."""
    out: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        start.wait()
        for i in range(per_thread):
            target = path or f"/q/{tokens[(n * per_thread + i) % len(tokens)]}"
            t0 = time.perf_counter()
            conn.request("GET", target, headers={"Accept-Language": "zh-CN"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                raise SystemExit(f"{target}: HTTP {response.status}")
        conn.close()
        with lock:
            out.extend(mine)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    return out, time.perf_counter() - began


def _line(label: str, values: list[float], extra: str = "") -> str:
    p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
    worst = max(values) * 1000
    return f"{label:36s} {p50:8.2f} {p95:8.2f} {worst:8.2f} {extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invitations", type=int, default=200_000)
    parser.add_argument("--links", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(f"/tmp/guanxi-bench-surveys-{args.customers}.db")
    settings = ensure_demo_db(db, args.customers)
    engine = make_engine(settings.database_url)
    upgrade(engine)  # a database made before the survey tables existed gets them
    engine.dispose()
    started = time.perf_counter()
    tokens = ensure_links(settings.database_url, args.invitations, args.links, seed=6)
    print(
        f"database {db}: {args.customers:,} customers, {args.invitations:,} survey invitations "
        f"({time.perf_counter() - started:.1f} s to prepare {len(tokens):,} links)"
    )
    with running_server(settings) as (host, port):
        page, floor, size = sequential(host, port, tokens, args.requests, args.warmup)
        per = max(1, args.requests // args.threads)
        loaded, seconds = concurrent(host, port, tokens, per, args.threads, None)
        health, health_seconds = concurrent(host, port, tokens, per, args.threads, "/healthz")
    print(f"\n{'one connection, in turn':36s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
    print(_line("GET /q/{token}", page, f"({size / 1024:.1f} KB, {len(page)} requests)"))
    print(_line("GET /healthz (floor)", floor))
    print(f"\n{args.threads} connections at once")
    print(_line("GET /q/{token}", loaded, f"({len(loaded) / seconds:,.0f} req/s)"))
    print(_line("GET /healthz (floor)", health, f"({len(health) / health_seconds:,.0f} req/s)"))
    worst = max(percentile(page, 95), percentile(loaded, 95)) * 1000
    verdict = "meets" if worst <= TARGET_MS else "MISSES"
    print(f"\nsurvey page p95 {worst:.2f} ms {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
