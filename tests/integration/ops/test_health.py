"""Liveness answers without the database; readiness checks the database, the migrations and
the data directory, and names what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from guanxi.app import create_app
from guanxi.core.db import make_engine
from tests.conftest import settings_for


def test_healthz_answers_without_touching_the_database(app: Any) -> None:
    def broken() -> Any:
        raise AssertionError("liveness must not open a session")

    app.state.sessionmaker = broken
    with TestClient(app) as c:
        resp = c.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_readyz_when_everything_is_ready(client: Any) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "data_dir": "ok"},
    }


def test_readyz_names_an_unwritable_data_directory(app: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    app.state.settings.data_dir = blocker / "data"
    with TestClient(app) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {
        "status": "error",
        "checks": {"database": "ok", "migrations": "ok", "data_dir": "not writable"},
    }


def test_readyz_names_a_schema_behind_the_migrations(tmp_path: Path) -> None:
    # A database nobody migrated: it answers, but its schema is not at head.
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path))
    with TestClient(app) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {
        "status": "error",
        "checks": {
            "database": "ok",
            "migrations": "not at head (run guanxi db upgrade)",
            "data_dir": "ok",
        },
    }


def test_readyz_names_an_unreachable_database(tmp_path: Path) -> None:
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path))
    # A database file in a directory that does not exist cannot be opened.
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'gone.db'}")
    app.state.sessionmaker = sessionmaker(bind=engine)
    with TestClient(app) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {
        "status": "error",
        "checks": {
            "database": "unavailable (OperationalError)",
            "migrations": "unknown",
            "data_dir": "ok",
        },
    }
