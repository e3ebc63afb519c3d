"""Privacy, audit and account security in a real browser: the privacy officer registers
李四's access request from the customer's page (due in 15 working days on the working
calendar, the number on file masked), downloads the copy and reads the record of
processing; the auditor finds the request's entries in the audit viewer with personal
values masked; an administrator sets up the second factor from the code under the QR,
keeps the recovery codes, signs out and back in with a code."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from guanxi.audit.service import Actor
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.privacy.service import add_working_days, local_day, working_calendar
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD
from tests.e2e.conftest import DATABASES, SHOTS

pytestmark = pytest.mark.e2e
# 李四's number in the fixture: it must appear nowhere on a screen, only in the export.
LI_SI_PHONE = "13800138000"


@pytest.fixture(scope="module")
def people(live_server: str) -> str:
    """The live server with a privacy officer, an auditor and an administrator."""
    engine = make_engine(f"sqlite:///{DATABASES[live_server]}")
    try:
        with make_sessionmaker(engine)() as session:
            for username, name, role in (
                ("privacy", "个人信息保护负责人 周敏", "privacy_officer"),
                ("auditor", "合规审计 孙磊", "auditor"),
                ("admin", "系统管理员 刘强", "admin"),
            ):
                create_user(
                    session,
                    user_in=UserCreate(
                        username=username, display_name=name, role=role, password=PASSWORD
                    ),
                    actor=Actor.system("e2e"),
                )
    finally:
        engine.dispose()
    return live_server


def _sign_in(page: Any, base: str, username: str, next_url: str) -> None:
    page.goto(f"{base}/login?next={next_url}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def _below_topbar(page: Any) -> None:
    """The sticky top bar must not cover a panel in its picture; set through the CSSOM
    (the CSP refuses an injected <style>)."""
    page.locator(".topbar").evaluate(
        "bar => bar.style.setProperty('position', 'static', 'important')"
    )


def test_privacy_officer_auditor_and_second_factor(people: str, browser: Any) -> None:
    base = people
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # The privacy officer finds 李四 and registers the access request from the 360 view.
    _sign_in(page, base, "privacy", "/customers")
    page.get_by_label("搜索").fill("李四")
    page.locator("#results").get_by_role("link", name="李四").click()
    expect(page.get_by_role("heading", name=re.compile("李四"))).to_be_visible()
    customer_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.get_by_role("link", name="登记个人信息权利请求").click()
    expect(page.get_by_role("heading", name="登记个人信息权利请求")).to_be_visible()
    expect(page.locator("#request-form")).to_contain_text(f"客户: 李四 (#{customer_id})")
    form = page.locator("#request-form")
    form.get_by_label("请求类型").select_option("access")
    form.get_by_label("身份核验方式").select_option("phone_callback")
    form.get_by_label("详情").fill("来电要求查阅本人在公司留存的个人信息")
    # The product's own calendar and the default policy (15 working days), counted from
    # the local day the request is registered on.
    cal = working_calendar()
    due = add_working_days(local_day(datetime.now(UTC), cal), 15, cal)
    page.get_by_role("button", name="登记", exact=True).click()

    expect(page.get_by_role("status")).to_have_text("请求已登记。")
    request_id = int(re.search(r"/privacy/requests/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#{request_id} · 查阅")
    details = page.locator("#request")
    expect(page.locator("#due-on")).to_have_text(f"{due.isoformat()} (还剩 15 个工作日)")
    expect(details).to_contain_text("身份核验方式回拨预留电话")
    expect(page.locator("#customer-phones")).to_have_text("138****8000")
    expect(page.locator("#history")).to_contain_text("privacy · 已登记")
    assert LI_SI_PHONE not in page.content()
    _below_topbar(page)
    page.screenshot(path=str(SHOTS / "privacy-request.png"), full_page=True)

    # The copy of the customer's data: everything in clear, for the officer to send.
    with page.expect_download() as download_info:
        page.locator("#export-json").click()
    download = download_info.value
    assert download.suggested_filename == f"customer-{customer_id}-request-{request_id}.json"
    exported = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    text = json.dumps(exported, ensure_ascii=False)
    assert "李四" in text
    assert LI_SI_PHONE in text
    page.reload()
    expect(page.locator("#history")).to_contain_text("privacy · 已导出数据")

    # The record of processing names the purposes, with their legal bases.
    page.goto(f"{base}/privacy/processing")
    expect(page.get_by_role("heading", name="个人信息处理活动记录")).to_be_visible()
    real_name = page.locator("#processing-activities tr", has_text="实名收寄")
    expect(real_name).to_contain_text("履行法定义务")

    # The retention page: periods per data category and a preview of the purge.
    page.goto(f"{base}/privacy/retention")
    page.get_by_role("button", name="预览清理").click()
    report = page.locator("#retention-report")
    expect(report).to_contain_text("预览：未删除任何数据")
    _below_topbar(page)
    page.screenshot(path=str(SHOTS / "retention-report.png"), full_page=True)
    context.close()

    # The auditor searches the log by action: the request's entries, values masked.
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, base, "auditor", "/audit")
    expect(page.get_by_role("heading", name="审计日志")).to_be_visible()
    page.get_by_label("事情经过").select_option("privacy.request_registered")
    page.get_by_role("button", name="搜索", exact=True).click()
    entries = page.locator("#audit-entries")
    # The entries, not the rows of their nested tables of changes.
    rows = page.locator("#audit-entries > tbody > tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("> td").nth(1)).to_have_text("privacy")
    expect(entries).to_contain_text("已登记个人信息权利请求")
    expect(entries).to_contain_text(f"privacy_request {request_id}")
    expect(entries).to_contain_text(due.isoformat())
    # The customer's own trail: created with the number masked, then exported on request.
    page.get_by_label("事情经过").select_option("")
    page.get_by_label("记录").fill("customer")
    page.get_by_label("编号").fill(str(customer_id))
    page.get_by_role("button", name="搜索", exact=True).click()
    exported_row = rows.filter(has_text="已为客户导出个人信息")
    expect(exported_row.locator("> td").nth(1)).to_have_text("privacy")
    created_row = rows.filter(has_text="新建客户")
    expect(created_row.locator("> td").nth(1)).to_have_text("agent")
    expect(created_row).to_contain_text("李**")
    expect(created_row).to_contain_text("138****8000")
    assert LI_SI_PHONE not in page.content()
    page.screenshot(path=str(SHOTS / "audit-viewer.png"), full_page=True)
    context.close()

    # The administrator sets up the second factor, reading the key under the QR code.
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, base, "admin", "/account")
    expect(page.locator("#second-factor")).to_contain_text("未开启。")
    page.get_by_role("link", name="设置第二重验证").click()
    expect(page.locator("#totp-qr svg")).to_be_visible()
    # Shown in groups of four for reading; typed into the app without the spaces.
    secret = "".join(page.locator("#totp-key").inner_text().split())
    authenticator = pyotp.TOTP(secret)
    page.get_by_label("验证码").fill(authenticator.now())
    page.get_by_role("button", name="确认").click()
    expect(page.get_by_role("heading", name="恢复码")).to_be_visible()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    expect(codes.first).to_have_text(re.compile(r"^[a-z0-9]{5}-[a-z0-9]{5}$"))
    page.get_by_role("link", name="继续").click()
    expect(page.locator("#second-factor")).to_contain_text(
        "已开启：登录时需要输入身份验证器应用中的验证码。"
    )
    expect(page.locator("#recovery-left")).to_have_text("10")

    # Signed out, and back in with the app's next code (the one just used is refused as
    # a replay, as it would be from a phone).
    page.get_by_role("button", name="退出登录").click()
    _sign_in(page, base, "admin", "/account")
    expect(page.get_by_role("heading", name="第二重验证")).to_be_visible()
    page.get_by_label("验证码").fill(authenticator.at(time.time() + 30))
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#web-sessions")).to_contain_text("当前")
    expect(page.locator("#recovery-left")).to_have_text("10")
    # The top of the page: password, second factor and the signed-in browsers (the token
    # form's list of permissions below would make the picture five screens long).
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator("#sessions").bounding_box()
    assert box is not None
    bottom = box["y"] + box["height"] + 24
    page.screenshot(
        path=str(SHOTS / "account-security.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": bottom},
    )
    context.close()
