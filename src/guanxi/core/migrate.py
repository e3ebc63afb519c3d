"""Running Alembic migrations from code (the CLI's ``guanxi db upgrade`` and tests)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("guanxi") / "migrations"))
    cfg.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


# Advisory lock id held while migrating a PostgreSQL database.
_MIGRATION_LOCK = 0x6775_6D67


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``.

    Several app servers may start at once against one PostgreSQL database: each takes a
    transaction-scoped advisory lock first, so one migrates while the others wait and then
    find the schema at ``revision`` (nothing left to do) instead of racing to create the
    same tables. On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (the write lock)
    for the same reason.
    """
    with engine.connect() as conn, conn.execution_options(sqlite_begin="IMMEDIATE").begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
