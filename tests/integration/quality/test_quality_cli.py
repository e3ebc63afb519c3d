"""``guanxi quality report`` on a real database file: JSON, tables in both languages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guanxi.cli import _engine, app
from guanxi.config import get_settings
from guanxi.core.db import make_sessionmaker
from guanxi.security import crypto
from guanxi.security.models import User
from tests.conftest import settings_for
from tests.integration.quality.base import build_base


@pytest.fixture
def cli_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    monkeypatch.setenv("GUANXI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    # The same engine set-up and keys as the command's, so blind indexes agree.
    engine = _engine()
    with make_sessionmaker(engine)() as session:
        owner = User(username="owner", display_name="owner", role="sales", password_hash="x")
        session.add(owner)
        session.commit()
        ids = build_base(session, owner_id=owner.id)
    engine.dispose()
    yield ids
    get_settings.cache_clear()
    # The command configured its own keys; later tests expect the suite's test keys.
    crypto.configure(settings_for("sqlite://", tmp_path))


def test_json_report(cli_base: dict[str, int]) -> None:
    result = CliRunner().invoke(app, ["quality", "report", "--json", "--stale-months", "12"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # The command reports as of the real today (UTC); the base's dates are in the past.
    assert date.fromisoformat(report["today"]) >= date(2025, 6, 15)
    assert report["totals"]["active"] == 10
    assert report["totals"]["archived"] == 1
    fields = {
        f["field"]: (f["filled"], f["applicable"], f["percent"]) for f in report["completeness"]
    }
    assert fields["phone"] == (6, 10, 60.0)
    assert fields["id_number"] == (2, 7, 28.6)
    assert fields["contacts"] == (1, 3, 33.3)
    invalid = {i["rule"]: (i["count"], i["examples"]) for i in report["invalid"]}
    assert invalid["junk_name"] == (2, [cli_base["c4"], cli_base["c5"]])
    assert invalid["birthday_future"] == (1, [cli_base["c2"]])
    dups = {d["rule"]: (d["groups"], d["customers"], d["examples"]) for d in report["duplicates"]}
    assert dups["phone"] == (
        1,
        2,
        [{"size": 2, "customer_ids": [cli_base["c1"], cli_base["c2"]]}],
    )
    assert report["stale"]["months"] == 12
    # Only ids and figures: no name, phone or e-mail of the base leaks into the report.
    for secret in ("张三", "13912345678", "example.com", "杭州快运"):
        assert secret not in result.stdout


def test_tables_in_both_languages(cli_base: dict[str, int]) -> None:
    runner = CliRunner()
    en = runner.invoke(app, ["quality", "report", "--lang", "en"])
    assert en.exit_code == 0, en.output
    for text in ("Completeness", "Invalid or suspicious values", "Suspected duplicates"):
        assert text in en.stdout
    assert f"#{cli_base['c3']}" in en.stdout
    zh = runner.invoke(app, ["quality", "report", "--lang", "zh_CN"])
    assert zh.exit_code == 0, zh.output
    for text in ("数据质量", "完整性", "疑似重复", "陈旧客户档案"):
        assert text in zh.stdout
    assert "Completeness" not in zh.stdout


def test_bad_options(cli_base: dict[str, int]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["quality", "report", "--lang", "fr"]).exit_code == 2
    assert runner.invoke(app, ["quality", "report", "--stale-months", "0"]).exit_code == 2
