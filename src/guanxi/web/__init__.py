"""Shared UI: the layout shell, static assets (vendored htmx), login and language pages."""
