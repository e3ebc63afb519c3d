"""Prometheus metrics (prometheus_client): HTTP requests by route template, requests in
flight, database connections checked out, worker job runs, build info.

Several processes (``guanxi serve --workers N``, ``guanxi worker``): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the processes of one machine
before they start; each then writes its figures there and a scrape of any process reports
the sum (prometheus_client's multiprocess mode). Without it, a scrape reports the process
it reached.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event

from guanxi import __version__

T = TypeVar("T")
# The classic text format, read by every Prometheus version (our names need no escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

HTTP_REQUESTS = Counter(
    "guanxi_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "guanxi_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# "livesum": in multiprocess mode, the sum over the processes still running.
HTTP_IN_FLIGHT = Gauge(
    "guanxi_http_requests_in_flight",
    "HTTP requests being served.",
    multiprocess_mode="livesum",
)
DB_CHECKED_OUT = Gauge(
    "guanxi_db_pool_checked_out",
    "Database connections checked out of the pool (in use).",
    multiprocess_mode="livesum",
)
JOB_RUNS = Counter(
    "guanxi_worker_job_runs",
    "Runs of the worker's periodic jobs, by job and outcome (ok, failed).",
    ["job", "outcome"],
)
JOB_DURATION = Histogram(
    "guanxi_worker_job_duration_seconds",
    "Duration of the worker's job runs, by job.",
    ["job"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0),
)
BUILD_INFO = Gauge(
    "guanxi_build_info",
    "Always 1; the labels name the running version.",
    ["version", "python"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, if set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def instrument_engine(engine: Engine) -> None:
    """Count the connections ``engine``'s pool has handed out and not yet taken back."""

    def checked_out(*_args: Any) -> None:
        DB_CHECKED_OUT.inc()

    def checked_in(*_args: Any) -> None:
        DB_CHECKED_OUT.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)


def counted(name: str, job: Callable[..., T]) -> Callable[..., T]:
    """``job`` counted in ``guanxi_worker_job_runs`` (ok / failed) and timed; a failure is
    raised again for the scheduler to report."""

    def run(*args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            result = job(*args, **kwargs)
        except Exception:
            JOB_RUNS.labels(name, "failed").inc()
            raise
        finally:
            JOB_DURATION.labels(name).observe(time.perf_counter() - start)
        JOB_RUNS.labels(name, "ok").inc()
        return result

    run.__name__ = getattr(job, "__name__", name)
    run.__doc__ = job.__doc__
    return run


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of this process's metrics (every process's in multiprocess
    mode) followed by ``extra`` collectors (figures read from the database at scrape)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    live = CollectorRegistry(auto_describe=False)
    for collector in extra:
        live.register(collector)
    return body + generate_latest(live)
