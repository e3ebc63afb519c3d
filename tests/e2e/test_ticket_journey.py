"""An agent's complaint in a real browser: from the waybill on the customer's page open a
ticket, take it, reply, resolve; the customer says on the phone they are not satisfied, the
agent types the answer into the survey (which opens its follow-up ticket), the ticket is
closed and the return visit appears in the due list."""

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


def test_complaint_until_the_customer_is_satisfied(live_server: str, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/customers")
    page.get_by_label("用户名").fill("agent")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_label("搜索").fill("李四")
    page.locator("#results").get_by_role("link", name="李四").click()
    # From the customer's waybill: the ticket is about that shipment.
    page.get_by_role("link", name="SF7700012345").first.click()
    page.get_by_role("link", name="新建工单").click()
    expect(page.get_by_label("运单号")).to_have_value("SF7700012345")
    page.get_by_label("严重程度").select_option("major")
    page.get_by_label("主题").fill("快件三天未更新物流")
    page.get_by_label("描述").fill("客户来电：快件在杭州中转站停滞三天。")
    page.get_by_role("button", name="创建工单").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    page.get_by_role("button", name="受理此工单").click()
    expect(page.locator("#owner")).to_contain_text("客服专员 李娜")

    page.get_by_label("回复或备注").fill("已联系中转站，今天加急派送。")
    page.get_by_label("作为回复发送给客户").check()
    page.get_by_role("button", name="开始处理").click()
    page.get_by_label("处理结果").fill("加急派送")
    page.get_by_label("根本原因").fill("中转站积压")
    page.get_by_role("button", name="解决").click()
    ticket_url = page.url
    # The customer's answer on the phone goes into the satisfaction survey.
    page.get_by_role("link", name="录入客户的问卷回答（电话 / 纸质）").click()
    page.get_by_label(re.compile("总体而言")).select_option("3")
    page.get_by_label(re.compile("推荐我们")).select_option("2")
    page.get_by_label(re.compile("主要原因")).fill("还没收到")
    page.get_by_role("button", name="保存回答").click()
    # A detractor: the survey opened its follow-up ticket; this one stays resolved.
    expect(page.locator("#r-follow-up")).to_contain_text("回访工单")
    page.goto(ticket_url)
    expect(page.locator("#ticket-satisfaction strong")).to_have_text("3")
    expect(page.locator("#timeline")).to_contain_text("客户不满意")
    _shot(page, "ticket-detail")
    page.get_by_role("button", name="关闭").click()
    expect(page.locator("h1")).to_contain_text("已关闭")

    page.goto(f"{live_server}/tickets?view=done")
    expect(page.locator("#tickets")).to_contain_text("快件三天未更新物流")
    # Closing the complaint booked the return visit (回访) in the owner's due list.
    page.goto(f"{live_server}/due")
    expect(page.locator("main")).to_contain_text("快件三天未更新物流")
    page.goto(f"{live_server}/tickets/new")
    page.get_by_label("主题").fill("咨询保价规则")
    page.get_by_label("类型").select_option("inquiry")
    page.get_by_role("button", name="创建工单").click()
    page.goto(f"{live_server}/tickets?view=unassigned")
    expect(page.locator("#tickets")).to_contain_text("咨询保价规则")
    _shot(page, "ticket-queue")
    context.close()
