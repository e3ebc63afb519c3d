"""``guanxi audit verify`` on a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from guanxi.audit.service import Actor, record
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade


def test_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        for n in range(4):
            record(session, actor=Actor.system("t"), action="x.done", target_type="x", target_id=n)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "4 entries" in ok.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET action = 'x.undone' WHERE id = 2"))
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry 2" in broken.output
    engine.dispose()
    get_settings.cache_clear()
