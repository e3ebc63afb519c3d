"""Online rotation of the field-encryption key: every value ends on the active key, a
concurrent write is never lost, a stopped run resumes, the census is exact."""

from __future__ import annotations

import base64
import random
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker, table_of
from guanxi.customers.models import CustomerPhone
from guanxi.dedupe.models import CustomerMerge
from guanxi.security import keys
from guanxi.security.crypto import FieldCipher
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY

NEW_KEY = base64.b64encode(b"n" * 32).decode()
OLD = FieldCipher({"t1": base64.b64decode(TEST_FIELD_KEY)}, "t1", base64.b64decode(TEST_BLIND_KEY))
NEW = FieldCipher(
    {"t1": base64.b64decode(TEST_FIELD_KEY), "t2": base64.b64decode(NEW_KEY)},
    "t2",
    base64.b64decode(TEST_BLIND_KEY),
)
PHONES = "customer_phone.phone_enc"
ACTOR = Actor.system("test")


def _phones(session: Session, customer_id: int, count: int) -> dict[int, str]:
    """``count`` phone rows under the old key; their ids -> plaintext."""
    table = table_of(CustomerPhone)
    plain = [f"+86138{n:08d}" for n in range(count)]
    session.execute(
        insert(table),
        [
            {
                "customer_id": customer_id,
                "position": n,
                "kind": "mobile",
                "phone_enc": OLD.encrypt("phone", p),
                "phone_bidx": OLD.blind_index("phone", p),
                "last4": p[-4:],
            }
            for n, p in enumerate(plain)
        ],
    )
    session.commit()
    ids = session.scalars(
        select(table.c.id).where(table.c.customer_id == customer_id).order_by(table.c.position)
    ).all()
    return dict(zip(ids, plain, strict=True))


def _stored(session: Session, customer_id: int) -> dict[int, str]:
    rows = session.execute(
        select(CustomerPhone.id, CustomerPhone.phone_enc).where(
            CustomerPhone.customer_id == customer_id
        )
    ).all()
    return {i: v for i, v in rows}


def _phone_counts(session: Session) -> dict[str, int]:
    return next(s.counts for s in keys.key_status(session) if s.column == PHONES)


def test_the_encrypted_columns_are_found_in_the_metadata() -> None:
    found = {e.name: e.field for e in keys.encrypted_columns()}
    assert found == {
        "app_user.totp_secret": "app_user.totp_secret",
        "customer.email_enc": "email",
        "customer.id_number_enc": "id_number",
        "customer.credit_code_enc": "credit_code",
        "webhook_endpoint.secret_enc": "webhook_secret",
        "contact_person.phone_enc": "phone",
        "contact_person.email_enc": "email",
        "customer_phone.phone_enc": "phone",
        "opportunity.contact_name_enc": "lead_name",
        "opportunity.contact_company_enc": "lead_company",
        "opportunity.contact_phone_enc": "lead_phone",
        "opportunity.contact_email_enc": "lead_email",
        "outbox_message.to_enc": "outbox_to",
        "shipment.receiver_phone_enc": "phone",
        "ticket.contact_email_enc": "email",
        "survey_response.phone_enc": "phone",
        # The audit log's per-customer sealing keys (audit/sealing.py).
        "audit_subject_key.audit_subject_key_enc": "audit_subject_key",
    }


def test_rotation_moves_every_value_and_is_audited_once(db: Session, make_customer: Any) -> None:
    customer = make_customer("王五")
    plain = _phones(db, customer.id, 25)
    assert _phone_counts(db) == {"t1": 25}
    entries_before = db.scalar(select(func.count()).select_from(AuditEntry)) or 0
    seen: list[tuple[int, int]] = []
    result = keys.rotate(
        db,
        actor=ACTOR,
        field_cipher=NEW,
        batch=10,
        columns=[PHONES],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.rotated == {PHONES: 25}
    assert (result.concurrent, result.batches) == (0, 3)
    assert seen == [(10, 25), (20, 25), (25, 25)]
    stored = _stored(db, customer.id)
    assert {v.partition("$")[0] for v in stored.values()} == {"t2"}
    assert {i: NEW.decrypt("phone", v) for i, v in stored.items()} == plain
    assert _phone_counts(db) == {"t2": 25}
    # The blind index is keyed separately and does not change.
    assert keys.pending(db, active="t2", columns=[PHONES]) == 0
    entries = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "keys.rotated").order_by(AuditEntry.id)
    ).all()
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == entries_before + 1
    assert [(e.target_type, e.target_id, e.actor_name) for e in entries] == [
        ("field_key", "t2", "test")
    ]
    assert entries[0].after == {
        "active_key": "t2",
        "rotated": 25,
        "columns": {PHONES: 25},
        "concurrent_writes": 0,
        "batches": 3,
        "seconds": (entries[0].after or {})["seconds"],
    }
    again = keys.rotate(db, actor=ACTOR, field_cipher=NEW, columns=[PHONES])
    assert (again.total, again.batches) == (0, 0)


def test_a_value_changed_between_read_and_write_is_kept(db: Session, make_customer: Any) -> None:
    customer = make_customer("赵六")
    _phones(db, customer.id, 4)
    enc = next(e for e in keys.encrypted_columns() if e.name == PHONES)
    rows = keys.select_batch(db, enc, active="t2", after=0, limit=10)
    assert len(rows) == 4
    changed_id = rows[1][0]
    newer = NEW.encrypt("phone", "+8613900000000")
    db.execute(update(CustomerPhone).where(CustomerPhone.id == changed_id).values(phone_enc=newer))
    db.commit()
    assert keys.apply_batch(db, enc, rows, NEW) == (3, 1)
    stored = _stored(db, customer.id)
    assert stored[changed_id] == newer
    assert NEW.decrypt("phone", stored[changed_id]) == "+8613900000000"
    assert _phone_counts(db) == {"t2": 4}


def test_a_stopped_run_resumes_where_it_stopped(db: Session, make_customer: Any) -> None:
    customer = make_customer("钱七")
    plain = _phones(db, customer.id, 30)

    class Killed(Exception):
        pass

    def die_after_two(done: int, total: int) -> None:
        if done >= 20:
            raise Killed

    with pytest.raises(Killed):
        keys.rotate(
            db, actor=ACTOR, field_cipher=NEW, batch=10, columns=[PHONES], progress=die_after_two
        )
    # The two committed batches stay; the killed run wrote no audit entry.
    assert _phone_counts(db) == {"t1": 10, "t2": 20}
    assert db.scalar(select(func.count()).where(AuditEntry.action == "keys.rotated")) == 0
    result = keys.rotate(db, actor=ACTOR, field_cipher=NEW, batch=10, columns=[PHONES])
    assert result.rotated == {PHONES: 10}
    assert _phone_counts(db) == {"t2": 30}
    assert {i: NEW.decrypt("phone", v) for i, v in _stored(db, customer.id).items()} == plain
    assert db.scalar(select(func.count()).where(AuditEntry.action == "keys.rotated")) == 1


def test_status_counts_each_key_and_skips_empty_values(db: Session, make_customer: Any) -> None:
    customer = make_customer("孙八")
    _phones(db, customer.id, 3)
    db.execute(
        insert(table_of(CustomerPhone)),
        [
            {
                "customer_id": customer.id,
                "position": 10 + n,
                "kind": "mobile",
                "phone_enc": NEW.encrypt("phone", f"+8613700000{n:03d}"),
                "phone_bidx": "x",
                "last4": "0000",
            }
            for n in range(2)
        ],
    )
    db.execute(
        text("UPDATE customer SET email_enc = :e WHERE id = :i"),
        {"e": OLD.encrypt("email", "sun@example.com"), "i": customer.id},
    )
    db.commit()
    statuses = {s.column: s.counts for s in keys.key_status(db)}
    assert statuses[PHONES] == {"t1": 3, "t2": 2}
    assert statuses["customer.email_enc"] == {"t1": 1}
    assert statuses["ticket.contact_email_enc"] == {}
    # The customer's audit sealing key, written when it was created (audit/sealing.py).
    assert statuses["audit_subject_key.audit_subject_key_enc"] == {"t1": 1}
    assert keys.retired_values(keys.key_status(db), "t2") == 5


def test_the_merge_records_sealed_values_are_rotated(db: Session, make_customer: Any) -> None:
    survivor, duplicate = make_customer("周九"), make_customer("周九")
    old_a, old_b = OLD.encrypt("email", "a@example.com"), OLD.encrypt("email", "b@example.com")
    db.execute(
        insert(CustomerMerge).values(
            survivor_id=survivor.id,
            merged_id=duplicate.id,
            automatic=False,
            fields={"email_enc": [old_a, old_b], "email_bidx": ["x", "y"], "name": ["a", "b"]},
            moved={},
            merged_status="active",
        )
    )
    db.commit()
    assert next(s for s in keys.key_status(db) if s.column == "customer_merge.fields").counts == {
        "t1": 2
    }
    result = keys.rotate(db, actor=ACTOR, field_cipher=NEW, columns=["customer_merge.fields"])
    assert result.rotated == {"customer_merge.fields": 1}
    fields = db.scalar(select(CustomerMerge.fields).where(CustomerMerge.survivor_id == survivor.id))
    assert fields is not None
    assert fields["email_bidx"] == ["x", "y"]
    assert fields["name"] == ["a", "b"]
    assert [v.partition("$")[0] for v in fields["email_enc"]] == ["t2", "t2"]
    assert [NEW.decrypt("email", v) for v in fields["email_enc"]] == [
        "a@example.com",
        "b@example.com",
    ]


def test_a_value_no_key_opens_stops_the_run_before_writing(db: Session, make_customer: Any) -> None:
    customer = make_customer("吴十")
    _phones(db, customer.id, 3)
    stranger = FieldCipher({"zz": b"z" * 32}, "zz", b"b" * 32).encrypt("phone", "+8613600000000")
    db.execute(
        update(CustomerPhone)
        .where(CustomerPhone.customer_id == customer.id, CustomerPhone.position == 2)
        .values(phone_enc=stranger)
    )
    db.commit()
    with pytest.raises(keys.RotationError, match=r"customer_phone.phone_enc id \d+: .*'zz'"):
        keys.rotate(db, actor=ACTOR, field_cipher=NEW, columns=[PHONES])
    assert _phone_counts(db) == {"t1": 2, "zz": 1}
    with pytest.raises(ValueError, match="not an encrypted column: customer.name"):
        keys.rotate(db, actor=ACTOR, field_cipher=NEW, columns=["customer.name"])


@pytest.mark.parametrize("workers", [1, 2])
def test_rotation_beside_a_writer_loses_no_update(committed_engine: Engine, workers: int) -> None:
    """A thread keeps changing phones (as the restarted app would, with the new key) while
    rotation runs in batches of 5 (on one worker, or on two each taking half the ids):
    every value ends on the new key and holds the plaintext written last."""
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer

    maker = make_sessionmaker(committed_engine)
    with maker() as session:
        customer = create_customer(session, customer_in=CustomerCreate(name="郑一"), actor=ACTOR)
        latest = _phones(session, customer.id, 120)
    ids = sorted(latest)
    done = threading.Event()
    writes = 0
    errors: list[BaseException] = []

    def writer() -> None:
        nonlocal writes
        rng = random.Random(7)
        try:
            with committed_engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                while not done.is_set() or writes < 60:
                    row_id = rng.choice(ids)
                    number = f"+86139{rng.randrange(10**8):08d}"
                    with conn.begin():
                        conn.execute(
                            update(CustomerPhone)
                            .where(CustomerPhone.id == row_id)
                            .values(phone_enc=NEW.encrypt("phone", number))
                        )
                    latest[row_id] = number
                    writes += 1
        except BaseException as exc:  # surfaced in the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with maker() as session:
            result = keys.rotate(
                session,
                actor=ACTOR,
                field_cipher=NEW,
                batch=5,
                columns=[PHONES],
                workers=workers,
            )
    finally:
        done.set()
        thread.join(timeout=60)
    assert errors == []
    assert writes >= 60
    with maker() as session:
        stored = _stored(session, customer.id)
        assert _phone_counts(session) == {"t2": 120}
    assert {i: NEW.decrypt("phone", v) for i, v in stored.items()} == latest
    # Values the writer had already moved to the new key were not selected again.
    assert result.rotated[PHONES] <= 120


def test_two_workers_split_each_column_and_rotate_every_value_once(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two workers each column's ids are cut in two contiguous halves, each rotated
    by its own thread and connection: every value once, one audit entry."""
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer

    maker = make_sessionmaker(committed_engine)
    with maker() as session:
        customer_id = create_customer(
            session, customer_in=CustomerCreate(name="卫三"), actor=ACTOR
        ).id
        plain = _phones(session, customer_id, 300)
        low, high = min(plain), max(plain)
        enc = next(e for e in keys.encrypted_columns() if e.name == PHONES)
        stripes = keys._stripes(session, enc, 2, 10)
    width = (high - low + 2) // 2
    assert [(s.after, s.until) for s in stripes] == [
        (low - 1, low - 1 + width),
        (low - 1 + width, None),
    ]
    seen: dict[str, set[int]] = {}
    real_apply = keys.apply_batch
    # Each thread's first batch waits for the other's: both stripes are under way at
    # once, and a pool that let one idle thread take both would fail here, not by luck.
    both_started = threading.Barrier(2, timeout=30)

    def recording_apply(
        session: Session, enc: keys.EncryptedColumn, rows: Any, c: FieldCipher
    ) -> tuple[int, int]:
        if enc.name == PHONES:
            name = threading.current_thread().name
            if name not in seen:
                seen[name] = set()
                both_started.wait()
            seen[name].update(i for i, _ in rows)
        return real_apply(session, enc, rows, c)

    monkeypatch.setattr(keys, "apply_batch", recording_apply)
    with maker() as session:
        result = keys.rotate(
            session, actor=ACTOR, field_cipher=NEW, batch=10, columns=[PHONES], workers=2
        )
        stored = _stored(session, customer_id)
        assert _phone_counts(session) == {"t2": 300}
        entries = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "keys.rotated")
        )
    assert (result.rotated, result.concurrent) == ({PHONES: 300}, 0)
    if committed_engine.dialect.name == "sqlite":
        assert result.batches == 30  # on PostgreSQL it follows the rows' pages
    assert entries == 1
    # Two threads, each its own half, no id twice.
    halves = sorted(seen.values(), key=min)
    assert len(halves) == 2
    assert halves[0] == set(range(low, low + width)) & set(plain)
    assert halves[1] == set(plain) - halves[0]
    assert {i: NEW.decrypt("phone", v) for i, v in stored.items()} == plain


def test_a_window_is_written_a_row_per_page_at_a_time() -> None:
    """PostgreSQL's transactions take the first row of every page, then the second, …;
    small ranks merge up to the batch, large ones are cut in equal parts; each row once."""
    window = [(i, page, f"v{i}") for i, page in enumerate([7, 7, 7, 8, 8, 9, 9, 9, 9, 10], 1)]
    spread = keys.spread_over_pages(window, 3)
    assert [[i for i, _v in t] for t in spread] == [[1, 4], [6, 10], [2, 5, 7], [3, 8, 9]]
    assert [[i for i, _v in t] for t in keys.spread_over_pages(window, 9)] == [
        [1, 4, 6, 10, 2, 5, 7, 3, 8],
        [9],
    ]
    assert keys.spread_over_pages(window, 10) == [
        [(1, "v1"), (4, "v4"), (6, "v6"), (10, "v10"), (2, "v2"), (5, "v5"), (7, "v7")]
        + [(3, "v3"), (8, "v8"), (9, "v9")]
    ]
    assert keys.spread_over_pages([], 5) == []


def test_second_factor_secrets_are_rotated(
    db: Session, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets written by the enrolment (under the old key) read back after rotation."""
    from guanxi.security import crypto, totp
    from guanxi.security.models import User

    user = make_user("agent")
    secret = totp.begin_enrolment(db, user_id=user.id)
    result = keys.rotate(db, actor=ACTOR, field_cipher=NEW, columns=["app_user.totp_secret"])
    assert result.rotated == {"app_user.totp_secret": 1}
    db.expire_all()
    stored = db.get(User, user.id)
    assert stored is not None
    assert (stored.totp_secret or "").startswith("t2$")
    monkeypatch.setattr(crypto, "_cipher", NEW)
    assert totp._secret_of(stored) == secret


def test_a_row_rewritten_under_the_old_key_meanwhile_is_rotated_too(
    db: Session, make_customer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server not yet restarted writes a row between the rotation's read and its write:
    the compare-and-set keeps that write, and the row is looked at again and rotated."""
    customer = make_customer("冯二")
    plain = _phones(db, customer.id, 6)
    target = sorted(plain)[3]
    real_apply = keys.apply_batch
    calls = 0

    def racing_apply(
        session: Session, enc: keys.EncryptedColumn, rows: Any, c: FieldCipher
    ) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            session.execute(
                update(CustomerPhone)
                .where(CustomerPhone.id == target)
                .values(phone_enc=OLD.encrypt("phone", "+8613511112222"))
            )
            session.commit()
        return real_apply(session, enc, rows, c)

    monkeypatch.setattr(keys, "apply_batch", racing_apply)
    result = keys.rotate(db, actor=ACTOR, field_cipher=NEW, batch=10, columns=[PHONES])
    assert (result.rotated, result.concurrent, result.batches, calls) == ({PHONES: 6}, 1, 2, 2)
    plain[target] = "+8613511112222"
    assert {i: NEW.decrypt("phone", v) for i, v in _stored(db, customer.id).items()} == plain
    assert _phone_counts(db) == {"t2": 6}
