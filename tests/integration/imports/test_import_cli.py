"""``guanxi import`` / ``guanxi export`` on a real database file: exit statuses and reports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guanxi.cli import app
from guanxi.config import get_settings


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GUANXI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_exit_statuses_and_json_report(cli_db: Path) -> None:
    runner = CliRunner()
    good = _csv(cli_db / "good.csv", [["客户名称", "手机"], ["张三", "13912345678"]])
    result = runner.invoke(app, ["import", "customers", str(good), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["imported"], report["updated"], report["rejected"], report["errors"]) == (
        1,
        0,
        0,
        [],
    )

    mixed = _csv(
        cli_db / "mixed.csv", [["客户名称", "手机"], ["李四", "13812345678"], ["王五", "123"]]
    )
    errors_csv = cli_db / "errors.csv"
    result = runner.invoke(
        app, ["import", "customers", str(mixed), "--json", "--errors-csv", str(errors_csv)]
    )
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert (report["imported"], report["rejected"]) == (1, 1)
    assert report["errors"] == [
        {"row": 3, "column": "手机", "value": "***", "code": "phone_invalid",
         "message": "Not a valid phone number"},
    ]  # fmt: skip
    with errors_csv.open(encoding="utf-8-sig") as fh:
        assert list(csv.reader(fh)) == [
            ["row", "column", "value", "code", "message"],
            ["3", "手机", "***", "phone_invalid", "Not a valid phone number"],
        ]

    junk = cli_db / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02\x03" * 100)
    result = runner.invoke(app, ["import", "customers", str(junk), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "file_binary"
    assert runner.invoke(app, ["import", "customers", str(cli_db / "none.csv")]).exit_code == 2

    dry = runner.invoke(app, ["import", "customers", str(mixed), "--dry-run", "--json"])
    assert dry.exit_code == 3
    assert json.loads(dry.stdout)["status"] == "validated"


def test_export_command(cli_db: Path) -> None:
    runner = CliRunner()
    good = _csv(
        cli_db / "good.csv", [["客户编号", "客户名称", "手机"], ["A1", "张三", "13912345678"]]
    )
    assert runner.invoke(app, ["import", "customers", str(good)]).exit_code == 0
    out = cli_db / "out.csv"
    result = runner.invoke(app, ["export", "customers", "--output", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["系统编号", "客户编号", "客户名称", "客户类型", "手机"]
    assert rows[1][1:5] == ["A1", "张三", "个人客户", "139****5678"]
    refused = runner.invoke(app, ["export", "customers", "--output", str(out), "--reveal"])
    assert refused.exit_code == 2
    bad_filter = runner.invoke(
        app, ["export", "customers", "--output", str(out), "--filter", "shoe=42"]
    )
    assert bad_filter.exit_code == 2
    xlsx = cli_db / "s.xlsx"
    result = runner.invoke(
        app, ["export", "shipments", "--format", "xlsx", "--output", str(xlsx), "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    assert xlsx.read_bytes()[:2] == b"PK"


def test_new_customers_are_checked_for_duplicates(cli_db: Path) -> None:
    runner = CliRunner()
    first = _csv(cli_db / "first.csv", [["客户名称", "手机"], ["张三丰", "13912345678"]])
    report = json.loads(runner.invoke(app, ["import", "customers", str(first), "--json"]).stdout)
    assert report["duplicates"] == {"checked": 1, "auto_merged": 0, "queued": 0}
    # The same person from another channel, in traditional characters, plus a stranger.
    second = _csv(
        cli_db / "second.csv",
        [["客户名称", "手机"], ["張三豐", "139 1234 5678"], ["李四", "13812345678"]],
    )
    result = runner.invoke(app, ["import", "customers", str(second), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == 2
    assert report["duplicates"] == {"checked": 2, "auto_merged": 1, "queued": 0}
    off = _csv(cli_db / "third.csv", [["客户名称", "手机"], ["王五", "13712345678"]])
    quiet = json.loads(
        runner.invoke(app, ["import", "customers", str(off), "--json", "--no-dedupe"]).stdout
    )
    assert (quiet["imported"], quiet["duplicates"]) == (1, None)
