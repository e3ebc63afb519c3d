"""How pg_dump / pg_restore are called: connection options on the command line, the
password and libpq options only in their environment."""

from __future__ import annotations

import pytest

from guanxi.backup.service import BackupError, _pg_connection, dialect_of


def test_password_goes_to_the_environment_only() -> None:
    args, env = _pg_connection(
        "postgresql+psycopg://guanxi:s3cret%40pw@db.example.cn:6432/crm?sslmode=verify-full"
    )
    assert args == [
        "--no-password",
        "--host",
        "db.example.cn",
        "--port",
        "6432",
        "--username",
        "guanxi",
        "--dbname",
        "crm",
    ]
    assert not any("s3cret" in a for a in args)
    assert env["PGPASSWORD"] == "s3cret@pw"
    assert env["PGSSLMODE"] == "verify-full"


def test_without_a_password_libpq_finds_it_as_for_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The app's own connections (libpq) read PGPASSWORD / ~/.pgpass: so do the programs.
    monkeypatch.setenv("PGPASSWORD", "from-the-service-environment")
    args, env = _pg_connection("postgresql+psycopg://postgres@/crm?host=/run/postgresql")
    assert args == ["--no-password", "--username", "postgres", "--dbname", "crm"]
    assert env["PGPASSWORD"] == "from-the-service-environment"
    assert env["PGHOST"] == "/run/postgresql"


def test_dialects() -> None:
    assert dialect_of("sqlite:///x.db") == "sqlite"
    assert dialect_of("postgresql+psycopg://u@h/d") == "postgresql"
    with pytest.raises(BackupError, match="unsupported database 'mysql'"):
        dialect_of("mysql://u@h/d")
