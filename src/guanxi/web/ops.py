"""Operational endpoints: liveness, readiness and metrics.

``/healthz`` (liveness) answers as long as the process does, touching nothing;
``/readyz`` (readiness: take this server into the load balancer) checks the database, the
schema's migrations and the data directory, 503 naming the failing check; ``/metrics`` is
Prometheus' text exposition, for a bearer token (``GUANXI_METRICS_TOKEN``) or, without one,
for the loopback address only.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from guanxi.core import metrics
from guanxi.core.health import readiness
from guanxi.core.web import problem, run_read
from guanxi.security.deps import SessionDep

router = APIRouter()

LOOPBACK = {"127.0.0.1", "::1"}
# Headers a reverse proxy adds: a request carrying one did not come from this machine,
# whatever its connection's address.
_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness: the process answers (no database: see core/health.py)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request, session: SessionDep) -> JSONResponse:
    """Readiness: 200 when every check passes, 503 naming the ones that failed."""
    settings = request.app.state.settings
    result = await run_read(request, readiness, session, settings.data_dir)
    return JSONResponse(
        {"status": "ok" if result.ready else "error", "checks": result.checks},
        status_code=200 if result.ready else 503,
    )


def metrics_allowed(request: Request, authorization: str | None) -> bool:
    """The configured bearer token (constant-time compare), or, when none is set, a
    direct connection from the loopback address."""
    token = request.app.state.settings.metrics_token
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    return request.client is not None and request.client.host in LOOPBACK


class OutboxCollector(Collector):
    """``guanxi_outbox_messages{channel, status}``: the messages waiting in the outbox,
    counted at scrape time (the same figure from any process)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per channel and queued status present in the outbox."""
        from guanxi.notify.outbox_admin import queued_counts

        family = GaugeMetricFamily(
            "guanxi_outbox_messages",
            "Outbox messages still to be sent, by channel and status.",
            labels=["channel", "status"],
        )
        try:
            with self.factory() as session:
                rows = queued_counts(session)
        except SQLAlchemyError:
            # The database's own state shows on /readyz; the rest of the scrape still counts.
            return
        for channel, status, count in rows:
            family.add_metric([channel, status], float(count))
        yield family


@router.get("/metrics")
def prometheus_metrics(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus' text exposition of the metrics of core/metrics.py and the outbox."""
    if not metrics_allowed(request, authorization):
        return problem(request, 403, "forbidden")
    body = metrics.exposition([OutboxCollector(request.app.state.sessionmaker)])
    return Response(body, media_type=metrics.CONTENT_TYPE)
