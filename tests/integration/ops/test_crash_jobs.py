"""kill -9 in the middle of the three long batch jobs, then the same command run again to
completion, on SQLite and PostgreSQL:

* ``guanxi import customers`` (batches of rows, resumable),
* ``guanxi dedupe run`` while it merges the sure pairs (a hundred merges a transaction),
* ``guanxi loyalty accrue`` (chunks of shipments behind a watermark).

Each job is a real CLI process, killed with SIGKILL at a random point after it has
committed some of its work (the database is polled). Asserted after the kill: nothing
half-written (every customer has its phone and address; every merge applied whole or not
at all; every ledger row belongs to a member whose balance is the ledger's sum); after the
re-run: the final state equals, row for row, the same job run once uninterrupted on a twin
database of the same backend, and the audit chain verifies.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, verify
from guanxi.core.db import make_engine
from guanxi.core.migrate import upgrade
from guanxi.customers.models import Customer, CustomerAddress, CustomerPhone, SearchToken
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.dedupe.models import CustomerMerge, DuplicatePair
from guanxi.imports.enums import ImportKind
from guanxi.imports.models import ImportJob
from guanxi.imports.service import run_import
from guanxi.loyalty.accrual import watermark
from guanxi.loyalty.ledger import verify_balances
from guanxi.loyalty.models import LoyaltyMember, PointsEntry
from guanxi.shipments.models import Shipment
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY, _new_pg_database

SRC = Path(__file__).resolve().parents[3] / "src"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰海燕"
CITIES = ["杭州市西湖区", "宁波市鄞州区", "温州市鹿城区", "苏州市姑苏区", "南京市玄武区"]


# --------------------------------------------------------------------------- databases


@pytest.fixture(params=["sqlite", "postgresql"])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two fresh migrated databases of one backend: the crashed run's and the reference."""
    if request.param == "sqlite":
        engines = []
        for name in ("crashed", "reference"):
            engine = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
            upgrade(engine)
            engines.append(engine)
        yield engines[0], engines[1]
        for engine in engines:
            engine.dispose()
    else:
        first, second = _new_pg_database(), _new_pg_database()
        yield next(first), next(second)
        for gen in (first, second):
            # Runs the generator's teardown (dispose, DROP DATABASE).
            next(gen, None)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _cli(engine: Engine, data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """``guanxi <args>`` on ``engine``'s database, with the test process's field keys."""
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "GUANXI_ENV": "test",
        "GUANXI_DATABASE_URL": _url(engine),
        "GUANXI_DATA_DIR": str(data_dir),
        "GUANXI_SECRET_KEY": "crash-test-secret",
        "GUANXI_FIELD_KEYS": json.dumps({"t1": TEST_FIELD_KEY}),
        "GUANXI_ACTIVE_FIELD_KEY": "t1",
        "GUANXI_BLIND_INDEX_KEY": TEST_BLIND_KEY,
        "GUANXI_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "guanxi.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _complete(engine: Engine, data_dir: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    proc = _cli(engine, data_dir, *args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode in ok, err.decode()[-3000:]
    return out.decode()


def _kill_midway(
    engine: Engine, data_dir: Path, args: tuple[str, ...], progress: Callable[[Session], int],
    target: int, timeout: float = 300,
) -> int:  # fmt: skip
    """Start the command, SIGKILL it once ``progress`` (committed work) reaches ``target``;
    returns the progress seen at the kill. Fails if the command ends first."""
    proc = _cli(engine, data_dir, *args)
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                seen = progress(session)
            if seen >= target:
                break
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(
                    f"{args[0]} ended ({proc.returncode}) before the kill at {target} "
                    f"(reached {seen}): {err.decode()[-2000:]}"
                )
            time.sleep(0.02)
        else:
            pytest.fail(f"{args[0]} did not reach {target} in {timeout}s (at {seen})")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"{args[0]} ended before it was killed"
    return seen


def _chain_ok(engine: Engine) -> None:
    with Session(engine) as session:
        count, problems = verify(session)
        assert problems == []
        assert count == session.scalar(select(func.count()).select_from(AuditEntry))
        if engine.dialect.name == "sqlite":
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []


# --------------------------------------------------------------------------- data


def _people(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (name, mobile, address): different people, nothing near-equal."""
    rng = random.Random(seed)
    phones = rng.sample(range(10**8), n)
    out = []
    for i in range(n):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        street = f"{CITIES[i % len(CITIES)]}{rng.choice(SURNAMES)}{rng.choice(GIVEN)}路{i + 1}号"
        out.append((name, f"13{i % 10}{phones[i]:08d}", "浙江省" + street))
    return out


def _customers_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["客户编号", "客户名称", "手机", "地址"])
        out.writerows(rows)
    return path


def _no_half_customers(session: Session) -> None:
    """Every customer stored has its phone and its address, every active one its search
    tokens (a merged record leaves search: its tokens go with the merge)."""
    for child in (CustomerPhone.customer_id, CustomerAddress.customer_id):
        orphans = session.scalar(
            select(func.count()).select_from(Customer).where(Customer.id.not_in(select(child)))
        )
        assert orphans == 0, f"customers without a {child.class_.__name__}"
    without_tokens = session.scalar(
        select(func.count())
        .select_from(Customer)
        .where(Customer.status == "active", Customer.id.not_in(select(SearchToken.customer_id)))
    )
    assert without_tokens == 0


def _customer_rows(session: Session) -> list[tuple[Any, ...]]:
    """Every customer with its phones' and addresses' blind indexes, by external id (ids
    differ between two databases; content must not)."""
    phones: dict[int, list[str]] = {}
    for cid, bidx in session.execute(select(CustomerPhone.customer_id, CustomerPhone.phone_bidx)):
        phones.setdefault(cid, []).append(bidx)
    addresses: dict[int, int] = {}
    for (cid,) in session.execute(select(CustomerAddress.customer_id)):
        addresses[cid] = addresses.get(cid, 0) + 1
    rows = session.execute(
        select(Customer.id, Customer.external_id, Customer.name, Customer.status)
    )
    return sorted(
        (ext, name, status, sorted(phones.get(cid, [])), addresses.get(cid, 0))
        for cid, ext, name, status in rows
    )


# --------------------------------------------------------------------------- import

IMPORT_ROWS = 3000
IMPORT_BATCH = 200


def test_kill_mid_import(twins: tuple[Engine, Engine], tmp_path: Path) -> None:
    crashed, reference = twins
    people = _people(IMPORT_ROWS, seed=8)
    path = _customers_csv(
        tmp_path / "customers.csv",
        [(f"K{i:06d}", *person) for i, person in enumerate(people)],
    )
    args = ("import", "customers", str(path), "--json", "--batch-rows", str(IMPORT_BATCH))
    rng = random.Random()
    target = rng.randrange(IMPORT_BATCH, IMPORT_ROWS * 2 // 3)

    def rows_done(session: Session) -> int:
        return session.scalar(select(func.max(ImportJob.rows_done))) or 0

    _kill_midway(crashed, tmp_path / "a", args, rows_done, target)
    with Session(crashed) as session:
        job = session.scalar(select(ImportJob))
        assert job is not None
        assert job.status == "running"
        stored = session.scalar(select(func.count()).select_from(Customer)) or 0
        # Whole batches or nothing: the checkpoint and the rows agree exactly.
        assert stored == job.rows_done - 1 == job.imported, f"killed at target {target}"
        assert 0 < stored < IMPORT_ROWS
        assert stored % IMPORT_BATCH == 0
        _no_half_customers(session)
    _chain_ok(crashed)

    report = json.loads(_complete(crashed, tmp_path / "a", *args))
    # The job's figures cover the whole file; it went on after the last whole batch.
    assert (report["imported"], report["rejected"]) == (IMPORT_ROWS, 0)
    assert report["resumed_from_row"] == stored + 1
    _complete(reference, tmp_path / "b", *args)
    with Session(crashed) as left, Session(reference) as right:
        _no_half_customers(left)
        assert _customer_rows(left) == _customer_rows(right)
        assert len(_customer_rows(left)) == IMPORT_ROWS
        for session in (left, right):
            jobs = session.execute(
                select(ImportJob.status, ImportJob.rows_done, ImportJob.imported)
            ).all()
            assert jobs == [("finished", IMPORT_ROWS + 1, IMPORT_ROWS)]
        tokens = select(func.count()).select_from(SearchToken)
        assert left.scalar(tokens) == right.scalar(tokens)
    _chain_ok(crashed)
    _chain_ok(reference)


# --------------------------------------------------------------------------- merge

BASE_CUSTOMERS = 1200
DUPLICATES = 600


def _seed_duplicates(engine: Engine, tmp_path: Path) -> None:
    """``BASE_CUSTOMERS`` people imported, then the first ``DUPLICATES`` of them entered
    again one by one (same name, mobile and address under another customer number), as an
    agent would without looking first. (An import would fold them into the first records:
    it matches rows by name and mobile.)"""
    people = _people(BASE_CUSTOMERS, seed=9)
    path = _customers_csv(tmp_path / "base.csv", [(f"A{i:06d}", *p) for i, p in enumerate(people)])
    bot = Actor.system("test")
    with Session(engine) as session:
        report = run_import(session, kind=ImportKind.customers, path=path, actor=bot)
        assert report.imported == BASE_CUSTOMERS
        for i, (name, phone, address) in enumerate(people[:DUPLICATES]):
            create_customer(
                session,
                customer_in=CustomerCreate(
                    name=name,
                    external_id=f"B{i:06d}",
                    phones=[phone],
                    addresses=[{"line": address}],
                ),
                actor=bot,
            )


def _merges_whole(session: Session) -> int:
    """Every merge applied whole: merged customers and merge records match one to one,
    each with its decided pair and its two audit entries; returns the number of merges."""
    merges = session.execute(
        select(CustomerMerge.id, CustomerMerge.merged_id, CustomerMerge.pair_id)
    ).all()
    merged = set(session.scalars(select(Customer.id).where(Customer.status == "merged")))
    assert sorted(m.merged_id for m in merges) == sorted(merged)
    decided = set(session.scalars(select(DuplicatePair.id).where(DuplicatePair.status == "merged")))
    assert {m.pair_id for m in merges} == decided
    for action in ("customer.merged", "customer.merged_into"):
        audited = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        )
        assert audited == len(merges), action
    _no_half_customers(session)
    return len(merges)


def _merge_outcome(session: Session) -> dict[str, Any]:
    """The merges by customer number (survivor, merged) and the pairs by status."""
    ext = {
        cid: number for cid, number in session.execute(select(Customer.id, Customer.external_id))
    }
    merges = session.execute(select(CustomerMerge.survivor_id, CustomerMerge.merged_id)).all()
    statuses = session.execute(
        select(DuplicatePair.status, func.count()).group_by(DuplicatePair.status)
    ).all()
    return {
        "merges": sorted((ext[s], ext[m]) for s, m in merges),
        "pairs": sorted(tuple(row) for row in statuses),
        "customers": _customer_rows(session),
    }


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_kill_mid_merge(twins: tuple[Engine, Engine], tmp_path: Path, mode: str) -> None:
    """The whole base scored, or (as the worker and every import do) only the customers
    added since the last run: the killed run's newcomers must be scored again."""
    crashed, reference = twins
    for engine in twins:
        _seed_duplicates(engine, tmp_path)
    args = ("dedupe", "run", "--json", *(["--incremental"] if mode == "incremental" else []))
    # A hundred merges a transaction: the kill lands after one to five of the six.
    target = random.Random().randrange(1, DUPLICATES - 100)

    def merges(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(CustomerMerge)) or 0

    _kill_midway(crashed, tmp_path / "a", args, merges, target)
    with Session(crashed) as session:
        done = _merges_whole(session)
        assert 0 < done < DUPLICATES, f"killed at target {target}"
        assert done % 100 == 0
    _chain_ok(crashed)

    _complete(crashed, tmp_path / "a", *args)
    _complete(reference, tmp_path / "b", *args)
    with Session(crashed) as left, Session(reference) as right:
        assert _merges_whole(left) == _merges_whole(right) == DUPLICATES
        outcome = _merge_outcome(left)
        assert outcome == _merge_outcome(right)
        assert outcome["merges"] == [(f"A{i:06d}", f"B{i:06d}") for i in range(DUPLICATES)]
    _chain_ok(crashed)
    _chain_ok(reference)


# --------------------------------------------------------------------------- accrual

MEMBERS = 400
SHIPMENTS = 20_000
CHUNK = 500
START = datetime(2026, 1, 1, tzinfo=UTC)


def _seed_shipments(engine: Engine) -> None:
    """``MEMBERS`` customers and ``SHIPMENTS`` shipments (fees 8-48 yuan, a few cancelled),
    the same on both databases (a fixed seed)."""
    rng = random.Random(10)
    now = START
    with Session(engine) as session:
        session.execute(
            insert(Customer),
            [
                {
                    "id": i,
                    "kind": "individual",
                    "name": f"会员{i}",
                    "source": "other",
                    "lifecycle_stage": "active",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for i in range(1, MEMBERS + 1)
            ],
        )
        services = ["standard", "express", "same_day", "cold_chain", "international"]
        session.execute(
            insert(Shipment),
            [
                {
                    "id": i,
                    "kind": "waybill",
                    "waybill_no": f"GX{i:011d}",
                    "customer_id": rng.randint(1, MEMBERS),
                    "service_type": rng.choice(services),
                    "status": "cancelled" if rng.random() < 0.01 else "delivered",
                    "fee_fen": rng.randint(800, 4800),
                    "created_at": START + timedelta(minutes=30 * i),
                }
                for i in range(1, SHIPMENTS + 1)
            ],
        )
        session.commit()
        if engine.dialect.name == "postgresql":
            # Explicit ids: the sequences move past them as an import's would.
            for table in ("customer", "shipment"):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            session.commit()


def _ledger_whole(session: Session) -> int:
    """Every ledger row credits one shipment once and belongs to a member whose balance is
    the ledger's sum; every shipment up to the watermark that earns is credited.
    Returns the watermark."""
    check = verify_balances(session)
    assert check.ok, (check.differences[:5], check.lifetime_differences[:5])
    keys = session.execute(
        select(func.count(), func.count(func.distinct(PointsEntry.shipment_id)))
    ).one()
    assert keys[0] == keys[1]
    orphans = session.scalar(
        select(func.count())
        .select_from(PointsEntry)
        .where(PointsEntry.customer_id.not_in(select(LoyaltyMember.customer_id)))
    )
    assert orphans == 0
    mark = watermark(session)
    beyond = session.scalar(
        select(func.count()).select_from(PointsEntry).where(PointsEntry.shipment_id > mark)
    )
    assert beyond == 0
    credited = session.scalar(select(func.count()).select_from(PointsEntry))
    uncredited_earning = session.scalar(
        select(func.count())
        .select_from(Shipment)
        .where(
            Shipment.id <= mark,
            Shipment.status != "cancelled",
            Shipment.id.not_in(select(PointsEntry.shipment_id)),
        )
    )
    # The fixture's fees all earn (>= 8 yuan): every shipment not cancelled is credited.
    assert uncredited_earning == 0
    cancelled = session.scalar(
        select(func.count())
        .select_from(Shipment)
        .where(Shipment.id <= mark, Shipment.status == "cancelled")
    )
    assert credited == mark - (cancelled or 0)
    return mark


def _accrual_outcome(session: Session) -> dict[str, Any]:
    members = session.execute(
        select(
            LoyaltyMember.customer_id,
            LoyaltyMember.tier,
            LoyaltyMember.balance,
            LoyaltyMember.lifetime_points,
        ).order_by(LoyaltyMember.customer_id)
    ).all()
    ledger = session.execute(
        select(PointsEntry.shipment_id, PointsEntry.customer_id, PointsEntry.points)
        .order_by(PointsEntry.shipment_id)
    ).all()  # fmt: skip
    return {"members": [tuple(m) for m in members], "ledger": [tuple(e) for e in ledger]}


def test_kill_mid_accrual(twins: tuple[Engine, Engine], tmp_path: Path) -> None:
    crashed, reference = twins
    for engine in twins:
        _seed_shipments(engine)
    args = ("loyalty", "accrue", "--chunk", str(CHUNK))
    target = random.Random().randrange(CHUNK, SHIPMENTS * 2 // 3)

    def mark(session: Session) -> int:
        return watermark(session)

    _kill_midway(crashed, tmp_path / "a", args, mark, target)
    with Session(crashed) as session:
        reached = _ledger_whole(session)
        assert 0 < reached < SHIPMENTS, f"killed at target {target}"
        assert reached % CHUNK == 0
    _chain_ok(crashed)

    _complete(crashed, tmp_path / "a", *args)
    # Run again from the start: a second pass over credited shipments adds nothing.
    _complete(crashed, tmp_path / "a", *args, "--from", "0")
    _complete(reference, tmp_path / "b", *args)
    with Session(crashed) as left, Session(reference) as right:
        assert _ledger_whole(left) == _ledger_whole(right) == SHIPMENTS
        outcome = _accrual_outcome(left)
        assert outcome == _accrual_outcome(right)
        cancelled = left.scalar(
            select(func.count()).select_from(Shipment).where(Shipment.status == "cancelled")
        )
        assert len(outcome["ledger"]) == SHIPMENTS - (cancelled or 0)
        assert len(outcome["members"]) == MEMBERS
    _chain_ok(crashed)
    _chain_ok(reference)
