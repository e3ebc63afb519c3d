"""Loads every domain's tables and wires the hooks between domains, once per process."""

from __future__ import annotations

from functools import cache


@cache
def load_models() -> None:
    """Import every table definition so the metadata is complete (migrations, tests)."""
    import guanxi.audit.models
    import guanxi.customers.models
    import guanxi.imports.models
    import guanxi.security.models
    import guanxi.shipments.models  # noqa: F401


@cache
def load() -> None:
    """Load the models and register the hooks one domain offers another."""
    load_models()
    from guanxi.customers.queries import register_exact_resolver
    from guanxi.shipments.service import customers_by_waybill

    register_exact_resolver(customers_by_waybill)
