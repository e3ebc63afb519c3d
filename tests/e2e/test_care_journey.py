"""A supervisor sets up a festival greeting in a real browser: from the care rules open the
example Mid-Autumn greeting, preview a day (who would receive it, who not and why, the exact
messages), fix a template error the editor refuses, switch the rule on."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _consents(base: str) -> None:
    """Two customers agreed to marketing texts on the phone (the agent records it)."""
    with httpx.Client(base_url=base, timeout=10) as api:
        token = api.post("/api/v1/auth/token", json={"username": "agent", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        customers = api.get("/api/v1/customers", params={"limit": 50}).json()["items"]
        for customer in customers:
            if customer["name"] in ("张三丰", "李四"):
                resp = api.put(
                    f"/api/v1/customers/{customer['id']}/consents",
                    json={"purpose": "marketing_sms", "granted": True, "source": "agent"},
                )
                assert resp.status_code == 200, resp.text


def test_a_supervisor_previews_and_switches_on_a_festival_greeting(
    live_server: str, browser: Any
) -> None:
    _consents(live_server)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/care")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/care$"))
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="客户关怀")).to_have_attribute("aria-current", "page")
    expect(page.locator("#festivals")).to_be_visible()
    page.locator("#rules").get_by_role("link", name="中秋问候").click()

    # The preview of the Mid-Autumn Festival 2026: two customers agreed to texts, the
    # other two (the enterprise, the duplicate record) did not.
    page.get_by_label("日期").fill("2026-09-25")
    page.get_by_role("button", name="预览", exact=True).click()
    figures = page.locator("#preview-figures")
    expect(figures.locator('[data-figure="reached"]')).to_have_text("2")
    expect(figures.locator('[data-figure="no_consent"]')).to_have_text("2")
    sample = page.locator("#preview-sample tbody tr")
    expect(sample).to_have_count(2)
    expect(sample.first).to_contain_text("139****5678")
    expect(sample.first).to_contain_text("张三丰，关系速递祝您中秋节快乐，花好月圆，阖家团圆！")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "care-preview.png"), full_page=True)

    # A variable the festival greeting does not have is refused, naming the field.
    body = page.get_by_label("消息（中文）")
    body.fill("{{ name }}，中秋快乐！您已入会{{ years }}年。")
    page.get_by_role("button", name="保存规则").click()
    expect(page.get_by_role("alert").first).to_contain_text("消息（中文）: 未知变量 years")
    page.get_by_label("消息（中文）").fill("{{ name }}，{{ company }}祝您{{ festival }}快乐！")
    page.get_by_role("button", name="保存规则").click()
    expect(page.get_by_role("status")).to_contain_text("规则已保存")

    page.get_by_role("button", name="启用", exact=True).click()
    expect(page.locator(".page-head .pill")).to_have_text("已启用")
    page.get_by_role("link", name="运行记录").click()
    expect(page).to_have_url(re.compile(r"/care/runs"))
    context.close()
