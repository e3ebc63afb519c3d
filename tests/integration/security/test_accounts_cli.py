"""``guanxi user unlock`` and ``guanxi user reset-second-factor``: the way back in when no
administrator can sign in, against a real database of each backend."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker, write_transaction
from guanxi.security import crypto, totp
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD, TEST_BLIND_KEY, TEST_FIELD_KEY


def test_unlock_and_reset_second_factor(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_cipher", crypto.cipher())
    maker = make_sessionmaker(committed_engine)
    with maker() as session:
        user = create_user(
            session,
            user_in=UserCreate(
                username="boss", display_name="老板", role="admin", password=PASSWORD
            ),
            actor=Actor.system("test"),
        )
        secret = totp.begin_enrolment(session, user_id=user.id)
        assert totp.confirm_enrolment(
            session, user_id=user.id, code=pyotp.TOTP(secret).now(), actor=Actor.system("test")
        )
        with write_transaction(session):
            row = session.get(User, user.id)
            row.locked_until = clock.now() + timedelta(minutes=15)
            row.lockouts = 1
        user_id = user.id
    monkeypatch.setenv(
        "GUANXI_DATABASE_URL", committed_engine.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GUANXI_FIELD_KEYS", json.dumps({"t1": TEST_FIELD_KEY}))
    monkeypatch.setenv("GUANXI_ACTIVE_FIELD_KEY", "t1")
    monkeypatch.setenv("GUANXI_BLIND_INDEX_KEY", TEST_BLIND_KEY)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        missing = runner.invoke(app, ["user", "unlock", "nobody"])
        assert missing.exit_code == 1
        unlocked = runner.invoke(app, ["user", "unlock", "boss"])
        assert unlocked.exit_code == 0, unlocked.output
        reset = runner.invoke(app, ["user", "reset-second-factor", "boss"])
        assert reset.exit_code == 0, reset.output
    finally:
        get_settings.cache_clear()
    with maker() as session:
        row = session.get(User, user_id)
        assert (row.locked_until, row.lockouts, row.totp_secret, row.totp_enabled_at) == (
            None,
            0,
            None,
            None,
        )
        entries = session.execute(
            select(AuditEntry.action, AuditEntry.actor_name)
            .where(AuditEntry.target_id == str(user_id), AuditEntry.actor_name == "cli")
            .order_by(AuditEntry.id)
        ).all()
        assert [tuple(e) for e in entries] == [
            ("user.unlocked", "cli"),
            ("user.second_factor_reset", "cli"),
        ]
