"""Browser security headers: one content policy without inline scripts or styles, and HSTS
for requests that came over TLS (directly, or through a trusted reverse proxy).

The headers are computed once per process as raw ASGI header pairs; per request only the
HSTS decision is made (see :class:`SecurityHeaders`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cached_property

from starlette.types import Scope

# No inline script or style anywhere: scripts and style sheets come from our own origin only
# (ECharts and htmx are vendored under /static), so an injected <script> or style attribute
# does nothing. img-src allows data: for the favicon placeholder and ECharts' exported
# images; frame-ancestors replaces X-Frame-Options (kept for old browsers).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
# No page uses the camera, microphone, location, payments or USB: deny them to any script.
# (Only features Chromium knows: an unknown one is reported on the console.)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# One year; without includeSubDomains, since other hosts of the domain may not serve TLS.
HSTS = "max-age=31536000"

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """The headers a response gets, given the addresses of the trusted reverse proxies.

    A proxy's ``X-Forwarded-Proto: https`` counts only when the connection comes from one
    of ``trusted_proxies`` (addresses or networks): anyone else could send the header.
    """

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    @cached_property
    def with_hsts(self) -> tuple[tuple[bytes, bytes], ...]:
        """The base headers plus Strict-Transport-Security."""
        return (*BASE_HEADERS, (b"strict-transport-security", HSTS.encode()))

    def is_trusted_proxy(self, host: str | None) -> bool:
        """Whether a connection from ``host`` is from a trusted reverse proxy."""
        if not host or not self._trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def came_over_tls(self, scope: Scope) -> bool:
        """True when the browser's connection was TLS: the server's own scheme, or the
        ``X-Forwarded-Proto`` of a trusted proxy."""
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        if not self.is_trusted_proxy(client[0] if client else None):
            return False
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-proto":
                # A chain of proxies lists one scheme each; the first is the browser's.
                return bool(value.split(b",")[0].strip().lower() == b"https")
        return False

    def for_scope(self, scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
        """The headers for the response to the request in ``scope``."""
        return self.with_hsts if self.came_over_tls(scope) else BASE_HEADERS


def merge(
    own: list[tuple[bytes, bytes]], extra: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``own`` headers plus those of ``extra`` the response does not set itself (a
    download's stricter sandboxing policy wins)."""
    have = {name.lower() for name, _value in own}
    return [*own, *(h for h in extra if h[0] not in have)]
