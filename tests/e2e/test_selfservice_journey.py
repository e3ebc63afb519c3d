"""A customer on a phone: tracks a waybill (a wrong guess first), files a complaint about it,
follows it through the private link and, once it is resolved, answers the satisfaction
survey from that page. The agent works the ticket through the API meanwhile."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e
WAYBILL = "YT9876543210"
PHONE = {"width": 390, "height": 844}


def _agent_api(base: str) -> httpx.Client:
    api = httpx.Client(base_url=base, timeout=10)
    token = api.post("/api/v1/auth/token", json={"username": "agent", "password": PASSWORD})
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return api


def _shipment(api: httpx.Client) -> None:
    """李四 (phone ending 8000) sends a parcel to 王芳 (phone ending 6000)."""
    customer = api.get("/api/v1/customers", params={"q": "李四"}).json()["items"][0]
    created = api.post(
        "/api/v1/shipments",
        json={
            "waybill_no": WAYBILL,
            "customer_id": customer["id"],
            "service_type": "standard",
            "receiver_name": "王芳",
            "receiver_phone": "13600136000",
            "origin_province": "浙江省",
            "origin_city": "杭州市",
            "dest_province": "北京市",
            "dest_city": "北京市",
            "fee_fen": 1800,
            "created_at": "2026-11-20T09:00:00+08:00",
        },
    )
    assert created.status_code == 201, created.text
    for status, at, where in (
        ("in_transit", "2026-11-21T02:10:00+08:00", "杭州转运中心"),
        ("out_for_delivery", "2026-11-22T08:30:00+08:00", "北京朝阳营业部"),
    ):
        step = api.post(
            f"/api/v1/shipments/{created.json()['id']}/events",
            json={"status": status, "occurred_at": at, "location": where, "note": "快递员 赵六"},
        )
        assert step.status_code == 201, step.text


def _resolve(api: httpx.Client, ticket_id: int, reply: str, first: bool) -> None:
    if first:
        assert api.post(f"/api/v1/tickets/{ticket_id}/take").status_code == 200
    version = api.get(f"/api/v1/tickets/{ticket_id}").json()["version"]
    steps = [("start", "内部：联系营业部", False)] if first else []
    for action, note, is_reply in [*steps, ("resolve", reply, True)]:
        resp = api.post(
            f"/api/v1/tickets/{ticket_id}/actions",
            json={"action": action, "version": version, "note": note, "reply": is_reply},
        )
        assert resp.status_code == 200, resp.text
        version = resp.json()["version"]


def test_a_customer_files_and_follows_a_complaint(live_server: str, browser: Any) -> None:
    api = _agent_api(live_server)
    _shipment(api)
    context = browser.new_context(
        locale="zh-CN", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(f"{live_server}/track")
    expect(page.locator("h1")).to_have_text("查询运单")

    # A wrong guess: one message, whatever was wrong.
    page.get_by_label("运单号").fill(WAYBILL)
    page.get_by_label("手机号码后 4 位").fill("1234")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#track-error")).to_have_text("没有与您输入的信息相符的运单。")

    # The receiver's last four digits: the masked tracking and the filing form.
    page.get_by_label("手机号码后 4 位").fill("6000")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#shipment-status")).to_have_text("派送中")
    expect(page.locator("#s-receiver")).to_have_text("王* · ****6000")
    expect(page.locator("#s-sender")).to_have_text("李*")
    expect(page.locator("#tracking li").first).to_contain_text("北京朝阳营业部")
    expect(page.locator("body")).not_to_contain_text("赵六")  # staff notes stay inside
    expect(page.locator("body")).not_to_contain_text("18.00")  # no fee
    # One column on a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("问题类别").select_option("delay.delivery")
    page.get_by_label("发生了什么？").fill("显示派送中已经两天了，还没有人联系我。")
    page.get_by_role("button", name="提交").click()
    expect(page).to_have_url(re.compile(r"/s/[A-Za-z0-9_-]{43}\?filed=1$"))
    expect(page.locator("#filed")).to_contain_text("此专属链接是查看工单进度的唯一方式")
    expect(page.locator("#ticket-status")).to_have_text("已受理：等待客服人员处理")
    expect(page.locator("#ticket-waybill")).to_have_text("YT98****3210")
    ticket_id = int(re.search(r"#(\d+)", page.locator("h1").inner_text()).group(1))  # type: ignore[union-attr]
    private = page.url.split("?")[0]

    # The customer adds a message; the agent replies and resolves.
    page.get_by_label("给我们留言").fill("白天家里没人，请放门卫。")
    page.get_by_role("button", name="发送留言").click()
    expect(page.locator("#messages")).to_contain_text("白天家里没人，请放门卫。")
    _resolve(api, ticket_id, "已联系朝阳营业部，今天下午放门卫。", first=True)

    page.goto(private)
    expect(page.locator("#ticket-status")).to_have_text("已处理：请告诉我们您是否满意")
    expect(page.locator("#messages")).to_contain_text("已联系朝阳营业部，今天下午放门卫。")
    expect(page.locator("body")).not_to_contain_text("内部：联系营业部")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "self-service.png"), full_page=True)
    # The survey, from the private page (its link also went out by SMS).
    page.get_by_role("link", name="填写问卷").click()
    expect(page.locator("#survey-title")).to_have_text("工单处理满意度调查")
    page.locator("#q-csat label").filter(has_text=re.compile(r"^4$")).click()
    page.locator("#q-nps label").filter(has_text=re.compile(r"^5$")).click()
    page.get_by_label("您的回答").fill("门卫说没收到")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#follow-up-note")).to_be_visible()
    page.goto(private)
    expect(page.locator("#ticket-rating")).to_have_text("4 / 10")
    expect(page.locator("#survey-link")).to_have_count(0)

    ticket = api.get(f"/api/v1/tickets/{ticket_id}").json()
    assert (ticket["channel"], ticket["status"], ticket["satisfaction"]) == (
        "web_form",
        "resolved",
        4,
    )
    assert ticket["reopened"] == 0

    # The same page in English, from the switch on the page.
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text(f"Your request #{ticket_id}")
    expect(page).to_have_url(f"{private}?lang=en")
    context.close()
