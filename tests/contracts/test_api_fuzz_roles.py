"""Schemathesis over the whole OpenAPI for every role and for an anonymous caller.

Each generated request is sent once per role (admin, manager, agent, sales, analyst,
auditor, privacy officer) and once without credentials, and each answer must:

- never be a 5xx;
- conform to the schema: a documented status code, a documented content type, and a body
  matching the documented schema (errors are problem documents, core/openapi.py);
- respect the route's permission (``route_permission`` over the app's own routes):
  anonymous callers get exactly 401 and a role without the permission exactly 403 on a
  guarded route, never a 2xx.

Path ids point at a seeded customer, ticket and shipment half of the time (an even
generated id is replaced), so the fuzzing reaches real records and not only 404s.

The CI run is bounded (a few examples per operation, SQLite only: every example is sent
eight times and the PostgreSQL twin doubles that on a 2-core runner, while the SQL the
fuzzing reaches is the same the integration suites run on both databases); the bigger run
on both databases is marked ``slow`` (``GUANXI_SLOW=1``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from guanxi.audit.service import Actor
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.security.deps import route_permission
from guanxi.security.permissions import ROLE_PERMISSIONS, Role
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user, issue_token
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.service import create_ticket
from tests.conftest import PASSWORD, settings_for

ANONYMOUS = "anonymous"
# ``require(None)``'s marker: any signed-in user (security/deps.py).
SIGNED_IN = "authenticated"
CALLERS = [role.value for role in Role] + [ANONYMOUS]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _config(examples: int) -> SchemathesisConfig:
    # The fuzzing phase only: the "coverage" phase enumerates every boundary case of every
    # field (minutes per role), which the slow run's larger example count stands in for.
    return SchemathesisConfig.from_str(
        "[phases]\nexamples.enabled = false\ncoverage.enabled = false\n"
        "stateful.enabled = false\n"
        f"[generation]\nmax-examples = {examples}\n"
    )


FUZZ_CONFIG = _config(3)
SLOW_CONFIG = _config(40)

HYPOTHESIS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


def _permissions(app: Any) -> dict[tuple[str, str], str | None]:
    """(METHOD, path template) -> the permission its dependencies require (None: public)."""
    out: dict[tuple[str, str], str | None] = {}
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            for method in ctx.methods or ():
                out[(method.upper(), str(ctx.path))] = route_permission(route.dependant)
    return out


def _state(engine: Engine, data_dir: Path) -> Iterator[dict[str, Any]]:
    """The app on ``engine`` inside one rolled-back transaction, a token per role and a
    customer, shipment and ticket to aim path ids at."""
    from guanxi.app import create_app

    conn = engine.connect()
    trans = conn.begin()
    sm = sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    app = create_app(settings_for(engine.url.render_as_string(hide_password=False), data_dir))
    app.state.engine.dispose()
    app.state.sessionmaker = sm
    headers: dict[str, dict[str, str]] = {ANONYMOUS: {}}
    with sm() as session:
        users = {}
        token_ids: set[int] = set()
        for role in Role:
            user = create_user(
                session,
                user_in=UserCreate(
                    username=f"fuzz_{role.value}",
                    display_name=role.value,
                    role=role.value,
                    password=PASSWORD,
                ),
                actor=Actor.system("test"),
            )
            token, row = issue_token(session, user=user, kind="api", hours=4)
            token_ids.add(row.id)
            headers[role.value] = {"Authorization": f"Bearer {token}"}
            users[role] = user
        admin = users[Role.admin]
        # The fuzzing may disable a user or revoke a session by id: those ids point at a
        # bystander, never at the callers, so their tokens stay valid for the whole run.
        victim = create_user(
            session,
            user_in=UserCreate(
                username="fuzz_victim",
                display_name="victim",
                role="agent",
                password=PASSWORD,
            ),
            actor=Actor.system("test"),
        )
        _, victim_token = issue_token(session, user=victim, kind="api", hours=4)
        customer = create_customer(
            session,
            customer_in=CustomerCreate(name="模糊测试客户", phones=["13912345678"]),
            actor=admin,
        )
        shipment = create_shipment(
            session,
            shipment_in=ShipmentCreate(
                waybill_no="SF7000000001",
                customer_id=customer.id,
                receiver_name="李四",
                dest_province="上海市",
                fee_fen=1200,
                created_at=datetime.datetime(2026, 11, 20, 2, 0, tzinfo=datetime.UTC),
            ),
            actor=admin,
        )
        ticket = create_ticket(
            session,
            ticket_in=TicketCreate(
                type="complaint",
                channel="hotline",
                customer_id=customer.id,
                waybill_no=shipment.waybill_no,
                subject="模糊测试工单",
            ),
            actor=admin,
        )
        ids = {"customer_id": customer.id, "shipment_id": shipment.id, "ticket_id": ticket.id}
        guarded = {
            "user_id": ({u.id for u in users.values()}, victim.id),
            "token_id": (token_ids, victim_token.id),
        }
    try:
        yield {
            "app": app,
            "headers": headers,
            "ids": ids,
            "guarded": guarded,
            "permissions": _permissions(app),
        }
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture(scope="module")
def roles_state(
    sqlite_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    yield from _state(sqlite_engine, tmp_path_factory.mktemp("fuzz_roles"))


@pytest.fixture(scope="module")
def roles_schema(roles_state: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", roles_state["app"], config=FUZZ_CONFIG)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def slow_state(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    engine = request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_engine")
    yield from _state(engine, tmp_path_factory.mktemp("fuzz_roles_slow"))


@pytest.fixture(scope="module")
def slow_schema(slow_state: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", slow_state["app"], config=SLOW_CONFIG)


def check_every_caller(case: Any, state: dict[str, Any]) -> None:
    """Send ``case`` as each caller and hold each answer to the schema and the route's
    permission."""
    for name, real_id in state["ids"].items():
        value = case.path_parameters.get(name) if case.path_parameters else None
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = real_id
    for name, (callers_ids, bystander) in state["guarded"].items():
        value = case.path_parameters.get(name) if case.path_parameters else None
        if isinstance(value, int) and (value % 2 == 0 or value in callers_ids):
            case.path_parameters[name] = bystander
    permission = state["permissions"].get((case.method.upper(), case.operation.path))
    for caller in CALLERS:
        response = case.call(headers=state["headers"][caller])
        where = f"{caller}: {case.method} {case.formatted_path} -> {response.status_code}"
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:
            raise AssertionError(f"{where}: {exc}\n{response.text[:500]}") from exc
        if permission is None or _unparsable_body(response):
            continue
        if caller == ANONYMOUS:
            assert response.status_code == 401, f"{where}: {response.text[:300]}"
        elif permission != SIGNED_IN and permission not in ROLE_PERMISSIONS[Role(caller)]:
            assert response.status_code == 403, f"{where} (lacks {permission}): {response.text}"


def _unparsable_body(response: Any) -> bool:
    """A 400 / 422 to a request whose body cannot be parsed at all.

    FastAPI reads and decodes the body (JSON, or a multipart form) before it runs any
    dependency, the permission check included, so such a request is refused as 400
    (undecodable bytes, a broken form) or 422 ``json_invalid`` whoever sends it. The answer
    names no data and no rule and no code of the route has run; every other answer to a
    caller without the permission must be exactly 401 / 403.
    """
    if response.status_code not in (400, 422):
        return False
    request = response.request
    body = request.body
    if not body:
        return False
    if "json" not in (request.headers.get("content-type") or ""):
        return bool(response.status_code == 400)
    try:
        json.loads(body)
    except ValueError:
        return True
    return False


schema = schemathesis.pytest.from_fixture("roles_schema")
slow = schemathesis.pytest.from_fixture("slow_schema")


@schema.parametrize()
@HYPOTHESIS
def test_every_role_gets_documented_answers(case: Any, roles_state: dict[str, Any]) -> None:
    check_every_caller(case, roles_state)


@pytest.mark.slow
@slow.parametrize()
@HYPOTHESIS
def test_every_role_gets_documented_answers_at_length(
    case: Any, slow_state: dict[str, Any]
) -> None:
    check_every_caller(case, slow_state)
