"""Shared fixtures: databases on SQLite and PostgreSQL, savepoint-isolated sessions,
factories for users and customers, and an app bound to the test's transaction.

Every test that asks for ``db`` runs twice, once per backend. PostgreSQL comes from
``GUANXI_TEST_PG_URL`` (``scripts/test`` starts a server on 127.0.0.1); without it the
PostgreSQL variants are skipped locally and fail under CI.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from guanxi import domains
from guanxi.audit.service import Actor
from guanxi.config import Environment, Settings
from guanxi.core.db import make_engine
from guanxi.core.migrate import upgrade
from guanxi.security import crypto

TEST_FIELD_KEY = base64.b64encode(b"k" * 32).decode()
TEST_BLIND_KEY = base64.b64encode(b"b" * 32).decode()
PASSWORD = "correct horse battery"

domains.load()


def settings_for(database_url: str, data_dir: Path) -> Settings:
    """Settings with fixed test keys (so ciphertexts from fixtures decrypt in the app)."""
    return Settings(
        env=Environment.test,
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret",
        field_keys={"t1": TEST_FIELD_KEY},
        active_field_key="t1",
        blind_index_key=TEST_BLIND_KEY,
        # The fixtures' administrators sign in without enrolling a second factor; the
        # tests of the rule (tests/integration/security/test_second_factor.py) turn it on.
        admin_second_factor=False,
    )


@pytest.fixture(scope="session", autouse=True)
def _cipher(tmp_path_factory: pytest.TempPathFactory) -> None:
    crypto.configure(settings_for("sqlite://", tmp_path_factory.mktemp("keys")))


def _pg_base_url() -> str | None:
    return os.environ.get("GUANXI_TEST_PG_URL")


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("db") / "test.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


def empty_pg_database(prefix: str = "guanxi_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the test server, dropped after."""
    base = _pg_base_url()
    if not base:
        if os.environ.get("CI"):
            pytest.fail("GUANXI_TEST_PG_URL is not set: run the suite with scripts/test")
        pytest.skip("PostgreSQL not configured (GUANXI_TEST_PG_URL); scripts/test starts one")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _new_pg_database() -> Iterator[Engine]:
    for url in empty_pg_database():
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema: what runs against it migrates it)."""
    yield from empty_pg_database("guanxi_empty")


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    yield from _new_pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh migrated database whose commits are real (for concurrency tests)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'committed.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
    else:
        yield from _new_pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated database of each backend."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Any]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session_factory(connection: Any) -> sessionmaker[Session]:
    """Sessions joined to the test's outer transaction; their commits become savepoints."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose every change is rolled back after the test."""
    session = session_factory()
    try:
        yield session
    finally:
        session.close()


# --------------------------------------------------------------------------- factories


@pytest.fixture
def make_user(db: Session) -> Any:
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    def factory(role: str = "agent", username: str | None = None, **kw: Any) -> Any:
        return create_user(
            db,
            user_in=UserCreate(
                username=username or f"{role}_{uuid.uuid4().hex[:6]}",
                display_name=kw.pop("display_name", role),
                role=role,  # type: ignore[arg-type]
                password=kw.pop("password", PASSWORD),
                **kw,
            ),
            actor=Actor.system("test"),
        )

    return factory


@pytest.fixture
def make_customer(db: Session) -> Any:
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer

    def factory(name: str = "张三丰", actor: Any = None, **kw: Any) -> Any:
        return create_customer(
            db, customer_in=CustomerCreate(name=name, **kw), actor=actor or Actor.system("test")
        )

    return factory


# --------------------------------------------------------------------------- app


@pytest.fixture
def app(session_factory: sessionmaker[Session], engine: Engine, tmp_path: Path) -> Any:
    """The real app, its sessions bound to the test's transaction."""
    from guanxi.app import create_app

    application = create_app(
        settings_for(engine.url.render_as_string(hide_password=False), tmp_path)
    )
    application.state.engine.dispose()
    application.state.sessionmaker = session_factory
    return application


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def login(client: Any, make_user: Any) -> Any:
    """Create a user of ``role`` and return (user, auth headers for the API)."""

    def do(role: str = "agent", **kw: Any) -> tuple[Any, dict[str, str]]:
        user = make_user(role, **kw)
        resp = client.post(
            "/api/v1/auth/token", json={"username": user.username, "password": PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        return user, {"Authorization": f"Bearer {resp.json()['access_token']}"}

    return do


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Benchmark-sized tests (``@pytest.mark.slow``) run only with GUANXI_SLOW=1: CI runs
    a representative size and stays well under its time budget."""
    if os.environ.get("GUANXI_SLOW", "") in ("1", "true", "yes"):
        return
    skip = pytest.mark.skip(reason="slow: set GUANXI_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
