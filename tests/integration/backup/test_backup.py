"""Restore drills on SQLite and PostgreSQL: real data written through the services, a
backup taken while another thread keeps writing, a restore into a fresh database and data
directory, then exact counts, an intact audit chain, decryptable personal fields and
identical attachment bytes; corrupted backups refused by ``verify`` with the reason."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, verify
from guanxi.backup.manifest import MANIFEST
from guanxi.backup.service import (
    BackupError,
    create_backup,
    list_backups,
    restore_backup,
    verify_backup,
)
from guanxi.config import Settings
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.security.crypto import cipher
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.tickets import attachments
from guanxi.tickets.models import Attachment
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.service import create_ticket
from tests.conftest import PASSWORD, settings_for
from tests.integration.tickets.test_attachments import png

PHOTO = png(width=3, pad=5000)
SEEDED = 6


@dataclass
class Installation:
    """A running installation's database and data directory, with what was written."""

    engine: Engine
    settings: Settings
    phones: dict[int, str]  # customer id -> phone as typed
    storage_key: str


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def installation(committed_engine: Engine, tmp_path: Path) -> Installation:
    """Users, customers with encrypted phones and e-mails, a ticket with a photo, and the
    audit entries all of that wrote."""
    settings = settings_for(_url(committed_engine), tmp_path / "data")
    phones: dict[int, str] = {}
    with make_sessionmaker(committed_engine)() as session:
        agent = create_user(
            session,
            user_in=UserCreate(
                username="agent", display_name="客服 李娜", role="agent", password=PASSWORD
            ),
            actor=Actor.system("test"),
        )
        for n in range(SEEDED):
            phone = f"1391234{n:04d}"
            customer = create_customer(
                session,
                customer_in=CustomerCreate(
                    name=f"备份客户{n}", phones=[phone], email=f"c{n}@example.cn"
                ),
                actor=agent,
            )
            phones[customer.id] = phone
        ticket = create_ticket(
            session,
            ticket_in=TicketCreate(
                type="complaint",
                channel="hotline",
                customer_id=next(iter(phones)),
                subject="外包装破损",
            ),
            actor=agent,
        )
        row = attachments.store(
            session,
            ticket_id=ticket.id,
            filename="破损照片.png",
            declared_type="image/png",
            stream=io.BytesIO(PHOTO),
            actor=agent,
            settings=settings,
        )
    return Installation(committed_engine, settings, phones, row.storage_key)


class Writer:
    """Creates customers in a loop on its own thread until stopped (the app at work)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self.written = 0
        self.errors: list[BaseException] = []
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with make_sessionmaker(self._engine)() as session:
                while not self._stop.is_set():
                    create_customer(
                        session,
                        customer_in=CustomerCreate(name=f"写入中{self.written}"),
                        actor=Actor.system("writer"),
                    )
                    self.written += 1
                    if self.written >= 3:
                        self._started.set()
        except BaseException as exc:  # reported by the test, never swallowed
            self.errors.append(exc)
            self._started.set()

    def __enter__(self) -> Writer:
        self._thread.start()
        # The backup starts while writes are going on, not before the first one.
        assert self._started.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.fixture
def empty_target(committed_engine: Engine, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the same kind (PostgreSQL: created on the same server)."""
    if committed_engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'guanxi.db'}"
        return
    base = _url(committed_engine)
    name = f"guanxi_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _customers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Customer)) or 0)


def test_restore_drill(installation: Installation, empty_target: str, tmp_path: Path) -> None:
    source = installation.engine
    before = _customers(source)
    with Writer(source) as writer:
        at_start = _customers(source)
        result = create_backup(installation.settings, to=tmp_path / "backups")
        at_end = _customers(source)
    assert writer.errors == []
    manifest = result.manifest
    # The copy is one snapshot taken while the writer ran: its count lies between the
    # counts seen just before and just after, and is exactly what the manifest says.
    assert before == SEEDED + 0
    assert at_start <= manifest.tables["customer"] <= at_end
    assert manifest.dialect == source.dialect.name
    assert manifest.tables["app_user"] == 1
    assert manifest.tables["attachment"] == 1
    assert manifest.alembic_revision is not None
    assert manifest.audit_head is not None
    assert manifest.active_field_key == "t1"
    rel = (
        "files/attachments/"
        f"{installation.storage_key[:2]}/{installation.storage_key[2:4]}/{installation.storage_key}"
    )
    assert sorted(manifest.files) == sorted([manifest.database_file, rel])
    assert manifest.files[rel].size == len(PHOTO)
    assert result.path.name.startswith("guanxi-")
    assert list_backups(tmp_path / "backups") == [result.path]
    assert sorted(p.name for p in result.path.iterdir()) == sorted(
        [MANIFEST, manifest.database_file, "files"]
    )
    # The key file is never part of a backup.
    assert not list(result.path.rglob("dev-keys.json"))
    # The copy is audited in the installation (after the snapshot: not in the backup).
    with Session(source) as session:
        made = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "backup.created")
        ).all()
        assert [(e.actor_name, e.target_type, e.target_id) for e in made] == [
            ("backup", "backup", result.path.name)
        ]
        assert made[0].after == {
            "rows": sum(manifest.tables.values()),
            "files": 1,
            "audit_head": manifest.audit_head.id,
        }
        assert made[0].id > manifest.audit_head.id

    check = verify_backup(result.path, installation.settings)
    assert check.problems == []
    assert check.files_checked == 2
    assert check.tables_checked == len(manifest.tables)
    assert check.audit_entries == manifest.tables["audit_log"]

    restored_dir = tmp_path / "restored-data"
    report = restore_backup(
        result.path, installation.settings, target_url=empty_target, data_dir=restored_dir
    )
    assert report.problems == []
    assert report.files_checked == 1
    assert report.audit_entries == manifest.tables["audit_log"]

    restored = make_engine(empty_target)
    try:
        with restored.connect() as conn:
            for table, expected in manifest.tables.items():
                got = conn.scalar(text(f'SELECT COUNT(*) FROM "{table}"'))  # noqa: S608
                # The restore itself is the one audit entry more.
                added = 1 if table == "audit_log" else 0
                assert (table, got) == (table, expected + added)
        with Session(restored) as session:
            count, problems = verify(session)
            assert (count, problems) == (manifest.tables["audit_log"] + 1, [])
            last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
            assert last is not None
            assert (last.action, last.target_id) == ("backup.restored", result.path.name)
            # It continues the restored chain from the manifest's head.
            assert last.prev_hash == manifest.audit_head.hash
            head_id = session.scalar(
                select(AuditEntry.id).where(AuditEntry.hash == manifest.audit_head.hash)
            )
            assert head_id == manifest.audit_head.id
            for customer_id, phone in installation.phones.items():
                stored = session.scalars(
                    select(CustomerPhone.phone_enc).where(CustomerPhone.customer_id == customer_id)
                ).all()
                assert [cipher().decrypt("phone", v) for v in stored] == [f"+86{phone}"]
                email = session.scalar(select(Customer.email_enc).where(Customer.id == customer_id))
                n = int(phone[-4:])
                assert email is not None
                assert cipher().decrypt("email", email) == f"c{n}@example.cn"
            key = session.scalar(select(Attachment.storage_key))
        assert key == installation.storage_key
        restored_settings = settings_for(empty_target, restored_dir)
        path = attachments.stored_path(installation.storage_key, restored_settings)
        assert path is not None
        assert path.read_bytes() == PHOTO
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        restored.dispose()


def test_restore_refuses_a_target_with_data(installation: Installation, tmp_path: Path) -> None:
    result = create_backup(installation.settings, to=tmp_path / "backups")
    with make_sessionmaker(installation.engine)() as session:
        create_customer(
            session, customer_in=CustomerCreate(name="备份之后"), actor=Actor.system("test")
        )
    after = _customers(installation.engine)
    with pytest.raises(BackupError, match="the target is not empty"):
        restore_backup(result.path, installation.settings)
    assert _customers(installation.engine) == after == SEEDED + 1
    # --force: the installation goes back to the backup's state, rows and files.
    (Path(installation.settings.data_dir) / "attachments" / "stray.bin").write_bytes(b"x")
    report = restore_backup(result.path, installation.settings, force=True)
    assert report.problems == []
    assert _customers(installation.engine) == SEEDED
    files = sorted(
        p.name
        for p in (Path(installation.settings.data_dir) / "attachments").rglob("*")
        if p.is_file()
    )
    assert files == [installation.storage_key]


def test_restore_refuses_other_keys_kinds_and_versions(
    installation: Installation, tmp_path: Path
) -> None:
    result = create_backup(installation.settings, to=tmp_path / "backups")
    other = installation.settings.model_copy(
        update={"field_keys": {"t2": "a" * 43 + "="}, "active_field_key": "t2"}
    )
    with make_sessionmaker(installation.engine)() as session:
        create_customer(
            session, customer_in=CustomerCreate(name="备份之后"), actor=Actor.system("test")
        )
    # Refused before anything is touched, even with --force: the data would not decrypt.
    with pytest.raises(BackupError, match="field key 't1' .active when the backup was made"):
        restore_backup(result.path, other, force=True)
    assert _customers(installation.engine) == SEEDED + 1
    # Nor into a database of the other kind.
    other_kind = (
        "postgresql+psycopg://nobody@127.0.0.1:1/none"
        if result.manifest.dialect == "sqlite"
        else f"sqlite:///{tmp_path / 'x.db'}"
    )
    with pytest.raises(BackupError, match=f"a {result.manifest.dialect} backup cannot be"):
        restore_backup(result.path, installation.settings, target_url=other_kind)
    assert not (tmp_path / "x.db").exists()
    # Nor a backup made by a newer version (a schema this code cannot run on).
    doc = json.loads((result.path / MANIFEST).read_text(encoding="utf-8"))
    doc["alembic_revision"] = "9999"
    (result.path / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(BackupError, match="schema revision 9999 is unknown to Guanxi"):
        restore_backup(result.path, installation.settings, force=True)
    assert _customers(installation.engine) == SEEDED + 1


def test_verify_refuses_a_corrupted_backup(installation: Installation, tmp_path: Path) -> None:
    result = create_backup(installation.settings, to=tmp_path / "backups")
    manifest = result.manifest
    key = installation.storage_key
    rel = f"files/attachments/{key[:2]}/{key[2:4]}/{key}"
    photo = result.path / rel

    # One byte changed.
    data = bytearray(photo.read_bytes())
    data[100] ^= 0x01
    photo.write_bytes(bytes(data))
    report = verify_backup(result.path, installation.settings)
    assert report.problems == [f"{rel}: checksum mismatch (changed or corrupted)"]

    # A missing file.
    photo.unlink()
    report = verify_backup(result.path, installation.settings)
    assert report.problems == [f"{rel}: missing"]
    photo.write_bytes(PHOTO)
    assert verify_backup(result.path, installation.settings).problems == []

    # The database copy changed by one byte.
    dump = result.path / manifest.database_file
    raw = bytearray(dump.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    dump.write_bytes(bytes(raw))
    report = verify_backup(result.path, installation.settings)
    assert report.problems == [
        f"{manifest.database_file}: checksum mismatch (changed or corrupted)"
    ]
    raw[len(raw) // 2] ^= 0xFF
    dump.write_bytes(bytes(raw))

    # A file slipped in.
    (result.path / "files" / "attachments" / "extra.bin").write_bytes(b"x")
    report = verify_backup(result.path, installation.settings)
    assert report.problems == ["files/attachments/extra.bin: not in the manifest"]
    (result.path / "files" / "attachments" / "extra.bin").unlink()

    # The figures disagree with what the database copy holds: found by the trial restore.
    doc = json.loads((result.path / MANIFEST).read_text(encoding="utf-8"))
    real = doc["tables"]["customer"]
    doc["tables"]["customer"] = real + 1
    (result.path / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    report = verify_backup(result.path, installation.settings)
    assert report.problems == [f"table customer: {real} rows, the manifest says {real + 1}"]

    # No manifest: not a (complete) backup.
    (result.path / MANIFEST).unlink()
    report = verify_backup(result.path, installation.settings)
    assert report.problems == ["manifest.json missing: not a complete backup"]
    with pytest.raises(BackupError, match="manifest.json missing"):
        restore_backup(result.path, installation.settings, force=True)


def test_keep_prunes_old_backups(installation: Installation, tmp_path: Path) -> None:
    to = tmp_path / "backups"
    first = create_backup(installation.settings, to=to).path
    second = create_backup(installation.settings, to=to).path
    third = create_backup(installation.settings, to=to, keep=2)
    assert third.pruned == [first]
    assert list_backups(to) == [second, third.path]
