"""Sessions kept open between requests for the reads that run on the event loop
(``core.db.ReadConnections``): one request each, nothing carried over, no snapshot held,
and the pool given back whatever should not be kept."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from guanxi.app import create_app
from guanxi.audit.service import Actor
from guanxi.core.db import ReadConnections, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user, revoke_token
from tests.conftest import PASSWORD, settings_for

ACTOR = Actor.system("test")


def _agent(session: Session, username: str) -> User:
    return create_user(
        session,
        user_in=UserCreate(username=username, display_name="a", role="agent", password=PASSWORD),  # type: ignore[arg-type]
        actor=ACTOR,
    )


def test_a_released_session_is_reused_on_its_connection_with_nothing_carried_over(
    committed_engine: Engine,
) -> None:
    factory = make_sessionmaker(committed_engine)
    kept = ReadConnections(committed_engine)
    with factory() as session:
        _agent(session, "reader")
    first = kept.open(factory)
    conn = first.bind
    assert isinstance(conn, Connection)
    assert first.scalar(select(User.username)) == "reader"
    first.info["per-request"] = 1
    assert first.in_transaction()
    assert len(first.identity_map) == 0
    first.get(User, 1)
    kept.release(first)
    assert kept.idle() == 1
    # Expired by the release: no transaction, no objects, no caches.
    assert not first.in_transaction()
    assert not conn.in_transaction()
    assert len(first.identity_map) == 0
    assert first.info == {}
    again = kept.open(factory)
    assert again is first
    assert again.bind is conn
    assert kept.idle() == 0
    kept.release(again)
    kept.dispose()
    assert kept.idle() == 0
    assert conn.closed


def test_a_kept_session_sees_what_others_committed_since(committed_engine: Engine) -> None:
    """No snapshot outlives a request: the next one sees a row committed in between."""
    factory = make_sessionmaker(committed_engine)
    kept = ReadConnections(committed_engine)
    reader = kept.open(factory)
    assert reader.scalar(select(func.count()).select_from(Customer)) == 0
    kept.release(reader)
    with factory() as writer:
        create_customer(writer, customer_in=CustomerCreate(name="新客户"), actor=ACTOR)
    reader = kept.open(factory)
    assert reader.scalar(select(func.count()).select_from(Customer)) == 1
    kept.release(reader)
    kept.dispose()


def test_concurrent_requests_get_their_own_and_at_most_keep_stay_out_of_the_pool(
    committed_engine: Engine,
) -> None:
    factory = make_sessionmaker(committed_engine)
    kept = ReadConnections(committed_engine, keep=2)
    pool = committed_engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    sessions = [kept.open(factory) for _ in range(3)]
    conns = {id(s.bind) for s in sessions}
    assert len(conns) == 3  # never one connection for two requests
    for s in sessions:
        s.scalar(select(func.count()).select_from(User))
    assert pool.checkedout() == before + 3  # type: ignore[attr-defined]
    for s in sessions:
        kept.release(s)
    assert kept.idle() == 2
    assert pool.checkedout() == before + 2  # type: ignore[attr-defined]
    kept.dispose()
    assert pool.checkedout() == before  # type: ignore[attr-defined]


def test_a_connection_a_write_or_an_open_transaction_changed_goes_back_to_the_pool(
    committed_engine: Engine,
) -> None:
    factory = make_sessionmaker(committed_engine)
    kept = ReadConnections(committed_engine)
    pool = committed_engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    # A write through the kept session (the last-seen stamp of a token does this): its
    # BEGIN IMMEDIATE option stays on the connection object, so it is not kept.
    session = kept.open(factory)
    create_customer(session, customer_in=CustomerCreate(name="写入"), actor=ACTOR)
    written = session.bind
    assert isinstance(written, Connection)
    assert written.get_execution_options()
    kept.release(session)
    assert kept.idle() == 0
    assert written.closed
    # A transaction begun on the connection behind the session's back.
    session = kept.open(factory)
    conn = session.bind
    assert isinstance(conn, Connection)
    conn.begin()
    kept.release(session)
    assert kept.idle() == 0
    assert conn.closed
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    with factory() as check:
        assert check.scalar(select(Customer.name)) == "写入"


def test_a_factory_bound_elsewhere_is_called_as_it_is(committed_engine: Engine) -> None:
    """A test's outer transaction (a sessionmaker bound to a connection) is respected."""
    kept = ReadConnections(committed_engine)
    with committed_engine.connect() as outer:
        factory = sessionmaker(bind=outer, join_transaction_mode="create_savepoint")
        session = kept.open(factory)
        assert session.bind is outer
        kept.release(session)
        assert kept.idle() == 0
        assert not outer.closed


def test_the_360_api_reuses_its_session_and_still_refuses_a_revoked_token(
    tmp_path: Path,
) -> None:
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'kept.db'}", tmp_path))
    upgrade(app.state.engine)
    with app.state.sessionmaker() as session:
        user = _agent(session, "agent1")
        customer = create_customer(
            session,
            customer_in=CustomerCreate(name="复用客户", phones=["13912345678"], owner_id=user.id),
            actor=ACTOR,
        )
    kept: ReadConnections = app.state.read_connections
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/token", json={"username": "agent1", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        answers = [
            client.get(f"/api/v1/customers/{customer.id}", headers=headers) for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert {a.json()["customer"]["phone"] for a in answers} == {"139****5678"}
        assert kept.idle() == 1
        assert client.get("/api/v1/customers/987654", headers=headers).status_code == 404
        assert kept.idle() == 1
        with app.state.sessionmaker() as session:
            revoke_token(session, secret=token, actor=ACTOR)
        assert client.get(f"/api/v1/customers/{customer.id}", headers=headers).status_code == 401
        assert kept.idle() == 1
    # The app's shutdown gave the kept connection back.
    assert kept.idle() == 0
    app.state.engine.dispose()
