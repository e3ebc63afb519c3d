"""``guanxi privacy export`` and ``guanxi privacy anonymise`` on a SQLite database."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.security import crypto
from tests.conftest import settings_for


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    # The CLI configured the cipher with the development keys: back to the tests' keys.
    crypto.configure(settings_for("sqlite://", tmp_path))


def test_export_and_anonymise_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        cid = create_customer(
            session,
            customer_in=CustomerCreate(name="周命令", phones=["+8613700007777"]),
            actor=Actor.system("test"),
        ).id

    out = tmp_path / "export.zip"
    done = runner.invoke(app, ["privacy", "export", str(cid), "--format", "csv", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.stat().st_mode & 0o777 == 0o600
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert "+8613700007777" in archive.read("customer_phone.csv").decode("utf-8-sig")
    shown = runner.invoke(app, ["privacy", "export", str(cid)])
    assert json.loads(shown.stdout)["tables"]["customer"][0]["name"] == "周命令"
    missing = runner.invoke(app, ["privacy", "export", "999999"])
    assert missing.exit_code == 1

    no_reason = runner.invoke(app, ["privacy", "anonymise", str(cid), "--reason", " ", "--yes"])
    assert no_reason.exit_code == 2
    gone = runner.invoke(app, ["privacy", "anonymise", str(cid), "--reason", "监管要求", "--yes"])
    assert gone.exit_code == 0, gone.output
    with make_sessionmaker(engine)() as session:
        assert session.get(Customer, cid).name == "***"  # type: ignore[union-attr]
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "customer", AuditEntry.actor_name == "cli")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == [
        "customer.personal_data_exported",
        "customer.personal_data_exported",
        "customer.anonymised",
    ]
    engine.dispose()
