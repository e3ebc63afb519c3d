"""``guanxi retention preview|run|report`` on a real database file, and the demo's purge
(the report the retention page shows after ``guanxi demo``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.privacy import retention
from guanxi.privacy.retention_models import RetentionRun
from guanxi.security.models import User, UserToken
from tests.conftest import settings_for


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_preview_run_and_report(db_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = create_engine(db_url)
    old = clock.now() - timedelta(days=45)
    with Session(engine) as session:
        user = User(username="u1", display_name="u1", role="agent", password_hash="x")
        session.add(user)
        session.flush()
        session.add(UserToken(user_id=user.id, kind="web", token_hash="9" * 64, created_at=old,
                              expires_at=old + timedelta(hours=12)))  # fmt: skip
        session.commit()
    preview = runner.invoke(app, ["retention", "preview"])
    assert preview.exit_code == 0, preview.output
    assert "preview #1 (done)" in preview.output
    run = runner.invoke(app, ["retention", "run"])
    assert run.exit_code == 0, run.output
    assert "purge #2 (done)" in run.output
    report = runner.invoke(app, ["retention", "report", "--csv"])
    assert report.exit_code == 0, report.output
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert len(rows) == len(retention.CATEGORIES)
    tokens = next(r for r in rows if r["category"] == "sessions_tokens")
    assert (tokens["run_id"], tokens["dry_run"], tokens["rows"], tokens["finished"]) == (
        "2", "no", "1", "yes",
    )  # fmt: skip
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(UserToken)) == 0
        assert [r.trigger for r in session.scalars(select(RetentionRun))] == ["cli", "cli"]
    assert runner.invoke(app, ["retention", "report", "1"]).exit_code == 0
    missing = runner.invoke(app, ["retention", "report", "99"])
    assert missing.exit_code == 1
    assert "no such purge run" in missing.output
    engine.dispose()


def test_the_demo_purge_leaves_a_report(db: Session, engine: Any, tmp_path: Path) -> None:
    from guanxi.demo.retention import seed_retention

    settings = settings_for(engine.url.render_as_string(hide_password=False), tmp_path)
    done = seed_retention(db, settings)
    assert (done.previewed, done.rows, done.files) == (0, 0, 0)
    latest = retention.latest_run(db, dry_run=False)
    assert latest is not None
    assert (latest.trigger, latest.actor_name, latest.status) == ("demo", "demo", "done")
    assert [r.category for r in latest.report] == list(retention.CATEGORIES)
    assert retention.latest_run(db, dry_run=True) is not None
