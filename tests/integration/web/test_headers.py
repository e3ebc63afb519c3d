"""Security headers on every kind of answer: pages, API, static files, errors (404, 413,
500); HSTS only for a request that came over TLS, directly or through a trusted proxy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import guanxi
from guanxi.core.headers import SecurityHeaders

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
EXPECTED = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "cross-origin-opener-policy": "same-origin",
}


def _assert_headers(resp: Any) -> None:
    for name, value in EXPECTED.items():
        assert resp.headers.get_list(name) == [value], (resp.url, name)
    assert "strict-transport-security" not in resp.headers
    assert len(resp.headers["x-request-id"]) == 32


def test_every_kind_of_answer_carries_the_headers(client: Any, login: Any) -> None:
    _user, headers = login("agent")
    answers = {
        "/login": client.get("/login"),
        "/healthz": client.get("/healthz"),
        "/readyz": client.get("/readyz"),
        "/api/v1/customers": client.get("/api/v1/customers", headers=headers),
        "/api/v1/customers (401)": client.get("/api/v1/customers"),
        "/static/css/guanxi.css": client.get("/static/css/guanxi.css"),
        "/static/missing.css": client.get("/static/missing.css"),
        "/no/such/page": client.get("/no/such/page"),
        "/api/v1/no-such": client.get("/api/v1/no-such"),
        # Refused by RequestContextMiddleware before routing.
        "413": client.post(
            "/api/v1/customers",
            content=b"x" * (2 * 1024 * 1024 + 1),
            headers={**headers, "content-type": "application/json"},
        ),
    }
    statuses = {path: resp.status_code for path, resp in answers.items()}
    assert statuses == {
        "/login": 200,
        "/healthz": 200,
        "/readyz": 200,
        "/api/v1/customers": 200,
        "/api/v1/customers (401)": 401,
        "/static/css/guanxi.css": 200,
        "/static/missing.css": 404,
        "/no/such/page": 404,
        "/api/v1/no-such": 404,
        "413": 413,
    }
    for resp in answers.values():
        _assert_headers(resp)


def test_a_crash_is_a_problem_document_with_the_headers(app: Any) -> None:
    @app.get("/test-crash")
    def crash() -> None:
        raise RuntimeError("boom 13912345678")

    with TestClient(app, raise_server_exceptions=True) as c:
        resp = c.get("/test-crash")
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == resp.headers["x-request-id"]
    _assert_headers(resp)


def test_hsts_over_tls_and_from_a_trusted_proxy_only(app: Any) -> None:
    over_tls = TestClient(app, base_url="https://testserver")
    assert over_tls.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    plain = TestClient(app)
    # The test client's address is not a trusted proxy: its X-Forwarded-Proto is ignored.
    resp = plain.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in resp.headers


@pytest.mark.parametrize(
    ("client_host", "proto", "hsts"),
    [
        ("127.0.0.1", b"https", True),
        ("127.0.0.1", b"https, http", True),
        ("127.0.0.1", b"http", False),
        ("10.1.2.3", b"https", True),
        ("10.2.0.1", b"https", False),
        ("203.0.113.9", b"https", False),
        ("not-an-address", b"https", False),
    ],
)
def test_which_proxies_are_believed(client_host: str, proto: bytes, hsts: bool) -> None:
    headers = SecurityHeaders(["127.0.0.1", "10.1.0.0/16"])
    scope = {
        "type": "http",
        "scheme": "http",
        "client": (client_host, 5000),
        "headers": [(b"x-forwarded-proto", proto)],
    }
    names = {name for name, _value in headers.for_scope(scope)}
    assert (b"strict-transport-security" in names) is hsts


# An inline <style>, style attribute, event-handler attribute, javascript: URL or inline
# script (other than a JSON data block, which is never run).
INLINE = re.compile(
    r"<style|\sstyle=|\son[a-z]+=|javascript:|<script(?![^>]*(\ssrc=|type=\"application/json\"))"
)


def test_templates_have_no_inline_script_or_style() -> None:
    """The policy forbids them: a page carrying one would be broken in the browser."""
    base = Path(guanxi.__file__).parent
    offenders = [
        f"{path.relative_to(base)}: {match.group(0).strip()}"
        for path in sorted(base.glob("**/templates/**/*.html"))
        for match in INLINE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
