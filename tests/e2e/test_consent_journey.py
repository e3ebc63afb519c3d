"""Consent in a real browser: the agent records on the customer's page a consent given on
the phone (the panel loads and swaps with htmx); the customer unsubscribes through the
link of a marketing mail on a phone-sized page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from guanxi.customers.consent import Purpose
from guanxi.notify.unsubscribe import make_token
from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_agent_records_consent_and_the_customer_unsubscribes(
    live_server: str, browser: Any
) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("agent")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.goto(f"{live_server}/customers")
    page.get_by_label("搜索").fill("李四")
    page.locator("#results").get_by_role("link", name="李四").click()
    expect(page.get_by_role("heading", name=re.compile("李四"))).to_be_visible()
    customer_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    # The panel arrives after the page (htmx), with nothing recorded yet.
    panel = page.locator("#consents")
    expect(panel.locator("#consent-state")).to_be_visible()
    sms_row = panel.locator('tr[data-purpose="marketing_sms"]')
    expect(sms_row).to_contain_text("未询问")
    panel.get_by_label("用途").select_option("marketing_sms")
    panel.get_by_label("答复").select_option("true")
    panel.get_by_label("告知书版本").fill("2026-01")
    panel.get_by_role("button", name="记录同意").click()
    expect(page.locator("#consents")).to_contain_text("已记录同意。")
    expect(page.locator('#consents tr[data-purpose="marketing_sms"]')).to_contain_text("已同意")
    page.locator("#consents summary").click()
    history = page.locator("#consent-history")
    expect(history).to_contain_text("短信营销: 同意 · 坐席（电话或柜台） · agent · 告知书 2026-01")
    # Below the sticky top bar, then the panel alone.
    page.locator("#consents").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -90)")
    page.locator("#consents").screenshot(path=str(SHOTS / "consent-panel.png"))
    context.close()

    # The customer opens the link of a marketing text on a phone.
    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 760})
    mobile = phone.new_page()
    token = make_token(customer_id, Purpose.marketing_sms)
    mobile.goto(f"{live_server}/u/{token}")
    expect(mobile.get_by_role("heading", name="退订")).to_be_visible()
    expect(mobile.locator("main")).to_contain_text("不再接收以下用途的消息：短信营销？")
    _shot(mobile, "unsubscribe")
    mobile.get_by_role("button", name="是，为我退订").click()
    expect(mobile.get_by_role("heading", name="您已退订")).to_be_visible()
    _shot(mobile, "unsubscribe-done")
    mobile.goto(f"{live_server}/u/{token[:-3]}xyz?lang=en")
    expect(mobile.get_by_role("heading", name="This link does not work")).to_be_visible()
    phone.close()
