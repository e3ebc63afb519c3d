"""An agent's journey in a real browser: sign in, search by two characters, open the 360
view, fail to create a customer with a bad phone, fix it, create it."""

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


def test_agent_journey_in_chinese(live_server: str, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server}/customers")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fcustomers$"))
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    _shot(page, "login")
    page.get_by_label("用户名").fill("agent")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/customers$"))

    # Search by a two-character name: htmx swaps the results while typing.
    page.get_by_label("搜索").fill("张三")
    results = page.locator("#results")
    expect(results.get_by_role("link", name="张三丰")).to_be_visible()
    expect(results.get_by_role("link", name="李四")).to_have_count(0)
    expect(results.get_by_role("link", name="杭州顺达物流有限公司")).to_have_count(0)
    page.get_by_label("搜索").fill("")
    expect(results.get_by_role("link", name="杭州顺达物流有限公司")).to_be_visible()
    _shot(page, "customer-list")
    page.get_by_label("搜索").fill("张三")
    expect(results.get_by_role("link", name="李四")).to_have_count(0)

    # The 360 view shows the masked phone, never the clear one, until revealed.
    results.get_by_role("link", name="张三丰").click()
    expect(page.get_by_role("heading", name=re.compile("张三丰"))).to_be_visible()
    expect(page.locator("#v-phones")).to_have_text("139****5678")
    assert "13912345678" not in page.content()
    expect(page.locator("#addresses")).to_contain_text("浙江省杭州市临平区")
    _shot(page, "customer-360")
    page.get_by_role("button", name="显示 电话").click()
    expect(page.locator("#v-phones")).to_have_text("+8613912345678")

    # Create with a bad phone: the message stands next to the phone field, nothing is saved.
    page.goto(f"{live_server}/customers/new")
    page.get_by_label("名称").first.fill("王小明")
    page.locator("#f-phones").fill("12345")
    page.get_by_label("地址").fill("北京市朝阳区建国路88号")
    page.get_by_role("button", name="保存").click()
    error = page.locator("#e-phones")
    expect(error).to_have_text("电话号码无效")
    expect(page.locator("#f-phones")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("名称").first).to_have_value("王小明")
    _shot(page, "customer-form-error")

    page.locator("#f-phones").fill("+86 186-0010-4321")
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    expect(page.get_by_role("heading", name=re.compile("王小明"))).to_be_visible()
    expect(page.locator("#v-phones")).to_have_text("186****4321")
    expect(page.locator("#addresses")).to_contain_text("北京市朝阳区")
    expect(page.get_by_text("新建客户").first).to_be_visible()
    context.close()


def test_mobile_layout_and_english(live_server: str, browser: Any) -> None:
    context = browser.new_context(
        locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill("agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    page.get_by_label("Search").fill("物流")
    expect(
        page.locator("#results").get_by_role("link", name="杭州顺达物流有限公司")
    ).to_be_visible()
    expect(page.locator("#results").get_by_role("link", name="李四")).to_have_count(0)
    _shot(page, "mobile-customer-list")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page scrolls sideways on a phone ({width}px)"
    page.locator("#results").get_by_role("link", name="杭州顺达物流有限公司").click()
    expect(page.locator("#contacts")).to_contain_text("陈经理")
    _shot(page, "mobile-customer-360")
    context.close()
