"""``guanxi backup create | verify | restore`` on a real SQLite installation: exit codes,
the reason printed, the path on stdout for scripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guanxi.cli import app
from guanxi.config import get_settings


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


@pytest.fixture
def installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GUANXI_DATABASE_URL", f"sqlite:///{tmp_path / 'guanxi.db'}")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(
        app, ["user", "create", "lina", "--role", "agent", "--password-stdin"],
        input="a-long-password\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    yield tmp_path
    get_settings.cache_clear()


def test_create_verify_restore(installation: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["backup", "create", "--to", str(installation / "backups")])
    assert created.exit_code == 0, created.output
    path = Path(created.stdout.strip().splitlines()[-1])
    assert path.parent == installation / "backups"
    assert (path / "manifest.json").is_file()
    assert "backup written" in created.stderr

    verified = runner.invoke(app, ["backup", "verify", str(path)])
    assert verified.exit_code == 0, verified.output
    assert "backup verified" in flat(verified.output)

    refused = runner.invoke(app, ["backup", "restore", str(path)])
    assert refused.exit_code == 1
    assert "the target is not empty" in flat(refused.output)
    restored = runner.invoke(app, ["backup", "restore", str(path), "--force"])
    assert restored.exit_code == 0, restored.output
    assert "restore complete" in flat(restored.output)

    (path / "database.sqlite3").write_bytes(b"not a database")
    broken = runner.invoke(app, ["backup", "verify", str(path)])
    assert broken.exit_code == 1
    assert "database.sqlite3: checksum mismatch (changed or corrupted)" in flat(broken.output)
    assert "backup NOT usable" in flat(broken.output)

    missing = runner.invoke(app, ["backup", "verify", str(installation / "nowhere")])
    assert missing.exit_code == 1
    assert "not a backup directory" in flat(missing.output)
