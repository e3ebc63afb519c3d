"""Customer 360 API under load: ``guanxi serve --workers 2`` with 32 concurrent connections
from wrk, against a bare endpoint in the same server that runs the same SQL with the raw
driver and no framework work (``core/bare.py``).

Targets: throughput >= 50 % of the bare endpoint's; p95 <= 2x its p95.

    python benchmarks/customer360.py --customers 100000 --db /tmp/guanxi-100k.db --seconds 20
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import ensure_demo_db
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.customers.models import Customer
from guanxi.security.models import User
from guanxi.security.service import issue_token

LUA = """
math.randomseed(%(seed)d)
request = function()
  local id = math.random(1, %(max_id)d)
  return wrk.format("GET", "%(prefix)s" .. id, {["Authorization"] = "Bearer %(token)s"})
end
done = function(summary, latency, requests)
  io.write(string.format("P50_US=%%d\\nP95_US=%%d\\nP99_US=%%d\\nREQS=%%d\\nERRS=%%d\\nNON2XX=%%d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_wrk(
    url: str, prefix: str, token: str, max_id: int, seconds: int, conns: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA % {"seed": 7, "max_id": max_id, "prefix": prefix, "token": token})
        script = fh.name
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    os.unlink(script)
    vals = dict(re.findall(r"^([A-Z0-9_]+)=(\d+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "p50": int(vals["P50_US"]) / 1000,
        "p95": int(vals["P95_US"]) / 1000,
        "p99": int(vals["P99_US"]) / 1000,
        "requests": int(vals["REQS"]),
        "errors": int(vals["ERRS"]),
        "non2xx": int(vals["NON2XX"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    db_path = args.db or Path(f"/tmp/guanxi-bench-{args.customers}.db")
    settings = ensure_demo_db(db_path, args.customers)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        agent = session.scalar(select(User).where(User.username == "agent"))
        assert agent is not None
        token, _ = issue_token(session, user=agent, kind="api", hours=2)
        max_id = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1)) or 1
    engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        "GUANXI_DATABASE_URL": settings.database_url,
        "GUANXI_DATA_DIR": str(settings.data_dir),
        "GUANXI_BENCH_BARE": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guanxi.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("server did not start")
        # Warm both paths, then measure each; the bare one first and last to bracket noise.
        run_wrk(base, "/_bare/customers/", token, max_id, 3, args.connections)
        run_wrk(base, "/api/v1/customers/", token, max_id, 3, args.connections)
        bare1 = run_wrk(base, "/_bare/customers/", token, max_id, args.seconds, args.connections)
        api = run_wrk(base, "/api/v1/customers/", token, max_id, args.seconds, args.connections)
        bare2 = run_wrk(base, "/_bare/customers/", token, max_id, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare = {k: (bare1[k] + bare2[k]) / 2 for k in bare1}
    print(
        f"customers: {max_id:,}  workers: {args.workers}  connections: {args.connections}  {args.seconds}s each"
    )
    print(
        f"{'endpoint':<28}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'non-2xx':>9}"
    )
    for label, r in (("360 API (FastAPI+ORM)", api), ("bare: same SQL, raw driver", bare)):
        print(
            f"{label:<28}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}"
            f"{r['errors']:>8.0f}{r['non2xx']:>9.0f}"
        )
    tput = api["rps"] / bare["rps"]
    lat = api["p95"] / bare["p95"]
    print(
        f"throughput ratio {tput:.0%} (target >= 50%: {'MET' if tput >= 0.5 else 'NOT MET'}); "
        f"p95 ratio {lat:.2f}x (target <= 2x: {'MET' if lat <= 2 else 'NOT MET'})"
    )


if __name__ == "__main__":
    main()
