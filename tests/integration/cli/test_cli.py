"""The ``guanxi`` command on a real database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.security.models import User


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_db_upgrade_and_user_create(db_url: str) -> None:
    runner = CliRunner()
    up = runner.invoke(app, ["db", "upgrade"])
    assert up.exit_code == 0, up.output
    created = runner.invoke(
        app,
        ["user", "create", "lina", "--role", "agent", "--display-name", "李娜", "--password-stdin"],
        input="a-long-password\n",
    )
    assert created.exit_code == 0, created.output
    assert "created user lina (agent)" in created.output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            select(User.username, User.display_name, User.role, User.password_hash)
        ).one()
    engine.dispose()
    assert row[:3] == ("lina", "李娜", "agent")
    assert row[3].startswith("$argon2id$")
    assert "a-long-password" not in row[3]

    duplicate = runner.invoke(
        app,
        ["user", "create", "lina", "--role", "agent", "--password-stdin"],
        input="another-password\n",
    )
    assert duplicate.exit_code == 1
    bad_role = runner.invoke(
        app,
        ["user", "create", "x1", "--role", "boss", "--password-stdin"],
        input="another-password\n",
    )
    assert bad_role.exit_code == 2
    assert "role" in bad_role.output
    short = runner.invoke(
        app, ["user", "create", "x2", "--role", "agent", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 2
    assert "password" in short.output
