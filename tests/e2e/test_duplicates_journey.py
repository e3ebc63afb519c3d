"""A supervisor's duplicate review in a real browser: the queue, both records side by side,
merge, the merged record's banner, undo; and the create form's duplicate warning."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_review_merge_and_undo(live_server: str, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/duplicates")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/duplicates$"))
    expect(page.get_by_role("heading", name="重复客户")).to_be_visible()
    pairs = page.locator("#pairs")
    expect(pairs).to_contain_text("张三丰")
    expect(pairs).to_contain_text("張三豐")
    _shot(page, "duplicates-queue")

    pairs.get_by_role("link", name="复核").first.click()
    expect(page.get_by_role("heading", name="复核重复客户")).to_be_visible()
    # Keep the first record but take the e-mail only the second one has.
    expect(page.locator('input[name="pick_email"][value="right"]')).to_be_checked()
    page.locator('input[name="pick_source"][value="right"]').check()
    _shot(page, "duplicate-review")
    page.get_by_role("button", name="合并").click()

    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    expect(page.get_by_role("heading", name=re.compile("张三丰"))).to_be_visible()
    expect(page.locator(".banner").first).to_contain_text("合并自")
    expect(page.locator("#v-email")).to_have_text("z***@example.cn")
    _shot(page, "duplicate-merged")
    page.get_by_role("button", name="撤销合并").click()
    expect(page.get_by_role("heading", name=re.compile("張三豐"))).to_be_visible()
    expect(page.locator(".banner")).to_have_count(0)
    context.close()


def test_create_form_warns_of_a_duplicate(live_server: str, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/customers/new")
    page.get_by_label("用户名").fill("agent")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/customers/new$"))
    page.get_by_label("名称").first.fill("李四")
    page.locator("#f-phones").fill("138 0013 8000")
    page.locator("#f-phones").blur()
    warning = page.locator("#dup-warning")
    expect(warning).to_contain_text("可能重复")
    expect(warning.get_by_role("link", name=re.compile("李四"))).to_be_visible()
    _shot(page, "duplicate-warning")
    context.close()
