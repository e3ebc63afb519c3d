"""Every route is guarded by ``require(...)`` unless it is on the public list, and each
role gets exactly the answers its permissions promise."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from guanxi.security.deps import route_permission
from guanxi.security.permissions import ROLE_PERMISSIONS, Permission, Role

PUBLIC = {
    ("POST", "/api/v1/auth/token"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/lang/{code}"),
    # Operations (web/ops.py): liveness and readiness for load balancers and orchestrators
    # (no personal data, only check outcomes); /metrics checks its own bearer token
    # (GUANXI_METRICS_TOKEN) or, without one, answers the loopback address only.
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    # The customer self-service page: no sign-in, rate-limited, the ticket page opened by
    # the secret in its link (selfservice/).
    ("POST", "/api/v1/public/track"),
    ("GET", "/track"),
    ("POST", "/track"),
    ("POST", "/track/file"),
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}/message"),
    # Satisfaction surveys (surveys/public.py): the single-use link of an invitation, the
    # survey of a ticket opened by the secret of its private page, and an outlet's QR code
    # (a signed code; anonymous answers, rate-limited per client address).
    ("GET", "/q/{token}"),
    ("POST", "/q/{token}"),
    ("GET", "/q/{token}/thanks"),
    ("GET", "/s/{token}/survey"),
    ("POST", "/s/{token}/survey"),
    ("GET", "/q/o/{code}"),
    ("POST", "/q/o/{code}"),
    # Unsubscribe links in marketing mail (notify/public_pages.py): the signed token in the
    # path names the customer and purpose; POST is also the RFC 8058 one-click.
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    # A campaign message's tracked link (campaigns/pages.py): 96 random bits per
    # recipient, unguessable; records the click and redirects to the campaign's target.
    ("GET", "/c/{code}"),
    # SMS providers' delivery reports and replies (notify/api.py): the configured secret
    # token in the path authenticates them (constant-time compare; empty turns them off).
    ("POST", "/api/v1/public/sms/aliyun/{token}/report"),
    ("POST", "/api/v1/public/sms/aliyun/{token}/reply"),
    ("POST", "/api/v1/public/sms/tencent/{token}/status"),
    ("POST", "/api/v1/public/sms/tencent/{token}/reply"),
    # The public sales lead form (sales/forms.py): no sign-in; a honeypot, a signed time
    # token and a per-address rate limit keep robots out.
    ("GET", "/forms/lead"),
    ("POST", "/forms/lead"),
    ("GET", "/forms/lead/thanks"),
    # The sign-in's second step (security/signin.py): the short-lived pending cookie set
    # after a right password is their credential; no other page accepts it.
    ("GET", "/login/code"),
    ("POST", "/login/code"),
    ("GET", "/login/enrol"),
    ("POST", "/login/enrol"),
}


def api_routes(app: Any) -> list[tuple[str, set[str], APIRoute]]:
    """(full path, methods, route) of every JSON and page route, included routers walked.

    FastAPI 0.165 keeps included routers as ``_IncludedRouter`` entries in ``app.routes``;
    ``iter_route_contexts`` flattens them with their prefixes applied.
    """
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            out.append((str(ctx.path), set(ctx.methods or ()), route))
    return out


def test_the_route_walk_sees_every_domain(app: Any) -> None:
    paths = {path for path, _methods, _route in api_routes(app)}
    # One route of each router: if the walk missed included routers, this fails.
    for expected in (
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/shipments",
        "/api/v1/users",
        "/api/v1/imports/jobs",
        "/api/v1/duplicates",
        "/customers",
        "/shipments",
        "/imports",
        "/duplicates",
        "/quality",
    ):
        assert expected in paths
    assert len(paths) > 40


def test_every_route_requires_a_permission_or_is_public(app: Any) -> None:
    unguarded = []
    for path, methods, route in api_routes(app):
        for method in methods - {"HEAD", "OPTIONS"}:
            if (method, path) in PUBLIC:
                continue
            if route_permission(route.dependant) is None:
                unguarded.append(f"{method} {path}")
    assert unguarded == []


# (method, path, permission it needs, JSON body)
MATRIX: list[tuple[str, str, Permission, dict[str, Any] | None]] = [
    ("GET", "/api/v1/customers", Permission.customer_read, None),
    ("POST", "/api/v1/customers", Permission.customer_write, {"name": "矩阵客户"}),
    ("POST", "/api/v1/customers/{cid}/archive", Permission.customer_archive, None),
    ("POST", "/api/v1/customers/{cid}/reveal", Permission.customer_reveal, {"field": "phones"}),
    ("GET", "/api/v1/shipments", Permission.shipment_read, None),
    (
        "POST",
        "/api/v1/shipments",
        Permission.shipment_write,
        {"waybill_no": "GXMATRIX{n}", "customer_id": 0},
    ),
    ("GET", "/api/v1/imports/jobs", Permission.data_import, None),
    ("GET", "/api/v1/users", Permission.user_read, None),
    (
        "POST",
        "/api/v1/users",
        Permission.user_manage,
        {"username": "m{n}", "display_name": "m", "role": "agent", "password": "longenough1"},
    ),
    ("GET", "/api/v1/outbox", Permission.notify_read, None),
    ("GET", "/api/v1/webhooks", Permission.notify_manage, None),
    ("GET", "/api/v1/analytics/kpis", Permission.analytics_read, None),
    ("GET", "/api/v1/training/courses", Permission.team_performance, None),
    (
        "POST",
        "/api/v1/training/courses",
        Permission.training_manage,
        {"title": "矩阵培训{n}", "topic": "culture", "mode": "online", "planned_on": "2026-10-15"},
    ),
    ("GET", "/api/v1/surveys/results", Permission.surveys_read, None),
    ("GET", "/api/v1/surveys/policy", Permission.surveys_manage, None),
    (
        "POST",
        "/api/v1/surveys/responses",
        Permission.surveys_enter,
        {"template": "relationship", "channel": "phone", "answers": {"nps": 9}},
    ),
]


@pytest.mark.parametrize("role", list(Role))
def test_role_route_matrix(role: Role, client: Any, login: Any, make_customer: Any) -> None:
    _, headers = login(role.value)
    customer = make_customer(name="矩阵")
    for n, (method, path, permission, body) in enumerate(MATRIX):
        url = path.format(cid=customer.id)
        if body is not None:
            body = {k: (v.format(n=n) if isinstance(v, str) else v) for k, v in body.items()}
            if "customer_id" in body:
                body["customer_id"] = customer.id
        resp = client.request(method, url, json=body, headers=headers)
        allowed = permission in ROLE_PERMISSIONS[role]
        if allowed:
            assert resp.status_code in (200, 201), (
                f"{role} {method} {url}: {resp.status_code} {resp.text}"
            )
        else:
            assert resp.status_code == 403, f"{role} {method} {url}: {resp.status_code}"
        # Anonymous: always 401 on the API.
        assert client.request(method, url, json=body).status_code == 401
