"""Imports through the API on SQLite and PostgreSQL: upload and preview, a job run in a
background thread and polled to its end, the error report, permissions and bad input.

Jobs run in a thread with sessions of their own, so those tests use a fresh database whose
commits are real (``live``); the others use the usual rolled-back test transaction.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.customers.models import Customer, CustomerPhone
from guanxi.imports.models import ImportJob
from guanxi.security.crypto import cipher
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD, settings_for

HEADERS = ["客户编号", "客户名称", "客户类型", "手机", "来源渠道", "生日", "内部代码"]
ROWS = [
    ["C101", "张三丰", "个人", "139 1234 5678", "微信", "1990年5月1日", "x1"],
    ["C102", "杭州顺达物流有限公司", "企业", "0571-88881234", "网点", "", "x2"],
    ["C103", "李四", "个人", "12345", "推荐", "2024/13/1", "x3"],
    ["C104", "王五", "个人", "13800001111", "火星", "", "x4"],
]
PROPOSED = {
    "客户编号": "external_id",
    "客户名称": "name",
    "客户类型": "kind",
    "手机": "phone",
    "来源渠道": "source",
    "生日": "birthday",
    "内部代码": None,
}
SOURCES = "website, app, wechat, outlet, pickup_point, ecommerce, referral, cold_outreach, "
SOURCES += "third_party, hotline, import, other"
ERROR_CSV_EN = [
    ["row", "column", "value", "code", "message"],
    # Cells are cleaned column by column first; phones are checked with the whole record.
    ["4", "生日", "202****/1", "date_impossible", "Not a real calendar date"],
    ["4", "手机", "*****", "phone_invalid", "Not a valid phone number"],
    ["5", "来源渠道", "火星", "value_unknown", f"Unknown value; expected one of: {SOURCES}"],
]
ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def gb18030_csv(rows: list[list[str]] | None = None) -> bytes:
    """The test file as Excel on a Chinese Windows saves it: GB18030, CRLF."""
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADERS, *(ROWS if rows is None else rows)])
    return buf.getvalue().encode("gb18030")


def upload(
    client: Any, headers: dict[str, str], data: bytes, kind: str = "customers", **kw: Any
) -> Any:
    return client.post(
        "/api/v1/imports/uploads",
        data={"kind": kind},
        files={"file": (kw.pop("name", "客户名单.csv"), data, "text/csv")},
        headers={**headers, **kw.pop("extra", {})},
    )


def poll(client: Any, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    """The job's report once it is no longer running (a job takes well under a second)."""
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        resp = client.get(f"/api/v1/imports/jobs/{job_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        seen.append(body["state"])
        if body["state"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running: {seen[-3:]}")


def csv_rows(resp: Any) -> list[list[str]]:
    assert resp.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))


# --------------------------------------------------------------------------- live app


@dataclass
class Live:
    """An app on its own database with real commits, a client and sign-in helpers."""

    app: Any
    client: TestClient
    data_dir: Path

    def session(self) -> Session:
        return self.app.state.sessionmaker()  # type: ignore[no-any-return]

    def login(self, role: str, username: str | None = None) -> tuple[Any, dict[str, str]]:
        with self.session() as s:
            user = create_user(
                s,
                user_in=UserCreate(
                    username=username or f"{role}_live",
                    display_name=f"{role} 用户",
                    role=role,  # type: ignore[arg-type]
                    password=PASSWORD,
                ),
                actor=Actor.system("test"),
            )
        resp = self.client.post(
            "/api/v1/auth/token", json={"username": user.username, "password": PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        token = resp.json()["access_token"]
        return user, {"Authorization": f"Bearer {token}", **EN}


@pytest.fixture
def live(committed_engine: Engine, tmp_path: Path) -> Iterator[Live]:
    from guanxi.app import create_app
    from guanxi.imports.jobs import runner

    url = committed_engine.url.render_as_string(hide_password=False)
    app = create_app(settings_for(url, tmp_path / "data"))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Live(app, client, tmp_path / "data")
    finally:
        runner(app.state).join(timeout=60)
        app.state.engine.dispose()


def test_upload_preview_import_poll_and_error_report(live: Live) -> None:
    user, headers = live.login("manager")
    resp = upload(live.client, headers, gb18030_csv(), extra=ZH)
    assert resp.status_code == 200, resp.text
    preview = resp.json()
    upload_id = preview.pop("upload_id")
    assert len(upload_id) == 68
    assert upload_id.endswith(".csv")
    fields = preview.pop("fields")
    assert preview == {
        "file_name": "客户名单.csv",
        "size": len(gb18030_csv()),
        "kind": "customers",
        "format": "csv",
        "encoding": "gb18030",
        "headers": HEADERS,
        "rows": ROWS,
        "mapping": PROPOSED,
        "unknown_columns": ["内部代码"],
        "missing_required": [],
    }
    assert fields[:3] == [
        {"name": "guanxi_id", "label": "系统编号", "required": False, "many": False},
        {"name": "external_id", "label": "客户编号", "required": False, "many": False},
        {"name": "name", "label": "名称", "required": True, "many": False},
    ]
    assert {"name": "phone", "label": "电话", "required": False, "many": True} in fields
    stored = live.data_dir / "uploads" / upload_id
    assert stored.read_bytes() == gb18030_csv()
    assert stored.stat().st_mode & 0o077 == 0  # personal data: owner only

    resp = live.client.post(
        "/api/v1/imports/jobs",
        json={"upload_id": upload_id, "kind": "customers", "mapping": {}},
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert (started["file_name"], started["kind"], started["dry_run"]) == (
        "客户名单.csv",
        "customers",
        False,
    )
    assert started["created_by"] == user.id
    # Answered at once: the rows are counted by the run, not while the client waits.
    assert started["rows_total"] is None

    job = poll(live.client, headers, started["id"])
    assert (job["status"], job["state"], job["progress"]) == ("finished", "finished", 1.0)
    assert (job["rows_total"], job["rows_done"]) == (4, 4)
    assert (job["imported"], job["updated"], job["unchanged"], job["rejected"]) == (2, 0, 0, 2)
    assert job["errors_total"] == 3
    assert job["eta_seconds"] is None
    assert job["finished_at"] is not None
    shown = [[e["row"], e["column"], e["value"], e["code"], e["message"]] for e in job["errors"]]
    assert shown == [[int(r[0]), *r[1:]] for r in ERROR_CSV_EN[1:]]

    with live.session() as s:
        customers = {c.external_id: c for c in s.scalars(select(Customer))}
        assert set(customers) == {"C101", "C102"}
        zhang = customers["C101"]
        assert (zhang.name, zhang.kind, zhang.source, str(zhang.birthday)) == (
            "张三丰",
            "individual",
            "wechat",
            "1990-05-01",
        )
        assert [cipher().decrypt("phone", p.phone_enc) for p in zhang.phones] == ["+8613912345678"]
        assert customers["C102"].kind == "enterprise"
        actions = list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target_type == "import_job")
                .order_by(AuditEntry.id)
            )
        )
        assert actions == ["import.started", "customer.imported", "import.finished"]
        assert s.scalar(select(ImportJob.created_by)) == user.id
    # A finished import's upload is removed: it holds personal data in clear.
    assert not stored.exists()

    report = live.client.get(f"/api/v1/imports/jobs/{started['id']}/errors.csv", headers=headers)
    assert report.status_code == 200
    assert report.headers["content-type"] == "text/csv; charset=utf-8"
    assert report.headers["content-disposition"] == (
        f'attachment; filename="import-{started["id"]}-errors.csv"'
    )
    assert csv_rows(report) == ERROR_CSV_EN
    zh = live.client.get(
        f"/api/v1/imports/jobs/{started['id']}/errors.csv", headers={**headers, **ZH}
    )
    assert [r[4] for r in csv_rows(zh)[1:]] == [
        "日期不存在",
        "电话号码无效",
        f"无法识别的值，应为以下之一：{SOURCES}",
    ]

    listing = live.client.get("/api/v1/imports/jobs", headers=headers)
    assert listing.status_code == 200
    assert [(j["id"], j["state"], j["errors"]) for j in listing.json()["items"]] == [
        (started["id"], "finished", [])
    ]


def test_dry_run_writes_nothing_and_reports_like_an_import(live: Live) -> None:
    _, headers = live.login("admin")
    upload_id = upload(live.client, headers, gb18030_csv()).json()["upload_id"]
    resp = live.client.post(
        "/api/v1/imports/jobs",
        json={"upload_id": upload_id, "kind": "customers", "dry_run": True},
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    assert (resp.json()["status"], resp.json()["dry_run"]) == ("validating", True)
    job = poll(live.client, headers, resp.json()["id"])
    assert (job["status"], job["state"], job["dry_run"]) == ("validated", "finished", True)
    assert (job["rows_done"], job["imported"], job["rejected"], job["errors_total"]) == (
        4,
        2,
        2,
        3,
    )
    report = live.client.get(f"/api/v1/imports/jobs/{job['id']}/errors.csv", headers=headers)
    assert csv_rows(report) == ERROR_CSV_EN
    with live.session() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.target_type == "import_job"
        )) == 0  # fmt: skip
    # The upload stays for the import that usually follows, which is a new job (a dry run
    # is never resumed as if its rows had been written).
    resp = live.client.post(
        "/api/v1/imports/jobs",
        json={"upload_id": upload_id, "kind": "customers"},
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["id"] != job["id"]
    done = poll(live.client, headers, resp.json()["id"])
    assert (done["status"], done["imported"], done["rejected"]) == ("finished", 2, 2)


def test_mapping_overrides_and_jobs_are_shared_between_importers(live: Live) -> None:
    manager, headers = live.login("manager")
    _, admin_headers = live.login("admin")
    upload_id = upload(live.client, headers, gb18030_csv()).json()["upload_id"]
    # Leave out the phone column and read the internal code as the customer's notes.
    resp = live.client.post(
        "/api/v1/imports/jobs",
        json={
            "upload_id": upload_id,
            "kind": "customers",
            "mapping": {"手机": None, "内部代码": "notes"},
        },
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    job = poll(live.client, headers, resp.json()["id"])
    assert (job["imported"], job["rejected"]) == (2, 2)
    assert [(e["row"], e["code"]) for e in job["errors"]] == [
        (4, "date_impossible"),
        (5, "value_unknown"),
    ]
    with live.session() as s:
        notes = {e: n for e, n in s.execute(select(Customer.external_id, Customer.notes))}
        assert notes == {"C101": "x1", "C102": "x2"}
        assert s.scalar(select(func.count()).select_from(CustomerPhone)) == 0
        assert s.scalar(select(ImportJob.mapping)) == {
            **PROPOSED,
            "手机": None,
            "内部代码": "notes",
        }
    # The admin sees the manager's job; "mine" keeps one's own.
    theirs = live.client.get(f"/api/v1/imports/jobs/{job['id']}", headers=admin_headers)
    assert theirs.status_code == 200
    assert theirs.json()["created_by"] == manager.id
    assert len(live.client.get("/api/v1/imports/jobs", headers=admin_headers).json()["items"]) == 1
    mine = live.client.get("/api/v1/imports/jobs?mine=true", headers=admin_headers)
    assert mine.json()["items"] == []


def test_a_job_that_breaks_is_marked_failed(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    from guanxi.imports import jobs

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("row 3: 13912345678 could not be written")

    monkeypatch.setattr(jobs, "run_import", broken)
    _, headers = live.login("manager")
    upload_id = upload(live.client, headers, gb18030_csv()).json()["upload_id"]
    resp = live.client.post(
        "/api/v1/imports/jobs", json={"upload_id": upload_id, "kind": "customers"}, headers=headers
    )
    assert resp.status_code == 202, resp.text
    job = live.client.get(f"/api/v1/imports/jobs/{resp.json()['id']}", headers=headers).json()
    if job["state"] == "running":
        job = poll(live.client, headers, job["id"])
    assert (job["status"], job["state"]) == ("failed", "failed")
    assert job["message"] == (
        "The import stopped with an error (RuntimeError); start it again to resume"
    )
    zh = live.client.get(f"/api/v1/imports/jobs/{job['id']}", headers={**headers, **ZH}).json()
    assert zh["message"] == "导入因错误（RuntimeError）中断，重新开始即可从中断处继续"
    # The exception's text (which may quote personal data) is stored nowhere.
    with live.session() as s:
        stored = s.scalar(select(ImportJob.message))
        assert stored is not None
        assert "13912345678" not in stored
    # The upload is kept for another try.
    assert (live.data_dir / "uploads" / upload_id).is_file()


# ------------------------------------------------------------ rolled-back test database


def test_every_import_route_needs_the_import_permission() -> None:
    from fastapi.routing import APIRoute

    from guanxi.imports import api, pages
    from guanxi.security.deps import route_permission

    routes = [r for m in (api, pages) for r in m.router.routes if isinstance(r, APIRoute)]
    assert sorted((sorted(r.methods)[0], r.path) for r in routes) == [
        ("GET", "/api/v1/imports/jobs"),
        ("GET", "/api/v1/imports/jobs/{job_id}"),
        ("GET", "/api/v1/imports/jobs/{job_id}/errors.csv"),
        ("GET", "/imports"),
        ("GET", "/imports/jobs/{job_id}"),
        ("GET", "/imports/jobs/{job_id}/progress"),
        ("GET", "/imports/uploads/{upload_id}"),
        ("GET", "/imports/uploads/{upload_id}/check"),
        ("POST", "/api/v1/imports/jobs"),
        ("POST", "/api/v1/imports/uploads"),
        ("POST", "/imports/jobs"),
        ("POST", "/imports/upload"),
    ]
    assert {route_permission(r.dependant) for r in routes} == {"data.import"}


def test_an_agent_may_not_import_and_nothing_is_stored(
    client: Any, login: Any, db: Session, app: Any
) -> None:
    _, headers = login("agent")
    resp = upload(client, headers, gb18030_csv())
    assert resp.status_code == 403
    assert resp.json()["code"] == "forbidden"
    # The permission is checked before the (possibly huge) body is read: a body that is not
    # even valid multipart gets the same answer, and no sign-in gets 401.
    broken = {"Content-Type": "multipart/form-data; boundary=zzz"}
    resp = client.post("/api/v1/imports/uploads", content=b"--x\r\n", headers={**headers, **broken})
    assert resp.status_code == 403
    assert client.post("/api/v1/imports/uploads", content=b"--x", headers=broken).status_code == 401
    assert not (Path(app.state.settings.data_dir) / "uploads").exists()
    job = client.post(
        "/api/v1/imports/jobs",
        json={"upload_id": "a" * 64 + ".csv", "kind": "customers"},
        headers=headers,
    )
    assert job.status_code == 403
    for path in (
        "/api/v1/imports/jobs",
        "/api/v1/imports/jobs/1",
        "/api/v1/imports/jobs/1/errors.csv",
    ):  # noqa: E501
        assert client.get(path, headers=headers).status_code == 403
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert client.get("/api/v1/imports/jobs").status_code == 401


def test_unreadable_file_is_named_in_the_users_language(client: Any, login: Any, app: Any) -> None:
    _, headers = login("manager")
    resp = upload(client, headers, b"\x00\x01\x02binary\x00", name="报表.csv", extra=ZH)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert (body["code"], body["detail"]) == ("file_binary", "文件不是表格文件（CSV / TSV / XLSX）")
    assert body["errors"] == [
        {
            "field": "file",
            "loc": ["file"],
            "code": "file_binary",
            "message": "文件不是表格文件（CSV / TSV / XLSX）",
        }
    ]
    empty = upload(client, headers, b"", extra={"Accept-Language": "en"})
    assert empty.status_code == 422
    assert empty.json()["errors"][0] == {
        "field": "file",
        "loc": ["file"],
        "code": "file_empty",
        "message": "The file is empty",
    }
    # Nothing unreadable is kept.
    assert list((Path(app.state.settings.data_dir) / "uploads").iterdir()) == []


def test_missing_form_fields_are_named(client: Any, login: Any) -> None:
    _, headers = login("manager")
    resp = client.post("/api/v1/imports/uploads", data={"kind": "订单"}, headers={**headers, **ZH})
    assert resp.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("kind", "enum", "必须是以下之一：'customers', 'contacts' or 'shipments'"),
        ("file", "missing", "此项为必填项"),
    ]
    broken = {"Content-Type": "multipart/form-data; boundary=zzz"}
    resp = client.post("/api/v1/imports/uploads", content=b"--x\r\n", headers={**headers, **broken})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "bad_request"


def test_oversized_upload_names_the_file_field(client: Any, login: Any, app: Any) -> None:
    _, headers = login("manager")
    app.state.settings = app.state.settings.model_copy(update={"max_upload_bytes": 1000})
    expected = {"field": "file", "loc": ["file"], "code": "file_too_large"}
    # Over the limit but within the multipart allowance: the route counts the bytes.
    resp = upload(client, headers, b"a,b\n" * 1500, extra=ZH)
    assert resp.status_code == 413
    assert resp.json()["errors"] == [{**expected, "message": "文件大于 1000 B"}]
    # Far over: refused by its declared length, before the body is read.
    resp = upload(client, headers, b"a,b\n" * 800_000, extra={"Accept-Language": "en"})
    assert resp.status_code == 413
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"] == [{**expected, "message": "The file is larger than 1000 B"}]
    assert list((Path(app.state.settings.data_dir) / "uploads").iterdir()) == []
    # Other routes keep the ordinary limit.
    big = client.post("/api/v1/customers", json={"name": "x" * 3_000_000}, headers=headers)
    assert big.status_code == 413
    assert "errors" not in big.json()


def test_bad_jobs_are_refused_with_the_field_named(client: Any, login: Any, db: Session) -> None:
    _, headers = login("manager")
    upload_id = upload(client, headers, gb18030_csv()).json()["upload_id"]
    h = {**headers, **ZH}

    def start(**body: Any) -> Any:
        return client.post(
            "/api/v1/imports/jobs", json={"upload_id": upload_id, "kind": "customers", **body},
            headers=h,
        )  # fmt: skip

    resp = start(mapping={"手机": "nope", "不存在": "name"})
    assert resp.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("mapping.手机", "mapping_field_unknown", "没有这个字段：nope"),
        ("mapping.不存在", "mapping_column_unknown", "文件中没有名为“不存在”的列"),
    ]
    resp = start(mapping={"客户名称": None})
    assert resp.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("mapping", "mapping_required", "没有任何列对应到：名称"),
    ]
    resp = start(mapping={"内部代码": "name"})
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("mapping.内部代码", "mapping_duplicate", "名称 被选给了不止一列"),
    ]
    resp = client.post(
        "/api/v1/imports/jobs",
        json={"upload_id": "0" * 64 + ".csv", "kind": "customers"},
        headers=h,
    )
    assert resp.status_code == 422
    assert [(e["field"], e["code"]) for e in resp.json()["errors"]] == [
        ("upload_id", "upload_unknown")
    ]
    resp = client.post(
        "/api/v1/imports/jobs", json={"upload_id": "../../etc/passwd", "kind": "customers"},
        headers=h,
    )  # fmt: skip
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["upload_id"]
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert client.get("/api/v1/imports/jobs/999999", headers=h).status_code == 404
