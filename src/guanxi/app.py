"""The application factory: every domain's JSON routes and pages on one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from guanxi import __version__, domains
from guanxi.config import Settings, get_settings
from guanxi.core.db import ReadConnections, make_engine, make_sessionmaker
from guanxi.core.openapi import install_openapi
from guanxi.core.web import RequestContextMiddleware, install_error_handlers
from guanxi.security import crypto


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Sync routes run in a thread pool; with the GIL, dozens of threads only contend.
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.route_threads
    yield
    kept = getattr(app.state, "read_connections", None)
    if kept is not None:
        kept.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    domains.load()
    crypto.configure(settings)

    from guanxi.analytics import alert_pages, scorecard_api, scorecard_pages
    from guanxi.analytics import api as analytics_api
    from guanxi.analytics import dashboard_api as analytics_dashboard_api
    from guanxi.analytics import pages as analytics_pages
    from guanxi.audit import api as audit_api
    from guanxi.audit import pages as audit_pages
    from guanxi.campaigns import api as campaigns_api
    from guanxi.campaigns import audience_api, audience_pages
    from guanxi.campaigns import pages as campaigns_pages
    from guanxi.care import api as care_api
    from guanxi.care import pages as care_pages
    from guanxi.contracts import api as contracts_api
    from guanxi.contracts import pages as contracts_pages
    from guanxi.customers import api as customers_api
    from guanxi.customers import pages as customers_pages
    from guanxi.dedupe import api as dedupe_api
    from guanxi.dedupe import pages as dedupe_pages
    from guanxi.imports import api as imports_api
    from guanxi.imports import pages as imports_pages
    from guanxi.interactions import api as interactions_api
    from guanxi.interactions import pages as interactions_pages
    from guanxi.loyalty import api as loyalty_api
    from guanxi.loyalty import coupons_api, panel_pages
    from guanxi.loyalty import pages as loyalty_pages
    from guanxi.notify import api as notify_api
    from guanxi.notify import pages as notify_pages
    from guanxi.pool import api as pool_api
    from guanxi.pool import pages as pool_pages
    from guanxi.privacy import api as privacy_api
    from guanxi.privacy import pages as privacy_pages
    from guanxi.privacy import retention_api, retention_pages
    from guanxi.quality import pages as quality_pages
    from guanxi.sales import api as sales_api
    from guanxi.sales import pages as sales_pages
    from guanxi.security import api as security_api
    from guanxi.security import pages as security_pages
    from guanxi.selfservice import api as selfservice_api
    from guanxi.selfservice import pages as selfservice_pages
    from guanxi.selfservice import service as selfservice_service
    from guanxi.shipments import api as shipments_api
    from guanxi.shipments import pages as shipments_pages
    from guanxi.surveys import api as surveys_api
    from guanxi.surveys import pages as surveys_pages
    from guanxi.surveys import public as surveys_public
    from guanxi.tickets import api as tickets_api
    from guanxi.tickets import attachments_api, claims_api, claims_pages, desk_api, desk_pages
    from guanxi.tickets import pages as tickets_pages
    from guanxi.training import api as training_api
    from guanxi.training import pages as training_pages
    from guanxi.web import ops as web_ops
    from guanxi.web import pages as web_pages
    from guanxi.workspace import api as workspace_api
    from guanxi.workspace import pages as workspace_pages

    app = FastAPI(
        lifespan=_lifespan,
        title="Guanxi",
        version=__version__,
        description="Customer relationship and customer-service system (关系).",
        # The interactive docs page loads its scripts from a CDN: off, since nothing may be
        # fetched at run time. The schema itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    # Links in mails sent without a request (the resolved hook) need the key and base URL.
    selfservice_service.configure(settings)
    # Unsubscribe links (signed with the secret key) are made without a request too.
    from guanxi.notify import unsubscribe

    unsubscribe.configure(settings)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    # Read-only JSON routes on SQLite reuse open connections (core/db.py ReadConnections).
    app.state.read_connections = ReadConnections(engine) if settings.reads_inline else None

    install_error_handlers(app)
    # The schema documents the problem documents every error really is (core/openapi.py).
    install_openapi(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outermost (added last): security headers, the access line and metrics on every answer.
    from guanxi.core import metrics
    from guanxi.core.headers import SecurityHeaders
    from guanxi.core.observe import ObserveMiddleware

    app.add_middleware(ObserveMiddleware, headers=SecurityHeaders(settings.trusted_proxies))
    metrics.instrument_engine(engine)

    bare = None
    if settings.bench_bare and settings.is_sqlite:
        from guanxi.core.bare import BareCustomer360, capture_statements

        statements, sample = capture_statements(engine, app.state.sessionmaker)
        db_path = settings.database_url.split("///", 1)[1]
        bare = BareCustomer360(db_path, statements, sample)
    for module in (
        security_api,
        customers_api,
        workspace_api,
        shipments_api,
        imports_api,
        dedupe_api,
        tickets_api,
        claims_api,
        desk_api,
        attachments_api,
        interactions_api,
        notify_api,
        selfservice_api,
        analytics_api,
        analytics_dashboard_api,
        scorecard_api,
        training_api,
        surveys_api,
        care_api,
        loyalty_api,
        coupons_api,
        audience_api,
        campaigns_api,
        sales_api,
        pool_api,
        contracts_api,
        privacy_api,
        retention_api,
        audit_api,
    ):
        if module is workspace_api and bare is not None:
            # The benchmark's twin goes just before the 360's router, not after every
            # route: both then pass the same middleware and the same route table, and
            # differ only in the endpoint (core/bare.py).
            app.mount("/_bare/customers", bare)
        app.include_router(module.router)
    for module in (
        web_pages,
        customers_pages,
        workspace_pages,
        shipments_pages,
        imports_pages,
        dedupe_pages,
        quality_pages,
        tickets_pages,
        desk_pages,
        claims_pages,
        interactions_pages,
        notify_pages,
        selfservice_pages,
        analytics_pages,
        alert_pages,
        scorecard_pages,
        training_pages,
        surveys_pages,
        surveys_public,
        care_pages,
        loyalty_pages,
        panel_pages,
        audience_pages,
        campaigns_pages,
        sales_pages,
        pool_pages,
        contracts_pages,
        privacy_pages,
        retention_pages,
        security_pages,
        audit_pages,
        web_ops,
    ):
        app.include_router(module.router, include_in_schema=False)
    # A user's row-level scope (security/scope.py): its JSON route and its page.
    from guanxi.security import scope_api, scope_pages

    app.include_router(scope_api.router)
    app.include_router(scope_pages.router, include_in_schema=False)
    static = resources.files("guanxi") / "web" / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
