"""The outermost middleware: security headers, the access line, HTTP metrics, and a last
answer for a request that crashed.

One pure-ASGI middleware for all four, because each layer costs every request its own
closure and awaits (the 360 benchmark measures that overhead). It sits outside
:class:`~guanxi.core.web.RequestContextMiddleware`, so the answers that one sends itself
(413 for an oversized body) get the headers and are counted too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guanxi.core import metrics
from guanxi.core.headers import SecurityHeaders, merge
from guanxi.core.logs import access_log

log = logging.getLogger("guanxi.web")
UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The route a request matched, as its template (``/customers/{customer_id}``): the
    path itself may carry personal data or ids, and would make a metric per customer."""
    route: Any = scope.get("route")
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


def user_id(scope: Scope) -> int | None:
    """The signed-in user's id, when the request was authenticated."""
    user = (scope.get("state") or {}).get("user")
    return getattr(user, "id", None)


class ObserveMiddleware:
    """Headers, access line, metrics and a crash guard for every HTTP request."""

    def __init__(self, app: ASGIApp, headers: SecurityHeaders) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        security = self.headers.for_scope(scope)

        async def send_observed(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = merge(list(message.get("headers") or []), security)
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_observed)
        except Exception as exc:
            if started:
                raise
            # Logged as type and frames only (core/logs.py): the message may quote input.
            # The request id is passed along: the context variable is reset by now.
            rid = (scope.get("state") or {}).get("request_id")
            log.error("unhandled %s", type(exc).__name__, exc_info=exc, extra={"request_id": rid})
            await self._crashed(scope, receive, send_observed)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            seconds = time.perf_counter() - start
            method = scope.get("method", "")
            route = route_template(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                state = scope.get("state") or {}
                access_log.info(
                    "request",
                    extra={
                        "request_id": state.get("request_id"),
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "user_id": user_id(scope),
                    },
                )

    @staticmethod
    async def _crashed(scope: Scope, receive: Receive, send: Send) -> None:
        """The problem document of an unexpected error (never a bare connection reset)."""
        from guanxi.core.web import problem

        response = problem(Request(scope, receive), 500, "internal_error")
        rid = (scope.get("state") or {}).get("request_id")
        if rid:
            # RequestContextMiddleware, inside, never saw this answer.
            response.headers["x-request-id"] = rid
        await response(scope, receive, send)
