"""/metrics: who may read it, what it counts (by route template, never a raw path), the
outbox queue read at scrape time, and several processes summed in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.notify.outbox import queue_email

LOCAL = ("127.0.0.1", 40000)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_only_loopback_without_a_token(app: Any) -> None:
    remote = TestClient(app, client=("203.0.113.7", 40000))
    resp = remote.get("/metrics")
    assert resp.status_code == 403
    assert resp.json()["code"] == "forbidden"
    local = TestClient(app, client=LOCAL)
    assert local.get("/metrics").status_code == 200
    # Through a reverse proxy on the same machine: refused, whoever is behind it.
    proxied = local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.2"})
    assert proxied.status_code == 403


def test_with_a_token_only_the_token(app: Any) -> None:
    app.state.settings.metrics_token = "scrape-secret"
    local = TestClient(app, client=LOCAL)
    assert local.get("/metrics").status_code == 403
    assert local.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    basic = local.get("/metrics", headers={"Authorization": "Basic scrape-secret"})
    assert basic.status_code == 403
    remote = TestClient(app, client=("203.0.113.7", 40000))
    resp = remote.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_requests_are_counted_by_route_template(app: Any, login: Any, make_customer: Any) -> None:
    client = TestClient(app, client=LOCAL)
    _user, headers = login("agent")
    customer = make_customer(name="计数客户", phones=["13912340001"])
    route = "/api/v1/customers/{customer_id}"
    ok_before = _value("guanxi_http_requests_total", method="GET", route=route, status="200")
    missing_before = _value("guanxi_http_requests_total", method="GET", route=route, status="404")
    seen_before = _value("guanxi_http_request_duration_seconds_count", method="GET", route=route)
    for _ in range(3):
        assert client.get(f"/api/v1/customers/{customer.id}", headers=headers).status_code == 200
    assert client.get("/api/v1/customers/999999999", headers=headers).status_code == 404
    assert _value("guanxi_http_requests_total", method="GET", route=route, status="200") == (
        ok_before + 3
    )
    assert _value("guanxi_http_requests_total", method="GET", route=route, status="404") == (
        missing_before + 1
    )
    assert (
        _value("guanxi_http_request_duration_seconds_count", method="GET", route=route)
        == seen_before + 4
    )
    body = client.get("/metrics").text
    # Templates only: no customer id and no unmatched path becomes a label.
    assert f"/api/v1/customers/{customer.id}" not in body
    assert 'route="/api/v1/customers/{customer_id}"' in body
    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    unmatched = _value("guanxi_http_requests_total", **labels)
    client.get("/no/such/13912340001")
    assert _value("guanxi_http_requests_total", **labels) == unmatched + 1
    assert "13912340001" not in client.get("/metrics").text


def test_the_exposition_has_every_family(client: Any, app: Any, db: Session) -> None:
    with write_transaction(db):
        for n in range(3):
            queue_email(db, key=f"metrics-{n}", to="ops@example.cn", subject="s", body="b")
    body = TestClient(app, client=LOCAL).get("/metrics").text
    lines = body.splitlines()
    assert 'guanxi_outbox_messages{channel="email",status="pending"} 3.0' in lines
    for family in (
        "# TYPE guanxi_http_requests_total counter",
        "# TYPE guanxi_http_request_duration_seconds histogram",
        "# TYPE guanxi_http_requests_in_flight gauge",
        "# TYPE guanxi_db_pool_checked_out gauge",
        "# TYPE guanxi_worker_job_runs_total counter",
        "# TYPE guanxi_build_info gauge",
        "# TYPE guanxi_outbox_messages gauge",
    ):
        assert family in lines
    from guanxi import __version__

    assert any(
        line.startswith('guanxi_build_info{python="') and f'version="{__version__}"' in line
        for line in lines
    )
    # The scrape itself is in flight while the exposition is written.
    assert "guanxi_http_requests_in_flight 1.0" in lines


def test_worker_jobs_are_counted() -> None:
    from guanxi.core.metrics import counted

    def ok_job() -> int:
        return 7

    def failing_job() -> int:
        raise ValueError("nope")

    ok_before = _value("guanxi_worker_job_runs_total", job="t_ok", outcome="ok")
    failed_before = _value("guanxi_worker_job_runs_total", job="t_fail", outcome="failed")
    assert counted("t_ok", ok_job)() == 7
    try:
        counted("t_fail", failing_job)()
    except ValueError:
        pass
    else:  # pragma: no cover - the failure must reach the scheduler
        raise AssertionError("the job's failure was swallowed")
    assert _value("guanxi_worker_job_runs_total", job="t_ok", outcome="ok") == ok_before + 1
    assert (
        _value("guanxi_worker_job_runs_total", job="t_fail", outcome="failed") == failed_before + 1
    )


def test_the_database_pool_gauge_follows_checkouts(tmp_path: Path) -> None:
    from guanxi.core.db import make_engine
    from guanxi.core.metrics import instrument_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    instrument_engine(engine)
    before = _value("guanxi_db_pool_checked_out")
    with engine.connect():
        assert _value("guanxi_db_pool_checked_out") == before + 1
        with engine.connect():
            assert _value("guanxi_db_pool_checked_out") == before + 2
    assert _value("guanxi_db_pool_checked_out") == before
    engine.dispose()


SCRIPT = textwrap.dedent(
    """
    import sys
    from guanxi.core import metrics
    metrics.HTTP_REQUESTS.labels("GET", "/healthz", "200").inc(int(sys.argv[1]))
    metrics.JOB_RUNS.labels("outbox", "ok").inc()
    if sys.argv[2] == "print":
        sys.stdout.write(metrics.exposition().decode())
    """
)


def test_multiprocess_mode_sums_the_processes(tmp_path: Path) -> None:
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    for count, mode in ((2, "quiet"), (5, "quiet"), (1, "print")):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", SCRIPT, str(count), mode],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    lines = out.splitlines()
    assert 'guanxi_http_requests_total{method="GET",route="/healthz",status="200"} 8.0' in lines
    assert 'guanxi_worker_job_runs_total{job="outbox",outcome="ok"} 3.0' in lines
