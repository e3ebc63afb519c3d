"""Every response carries the browser security headers and a request id (a download that
sets its own sandboxing policy keeps it: tests/integration/tickets/test_attachments.py)."""

from __future__ import annotations

from typing import Any


def test_pages_and_api_carry_security_headers(client: Any) -> None:
    for path in ("/login", "/healthz", "/api/v1/customers"):
        resp = client.get(path)
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "same-origin"
        assert resp.headers["content-security-policy"].startswith("default-src 'self'")
        assert len(resp.headers["x-request-id"]) == 32


def test_the_callers_request_id_is_kept(client: Any) -> None:
    resp = client.get("/login", headers={"X-Request-ID": "abc123"})
    assert resp.headers["x-request-id"] == "abc123"
    assert len(resp.headers.get_list("content-security-policy")) == 1
