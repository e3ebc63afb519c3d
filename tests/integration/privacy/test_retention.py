"""The retention purge: a preview counts exactly and changes nothing; a purge removes what
is past its period in every category (rows, files, bytes) and keeps the rest; a second
purge finds nothing; a purge cut short is resumed with its cut-offs; the report per
category; the policies with their bounds; the worker's job."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import AnalyticsRun, AnalyticsStep, KpiValue
from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer
from guanxi.customers.service import set_status
from guanxi.dedupe.models import DuplicatePair
from guanxi.imports.models import ImportJob, ImportRowError
from guanxi.notify.models import OutboxMessage
from guanxi.privacy import retention
from guanxi.privacy.models import Anonymisation
from guanxi.privacy.retention_models import RetentionReport, RetentionRun
from guanxi.security.models import LoginFailure, UserToken
from guanxi.tickets.models import Attachment, Ticket
from tests.conftest import settings_for

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
ACTOR = Actor.system("test")


def ago(days: float) -> datetime:
    """``days`` before NOW."""
    return NOW - timedelta(days=days)


@pytest.fixture
def settings(engine: Any, tmp_path: Path) -> Any:
    return settings_for(engine.url.render_as_string(hide_password=False), tmp_path)


def _file(path: Path, size: int, mtime: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


@pytest.fixture
def planted(db: Session, make_user: Any, make_customer: Any, settings: Any) -> dict[str, Any]:
    """Old and recent rows in every category (ids of what must stay)."""
    user = make_user("manager")
    old_customer = make_customer("归档老客户", phones=["13912340001"])
    young_customer = make_customer("归档新客户", phones=["13912340002"])
    active = make_customer("在用客户")
    for c in (old_customer, young_customer):
        set_status(db, customer_id=c.id, status=CustomerStatus.archived, actor=user)
    db.get(Customer, old_customer.id).archived_at = ago(1200)  # type: ignore[union-attr]
    db.get(Customer, young_customer.id).archived_at = ago(100)  # type: ignore[union-attr]
    # sessions and tokens: ended 40 days ago (goes), revoked 5 days ago (stays), live.
    db.add_all(
        [
            UserToken(user_id=user.id, kind="web", token_hash="a" * 64, created_at=ago(41),
                      expires_at=ago(40)),
            UserToken(user_id=user.id, kind="api", token_hash="b" * 64, created_at=ago(50),
                      expires_at=ago(-30), revoked_at=ago(5)),
            UserToken(user_id=user.id, kind="api", token_hash="c" * 64, created_at=ago(2),
                      expires_at=ago(-1)),
        ]
    )  # fmt: skip
    # failed sign-ins: 8 days ago (goes), an hour ago (stays).
    db.add_all(
        [
            LoginFailure(address_hash="a" * 32, at=ago(8)),
            LoginFailure(address_hash="b" * 32, at=ago(1 / 24)),
        ]
    )
    # outbox: sent 200 days ago (cleared), sent 10 days ago and pending (kept).
    for key, status, created in (
        ("old", "sent", 200),
        ("new", "sent", 10),
        ("wait", "pending", 300),
    ):
        db.add(
            OutboxMessage(key=f"t:{key}", channel="sms", category="service", status=status,
                          customer_id=active.id, to_enc="enc", params='{"name": "张三"}',
                          subject="主题", body="尊敬的张三", created_at=ago(created),
                          sent_at=ago(created) if status == "sent" else None)
        )  # fmt: skip
    # imports: a job finished 10 days ago with two rejected rows, one 2 days ago with one.
    old_job = ImportJob(kind="customers", file_name="a.csv", file_sha256="0" * 64, mapping={},
                        status="done", started_at=ago(11), finished_at=ago(10))  # fmt: skip
    new_job = ImportJob(kind="customers", file_name="b.csv", file_sha256="1" * 64, mapping={},
                        status="done", started_at=ago(3), finished_at=ago(2))  # fmt: skip
    db.add_all([old_job, new_job])
    db.flush()
    for job, rows in ((old_job, 2), (new_job, 1)):
        for row in range(rows):
            db.add(ImportRowError(job_id=job.id, row=row + 2, column="phone", value="139****0001",
                                  code="phone_invalid", message="bad"))  # fmt: skip
    uploads = Path(settings.data_dir) / "uploads"
    _file(uploads / ("d" * 64 + ".csv"), 300, ago(9))
    _file(uploads / ("d" * 64 + ".csv.json"), 20, ago(9))
    _file(uploads / ("e" * 64 + ".csv"), 50, ago(1))
    # dedupe: merged 400 days ago (goes), distinct 400 days ago (stays), merged 10 days ago.
    p1, p2, p3 = (make_customer(f"查重{i}").id for i in range(3))
    for (left, right), status, days in (
        ((p1, p2), "merged", 400),
        ((p1, p3), "distinct", 400),
        ((p2, p3), "merged", 10),
    ):
        db.add(
            DuplicatePair(left_id=left, right_id=right, probability=0.9, weight=1.0,
                          rule="probable", agreed="name", status=status,
                          created_at=ago(days + 1), decided_at=ago(days))
        )  # fmt: skip
    # analytics: a run 800 days ago without results (goes, with its step), one with results.
    spent = AnalyticsRun(
        started_at=ago(800), finished_at=ago(800), as_of=ago(800), status="succeeded"
    )
    serving = AnalyticsRun(
        started_at=ago(900), finished_at=ago(900), as_of=ago(900), status="succeeded"
    )
    db.add_all([spent, serving])
    db.flush()
    db.add(AnalyticsStep(run_id=spent.id, step="kpi", status="succeeded", input_key="k"))
    db.add(KpiValue(run_id=serving.id, period="day", period_start=ago(900).date(),
                    dimension="all", member="", metric="m", value=1.0))  # fmt: skip
    # attachments: a photo of 4 years ago, a recording of 2 years ago (both go), recent ones.
    ticket = Ticket(type="complaint", channel="hotline", customer_id=active.id, subject="丢件")
    db.add(ticket)
    db.flush()
    root = Path(settings.data_dir) / "attachments"
    for key, kind, days, size in (
        ("1" * 32, "image/jpeg", 1500, 1000),
        ("2" * 32, "audio/mpeg", 730, 5000),
        ("3" * 32, "image/jpeg", 100, 700),
        ("4" * 32, "audio/mpeg", 100, 900),
    ):
        db.add(
            Attachment(ticket_id=ticket.id, filename=f"{key[:1]}.bin", content_type=kind,
                       size_bytes=size, sha256="0" * 64, storage_key=key, uploaded_at=ago(days))
        )  # fmt: skip
        _file(root / key[:2] / key[2:4] / key, size, ago(days))
    db.commit()
    return {
        "user": user,
        "old_customer": old_customer.id,
        "young_customer": young_customer.id,
        "spent_run": spent.id,
        "serving_run": serving.id,
        "root": root,
        "uploads": uploads,
    }


def _count(db: Session, model: Any) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


EXPECTED = {
    "archived_customers": {"rows": 1, "files": 0, "bytes": 0},
    "ticket_attachments": {"rows": 1, "files": 1, "bytes": 1000},
    "call_recordings": {"rows": 1, "files": 1, "bytes": 5000},
    "outbox_contents": {"rows": 1, "files": 0, "bytes": 0},
    "import_files": {"rows": 2, "files": 2, "bytes": 320},
    "sessions_tokens": {"rows": 1, "files": 0, "bytes": 0},
    "login_failures": {"rows": 1, "files": 0, "bytes": 0},
    "survey_links": {"rows": 0, "files": 0, "bytes": 0},
    "dedupe_pairs": {"rows": 1, "files": 0, "bytes": 0},
    "analytics_runs": {"rows": 1, "files": 0, "bytes": 0},
}


def test_a_preview_counts_exactly_and_changes_nothing(
    db: Session, planted: dict[str, Any], settings: Any
) -> None:
    with clock.frozen(NOW):
        result = retention.run_purge(
            db, actor=ACTOR, trigger="cli", settings=settings, dry_run=True
        )
    assert result.run.status == "done"
    assert result.run.dry_run is True
    assert result.figures() == EXPECTED
    assert _count(db, UserToken) == 3
    assert _count(db, ImportRowError) == 3
    assert _count(db, Attachment) == 4
    assert _count(db, Anonymisation) == 0
    assert (planted["root"] / "11" / "11" / ("1" * 32)).exists()
    body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.key == "t:old"))
    assert body == "尊敬的张三"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.previewed")).one()
    assert entry.target_id == str(result.run.id)
    assert (entry.after or {})["sessions_tokens"] == {"rows": 1, "files": 0}


def test_a_purge_removes_what_is_past_its_period_and_keeps_the_rest(
    db: Session, planted: dict[str, Any], settings: Any
) -> None:
    with clock.frozen(NOW):
        result = retention.run_purge(db, actor=ACTOR, trigger="job", settings=settings)
    assert result.run.status == "done"
    assert result.run.dry_run is False
    assert result.figures() == EXPECTED
    db.expire_all()
    # Customers: the one archived 1200 days ago anonymised, the one of 100 days kept.
    anonymised = set(db.scalars(select(Anonymisation.customer_id)))
    assert anonymised == {planted["old_customer"]}
    assert db.get(Customer, planted["young_customer"]).name == "归档新客户"  # type: ignore[union-attr]
    assert db.get(Customer, planted["old_customer"]).name != "归档老客户"  # type: ignore[union-attr]
    assert sorted(db.scalars(select(UserToken.token_hash))) == ["b" * 64, "c" * 64]
    assert list(db.scalars(select(LoginFailure.address_hash))) == ["b" * 32]
    contents = {
        m.key: (m.body, m.subject, m.params, m.to_enc, m.status)
        for m in db.scalars(select(OutboxMessage))
    }
    assert contents == {
        "t:old": ("", "", None, None, "sent"),
        "t:new": ("尊敬的张三", "主题", '{"name": "张三"}', "enc", "sent"),
        "t:wait": ("尊敬的张三", "主题", '{"name": "张三"}', "enc", "pending"),
    }
    assert _count(db, ImportRowError) == 1
    assert _count(db, ImportJob) == 2  # the jobs stay as the record of the imports
    assert sorted(p.name for p in planted["uploads"].iterdir()) == ["e" * 64 + ".csv"]
    assert sorted(db.scalars(select(DuplicatePair.status))) == ["distinct", "merged"]
    assert sorted(db.scalars(select(AnalyticsRun.id))) == [planted["serving_run"]]
    assert _count(db, AnalyticsStep) == 0
    assert sorted(db.scalars(select(Attachment.storage_key))) == ["3" * 32, "4" * 32]
    files = sorted(p.name for p in planted["root"].rglob("*") if p.is_file())
    assert files == ["3" * 32, "4" * 32]
    # The report: oldest record kept per category.
    reports = {r.category: r for r in result.reports}
    assert reports["sessions_tokens"].oldest_kept == ago(50)
    assert reports["ticket_attachments"].oldest_kept == ago(100)
    assert reports["archived_customers"].oldest_kept == ago(100)
    assert reports["import_files"].oldest_kept == ago(3)
    assert reports["sessions_tokens"].cutoff == ago(30)
    assert all(r.finished for r in result.reports)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purged")).one()
    assert (entry.after or {})["call_recordings"] == {"rows": 1, "files": 1}
    # A second purge finds nothing more.
    with clock.frozen(NOW + timedelta(minutes=5)):
        again = retention.run_purge(db, actor=ACTOR, trigger="job", settings=settings)
    assert again.run.id != result.run.id
    assert all(v == {"rows": 0, "files": 0, "bytes": 0} for v in again.figures().values())


def test_a_purge_cut_short_is_resumed_with_its_cut_offs(
    db: Session, planted: dict[str, Any], settings: Any
) -> None:
    with clock.frozen(NOW):
        first = retention.run_purge(
            db, actor=ACTOR, trigger="job", settings=settings, batch_size=1, max_batches=3
        )
    assert first.run.status == "running"
    done = {r.category: r.rows for r in first.reports if r.rows}
    # Three batches: the old customer, then the photo, then the empty batch ending it.
    assert done == {"archived_customers": 1, "ticket_attachments": 1}
    assert [r.finished for r in first.reports][:3] == [True, False, False]
    # Resumed a day later: the same run, the same cut-offs (a token ended 29.5 days before
    # the new moment is not taken).
    later = NOW + timedelta(days=1)
    with clock.frozen(later):
        resumed = retention.run_purge(db, actor=ACTOR, trigger="job", settings=settings)
    assert resumed.run.id == first.run.id
    assert resumed.run.status == "done"
    assert resumed.figures() == EXPECTED
    assert _count(db, RetentionRun) == 1
    assert _count(db, RetentionReport) == len(retention.CATEGORIES)


def test_a_disabled_category_is_left_alone(
    db: Session, planted: dict[str, Any], settings: Any
) -> None:
    retention.update_policy(
        db,
        category="sessions_tokens",
        policy_in=retention.PolicyUpdate(keep_days=30, enabled=False),
        actor=ACTOR,
        user_id=None,
    )
    with clock.frozen(NOW):
        result = retention.run_purge(db, actor=ACTOR, trigger="job", settings=settings)
    assert "sessions_tokens" not in result.figures()
    assert _count(db, UserToken) == 3


def test_policies_have_bounds_and_changes_are_audited(db: Session) -> None:
    policies = {p.category: p for p in retention.list_policies(db)}
    assert [p.category for p in policies.values()] == list(retention.CATEGORIES)
    assert {k: p.keep_days for k, p in policies.items()} == {
        "archived_customers": 1095,
        "ticket_attachments": 1095,
        "call_recordings": 365,
        "outbox_contents": 180,
        "import_files": 7,
        "sessions_tokens": 30,
        "login_failures": 7,
        "survey_links": 90,
        "dedupe_pairs": 365,
        "analytics_runs": 730,
    }
    # The migration's seeded defaults are the code's defaults.
    assert all(p.keep_days == p.default_days for p in policies.values())
    with pytest.raises(ValidationFailed) as short:
        retention.update_policy(
            db, category="archived_customers", policy_in=retention.PolicyUpdate(keep_days=30),
            actor=ACTOR, user_id=None,
        )  # fmt: skip
    assert [(e.loc, e.code, e.params) for e in short.value.errors] == [
        (("keep_days",), "retention_too_short", {"min_days": 365})
    ]
    with pytest.raises(ValidationFailed) as long:
        retention.update_policy(
            db, category="import_files", policy_in=retention.PolicyUpdate(keep_days=91),
            actor=ACTOR, user_id=None,
        )  # fmt: skip
    assert [(e.loc, e.code) for e in long.value.errors] == [(("keep_days",), "retention_too_long")]
    with pytest.raises(NotFound):
        retention.update_policy(
            db, category="nothing", policy_in=retention.PolicyUpdate(keep_days=30),
            actor=ACTOR, user_id=None,
        )  # fmt: skip
    assert retention.list_policies(db)[0].keep_days == 1095
    changed = retention.update_policy(
        db, category="import_files", policy_in=retention.PolicyUpdate(keep_days=3),
        actor=ACTOR, user_id=None,
    )  # fmt: skip
    assert changed.keep_days == 3
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "retention.policy_changed")
    ).one()
    assert (entry.target_id, entry.before, entry.after) == (
        "import_files",
        {"keep_days": 7, "enabled": True},
        {"keep_days": 3, "enabled": True},
    )


def test_the_report_as_csv(db: Session, planted: dict[str, Any], settings: Any) -> None:
    with clock.frozen(NOW):
        result = retention.run_purge(db, actor=ACTOR, trigger="cli", settings=settings)
    text = retention.report_csv(retention.get_run(db, result.run.id))
    lines = text.splitlines()
    assert lines[0] == ",".join(retention.CSV_HEADER)
    assert len(lines) == 1 + len(retention.CATEGORIES)
    tokens = next(line for line in lines if ",sessions_tokens," in line).split(",")
    assert tokens[2:9] == [
        "no",
        "sessions_tokens",
        "30",
        ago(30).isoformat(),
        "1",
        "0",
        "0",
    ]
    assert tokens[9] == ago(50).isoformat()
    assert tokens[10] == "yes"
