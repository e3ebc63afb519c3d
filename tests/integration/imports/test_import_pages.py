"""The import page: upload, column mapping, dry run and import, progress polled by htmx, the
error report; in Chinese and English, with bad input named next to its field."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.customers.models import Customer
from guanxi.imports.models import ImportJob
from tests.conftest import PASSWORD
from tests.integration.imports import test_import_api
from tests.integration.imports.test_import_api import ROWS, SOURCES, Live, csv_rows, gb18030_csv

live = test_import_api.live  # the same fixture: an app on its own database, real commits

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def sign_in(client: Any, username: str) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    resp = client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/imports"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.url.path == "/imports"
    match = re.search(r'name="csrf_token" value="([^"]+)"', resp.text)
    assert match is not None
    return match.group(1)


def post_file(client: Any, csrf: str, data: bytes, kind: str = "customers", **kw: Any) -> Any:
    return client.post(
        "/imports/upload",
        data={"csrf_token": csrf, "kind": kind},
        files={"file": ("客户名单.csv", data, "text/csv")},
        follow_redirects=False,
        **kw,
    )


def wait_until_done(client: Any, job_id: int, headers: dict[str, str]) -> str:
    """Poll the progress block as htmx does until it stops asking to be polled."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        resp = client.get(f"/imports/jobs/{job_id}/progress", headers=headers)
        assert resp.status_code == 200, resp.text
        if 'hx-trigger="every 1s"' not in resp.text:
            return str(resp.text)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running")


def text_of(html: str) -> str:
    """The visible text, whitespace collapsed (for asserting table rows)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ------------------------------------------------------------ rolled-back test database


def test_page_renders_in_chinese_and_english(client: Any, make_user: Any) -> None:
    user = make_user("manager")
    csrf = sign_in(client, user.username)
    page = client.get("/imports", headers=ZH)
    assert page.status_code == 200
    expected = ("上传文件", "文件内容", "上传并预览", "最近的导入", "暂无导入记录。", "最大 2 GiB")
    for text in expected:
        assert text in page.text, text
    assert '<option value="contacts">联系人</option>' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert f'name="csrf_token" value="{csrf}"' in page.text
    assert '<a href="/imports" aria-current="page">导入</a>' in page.text
    client.get("/lang/en", follow_redirects=False)
    english = client.get("/imports", headers=ZH)
    for text in ("Upload a file", "The file holds", "Upload and preview", "No imports yet."):
        assert text in english.text, text
    assert "上传文件" not in english.text


def test_agent_gets_the_forbidden_page(client: Any, make_user: Any, db: Session) -> None:
    agent = make_user("agent")
    resp = client.post("/login", data={"username": agent.username, "password": PASSWORD})
    assert resp.status_code == 200
    page = client.get("/imports", headers=ZH)
    assert page.status_code == 403
    assert "您没有执行此操作的权限" in page.text
    assert 'href="/imports"' not in client.get("/customers").text  # no menu entry either
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/customers/new").text)
    assert csrf is not None
    refused = post_file(client, csrf.group(1), gb18030_csv())
    assert refused.status_code == 403
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_bad_input_is_named_next_to_its_field(client: Any, make_user: Any, app: Any) -> None:
    user = make_user("manager")
    csrf = sign_in(client, user.username)
    no_file = client.post("/imports/upload", data={"csrf_token": csrf, "kind": "customers"})
    assert no_file.status_code == 422
    assert re.search(r'id="e-file"[^>]*>请选择要上传的文件<', no_file.text)
    bad_kind = post_file(client, csrf, gb18030_csv(), kind="orders", headers=EN)
    assert bad_kind.status_code == 422
    assert re.search(r'id="e-kind"[^>]*>Choose what the file holds<', bad_kind.text)
    binary = post_file(client, csrf, b"\x00\x01\x02binary\x00", headers=ZH)
    assert binary.status_code == 422
    assert re.search(r'id="e-file"[^>]*>文件不是表格文件（CSV / TSV / XLSX）<', binary.text)

    app.state.settings = app.state.settings.model_copy(update={"max_upload_bytes": 1000})
    over = post_file(client, csrf, b"a,b\n" * 1500, headers=ZH)
    assert over.status_code == 413
    assert re.search(r'id="e-file"[^>]*>文件大于 1000 B<', over.text)
    # Far over the limit: refused before the body (and its CSRF token) is read.
    far = post_file(client, csrf, b"a,b\n" * 800_000, headers=ZH)
    assert far.status_code == 413
    assert far.headers["content-type"].startswith("text/html")
    assert "文件未上传" in far.text
    assert "文件大于 1000 B" in far.text
    assert list((Path(app.state.settings.data_dir) / "uploads").iterdir()) == []

    gone = client.get(f"/imports/uploads/{'0' * 64}.csv?kind=customers", headers=ZH)
    assert gone.status_code == 404
    assert "该上传文件已不存在，请重新上传" in gone.text
    # A page's bad input is a page, never a 500.
    assert client.get("/imports/uploads/..%2F..%2Fetc?kind=x").status_code == 404


# --------------------------------------------------------------------------- live app


def test_upload_map_import_and_follow_progress(live: Live) -> None:
    user, _ = live.login("manager", username="importer")
    client = live.client
    csrf = sign_in(client, user.username)

    uploaded = post_file(client, csrf, gb18030_csv(), headers=ZH)
    assert uploaded.status_code == 303
    location = uploaded.headers["location"]
    match = re.fullmatch(r"/imports/uploads/([0-9a-f]{64}\.csv)\?kind=customers", location)
    assert match is not None
    upload_id = match.group(1)

    preview = client.get(location, headers=ZH)
    assert preview.status_code == 200
    page = preview.text
    assert "客户名单.csv · 客户 · CSV · gb18030" in page
    for row in ROWS:  # the preview table, every cell
        assert "".join(f"<td>{cell}</td>" for cell in row) in page
    selected = dict(
        re.findall(r'name="map:([^"]+)"[^>]*>.*?<option value="([^"]*)" selected', page, re.S)
    )
    assert selected == {
        "客户编号": "external_id",
        "客户名称": "name",
        "客户类型": "kind",
        "手机": "phone",
        "来源渠道": "source",
        "生日": "birthday",
    }
    assert '<option value="">（忽略此列）</option>' in page
    assert "所有必填字段都已有对应的列。" in page
    assert f'hx-get="/imports/uploads/{upload_id}/check"' in page
    # Dropping the name column is flagged at once (htmx asks on every change).
    check = client.get(
        f"/imports/uploads/{upload_id}/check?kind=customers&{quote('map:客户名称')}=", headers=ZH
    )
    assert check.status_code == 200
    assert "<li>没有任何列对应到：名称</li>" in check.text
    # Submitted that way anyway: the preview again, the reason shown, nothing started.
    refused = client.post(
        "/imports/jobs",
        data={"csrf_token": csrf, "upload_id": upload_id, "kind": "customers",
              "map:客户名称": "", "dry_run": "0"},
        headers=ZH,
    )  # fmt: skip
    assert refused.status_code == 422
    assert "没有任何列对应到：名称" in refused.text
    with live.session() as s:
        assert s.scalar(select(func.count()).select_from(ImportJob)) == 0

    form = {f"map:{h}": f or "" for h, f in selected.items()} | {"map:内部代码": ""}
    started = client.post(
        "/imports/jobs",
        data={"csrf_token": csrf, "upload_id": upload_id, "kind": "customers",
              "dry_run": "0", **form},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text
    job_id = int(started.headers["location"].rsplit("/", 1)[1])
    job_page = client.get(f"/imports/jobs/{job_id}", headers=ZH)
    assert job_page.status_code == 200
    assert f"导入 #{job_id}" in job_page.text
    assert 'id="job-progress"' in job_page.text

    done = wait_until_done(client, job_id, ZH)
    shown = text_of(done)
    assert "已完成" in shown
    assert "4 已读取行数 / 4" in shown
    assert "2 新增 0 已更新 0 未变化 2 已拒绝" in shown
    assert 'value="100.0"' in done
    assert "4 生日 202****/1 日期不存在" in shown
    assert "4 手机 ***** 电话号码无效" in shown
    assert f"5 来源渠道 火星 无法识别的值，应为以下之一：{SOURCES}" in shown
    link = f"/api/v1/imports/jobs/{job_id}/errors.csv"
    assert f'href="{link}"' in done
    report = client.get(link, headers=EN)  # the browser's session cookie is enough
    assert report.status_code == 200
    assert [r[:4] for r in csv_rows(report)] == [
        ["row", "column", "value", "code"],
        ["4", "生日", "202****/1", "date_impossible"],
        ["4", "手机", "*****", "phone_invalid"],
        ["5", "来源渠道", "火星", "value_unknown"],
    ]
    with live.session() as s:
        names = sorted(s.scalars(select(Customer.name)))
        assert names == ["张三丰", "杭州顺达物流有限公司"]
        job = s.get(ImportJob, job_id)
        assert job is not None
        assert (job.status, job.created_by, job.file_name) == ("finished", user.id, "客户名单.csv")

    listing = client.get("/imports", headers=ZH)
    row = text_of(listing.text)
    assert f"{job_id} " in row
    assert "客户名单.csv 客户 已完成 4 2 0 2 manager 用户" in row


def test_dry_run_then_import_from_the_report(live: Live) -> None:
    user, _ = live.login("admin")
    client = live.client
    csrf = sign_in(client, user.username)
    location = post_file(client, csrf, gb18030_csv()).headers["location"]
    upload_id = location.split("/")[3].split("?")[0]
    checked = client.post(
        "/imports/jobs",
        data={"csrf_token": csrf, "upload_id": upload_id, "kind": "customers",
              "dry_run": "1", "map:内部代码": "notes"},
        follow_redirects=False,
    )  # fmt: skip
    assert checked.status_code == 303
    dry_id = int(checked.headers["location"].rsplit("/", 1)[1])
    done = wait_until_done(client, dry_id, EN)
    shown = text_of(done)
    assert "Checked" in shown
    assert "2 Valid 2 Rejected" in shown
    with live.session() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
    # The report offers the import with the same columns.
    assert "Import this file now" in done
    hidden = dict(re.findall(r'<input type="hidden" name="(map:[^"]+)" value="([^"]*)">', done))
    assert hidden["map:内部代码"] == "notes"
    assert hidden["map:手机"] == "phone"
    imported = client.post(
        "/imports/jobs",
        data={"csrf_token": csrf, "upload_id": upload_id, "kind": "customers",
              "dry_run": "0", **hidden},
        follow_redirects=False,
    )  # fmt: skip
    assert imported.status_code == 303
    job_id = int(imported.headers["location"].rsplit("/", 1)[1])
    assert job_id != dry_id
    assert "Finished" in text_of(wait_until_done(client, job_id, EN))
    with live.session() as s:
        notes = {e: n for e, n in s.execute(select(Customer.external_id, Customer.notes))}
        assert notes == {"C101": "x1", "C102": "x2"}
