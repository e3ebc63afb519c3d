"""Customer 360 API against its bare twin without HTTP: the ASGI app called directly.

Each API request follows the bare endpoint's request for the same customer, so both see
the machine at the same speed; the figure is the median of the pairs. No server, no load
tool and no sockets: what is compared is the app's own work per request (middleware,
routing, dependencies, session, services, serialisation) against the same SQL replayed
with the raw driver (``core/bare.py``). A quick check while changing the 360's path;
``customer360.py`` measures the issue's target over HTTP.

    python benchmarks/customer360_inprocess.py --customers 100000 --requests 5000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks.customer360 import demo_with_token


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=5_000)
    args = parser.parse_args()
    settings, token, max_id = demo_with_token(args.db, args.customers)
    os.environ.update(
        GUANXI_DATABASE_URL=settings.database_url,
        GUANXI_DATA_DIR=str(settings.data_dir),
        GUANXI_BENCH_BARE="1",
    )
    from guanxi.app import create_app

    app = create_app()
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]

    async def call(path: str) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{path} answered {sent[0]['status']}")

    async def run() -> tuple[list[int], list[int]]:
        rnd = random.Random(1)
        ids = [rnd.randint(1, max_id) for _ in range(args.requests)]
        for cid in ids[:300]:  # warm both paths
            await call(f"/_bare/customers/{cid}")
            await call(f"/api/v1/customers/{cid}")
        bare: list[int] = []
        api: list[int] = []
        clock = time.perf_counter_ns
        for cid in ids:
            t0 = clock()
            await call(f"/_bare/customers/{cid}")
            t1 = clock()
            await call(f"/api/v1/customers/{cid}")
            t2 = clock()
            bare.append(t1 - t0)
            api.append(t2 - t1)
        return bare, api

    bare, api = asyncio.run(run())
    b = statistics.median(bare) / 1000
    a = statistics.median(api) / 1000
    print(f"customers: {max_id:,}  pairs: {args.requests:,}  (in-process, no HTTP)")
    print(f"bare endpoint   median {b:7.0f} µs a request")
    print(f"360 API         median {a:7.0f} µs a request")
    print(f"ratio (bare / API) {b / a:.2f}  — the HTTP benchmark's ratio also holds the server's")
    print("share common to both (uvicorn, sockets), so it reads higher than this one")


if __name__ == "__main__":
    main()
