"""``guanxi care run`` on a real database file: a dry run counts, a run queues, a second run
of the day queues nothing; a bad date is refused naming the option."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from guanxi.audit.service import Actor
from guanxi.care import service
from guanxi.care.models import CareRule
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core.db import make_engine, make_sessionmaker, write_transaction
from guanxi.core.migrate import upgrade
from guanxi.customers.consent import Purpose, grant_many
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.notify.models import OutboxMessage
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_care_run_from_the_shell(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with make_sessionmaker(engine)() as s:
        actor = Actor.system("test")
        admin = create_user(
            s,
            user_in=UserCreate(
                username="careadmin", display_name="a", role="admin", password="long enough 1"
            ),  # type: ignore[arg-type]
            actor=actor,
        )
        customer = create_customer(
            s,
            customer_in=CustomerCreate(name="命令行", phones=["13912340071"]),  # type: ignore[call-arg]
            actor=actor,
        )
        with write_transaction(s):
            grant_many(
                s,
                [customer.id],
                [Purpose.marketing_sms],
                source="demo",
                at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        rule_id = s.scalar(select(CareRule.id).where(CareRule.name == "国庆问候"))
        assert rule_id is not None
        service.set_enabled(s, rule_id=rule_id, enabled=True, actor=admin)
    runner = CliRunner()

    def queued() -> int:
        with make_sessionmaker(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0)

    dry = runner.invoke(app, ["care", "run", "--date", "2026-10-01", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "国庆问候" in dry.output
    assert "dry_run" in dry.output
    assert queued() == 0
    real = runner.invoke(app, ["care", "run", "--date", "2026-10-01"])
    assert real.exit_code == 0, real.output
    assert queued() == 1
    again = runner.invoke(app, ["care", "run", "--date", "2026-10-01"])
    assert "skipped" in again.output
    assert queued() == 1
    bad = runner.invoke(app, ["care", "run", "--date", "2026-13-01"])
    assert bad.exit_code == 2
    assert "--date" in bad.output
    engine.dispose()
    assert date(2026, 10, 1).isoformat() in real.output
