"""``guanxi keys generate | rotate | status`` against a real database of each backend."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from guanxi.audit.models import AuditEntry
from guanxi.audit.sealing import unseal
from guanxi.audit.service import Actor
from guanxi.cli import app
from guanxi.config import get_settings
from guanxi.core.db import make_sessionmaker
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.security import crypto
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY

NEW_KEY = base64.b64encode(b"n" * 32).decode()


def _env(monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path, active: str) -> None:
    monkeypatch.setenv("GUANXI_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GUANXI_FIELD_KEYS", json.dumps({"t1": TEST_FIELD_KEY, "t2": NEW_KEY}))
    monkeypatch.setenv("GUANXI_ACTIVE_FIELD_KEY", active)
    monkeypatch.setenv("GUANXI_BLIND_INDEX_KEY", TEST_BLIND_KEY)
    get_settings.cache_clear()


def test_generate_prints_a_fresh_256_bit_key() -> None:
    first = CliRunner().invoke(app, ["keys", "generate"])
    second = CliRunner().invoke(app, ["keys", "generate"])
    assert first.exit_code == 0
    key = first.stdout.strip().splitlines()[0]
    assert len(base64.b64decode(key, validate=True)) == 32
    assert key != second.stdout.strip().splitlines()[0]


def test_rotate_then_status_shows_no_retired_key(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_cipher", crypto.cipher())
    maker = make_sessionmaker(committed_engine)
    with maker() as session:
        for n in range(3):
            create_customer(
                session,
                customer_in=CustomerCreate(
                    name=f"客户{n}", phones=[f"1380013800{n}"], email=f"c{n}@example.com"
                ),
                actor=Actor.system("test"),
            )
    runner = CliRunner()
    _env(monkeypatch, committed_engine, tmp_path, "t2")
    before = runner.invoke(app, ["keys", "status", "--check"])
    assert before.exit_code == 1
    # Per customer: a phone, an e-mail and the audit log's sealing key (audit/sealing.py).
    assert "active key t2; 9 values under other keys" in before.output
    rotated = runner.invoke(app, ["keys", "rotate", "--batch", "10"])
    assert rotated.exit_code == 0, rotated.output
    figures = json.loads(rotated.stdout.strip().splitlines()[-1])
    assert figures == {
        "active_key": "t2",
        "rotated": 9,
        "columns": {
            "audit_subject_key.audit_subject_key_enc": 3,
            "customer.email_enc": 3,
            "customer_phone.phone_enc": 3,
        },
        "concurrent_writes": 0,
        "batches": 3,
        "seconds": figures["seconds"],
        "remaining": 0,
    }
    after = runner.invoke(app, ["keys", "status", "--check"])
    assert after.exit_code == 0, after.output
    assert "active key t2; 0 values under other keys" in after.output
    with maker() as session:
        phones = session.scalars(select(CustomerPhone.phone_enc)).all()
        emails = session.scalars(select(Customer.email_enc)).all()
        assert [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))][
            -1
        ] == "keys.rotated"
    assert {(p or "").partition("$")[0] for p in [*phones, *emails]} == {"t2"}
    # The app, restarted on the new key set, reads the rotated values.
    crypto.configure(get_settings())
    assert sorted(crypto.cipher().decrypt("phone", p) for p in phones) == [
        "+8613800138000",
        "+8613800138001",
        "+8613800138002",
    ]
    # The names the audit log sealed under the rotated subject keys still read back.
    with maker() as session:
        created = session.scalars(
            select(AuditEntry.after)
            .where(AuditEntry.action == "customer.created")
            .order_by(AuditEntry.id)
        ).all()
        assert [unseal(session, (a or {})["name"]) for a in created] == ["客户0", "客户1", "客户2"]
    get_settings.cache_clear()


def test_rotate_refuses_an_unknown_column(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_cipher", crypto.cipher())
    _env(monkeypatch, committed_engine, tmp_path, "t2")
    result = CliRunner().invoke(app, ["keys", "rotate", "--column", "customer.name"])
    assert result.exit_code == 1
    assert "not an encrypted column: customer.name" in result.output
    get_settings.cache_clear()
