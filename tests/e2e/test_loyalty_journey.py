"""An agent serves a member at the counter in a real browser: the customer's page loads the
membership panel (htmx), the agent spends points on a waybill, is told when the balance
is too low, and redeems the customer's coupon, typed in lower case with dashes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _member_with_coupon(base: str) -> tuple[int, str]:
    """李四 joins, gets 500 bonus points and a 10-yuan coupon (a supervisor's doing)."""
    with httpx.Client(base_url=base, timeout=10) as api:
        token = api.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        customers = api.get("/api/v1/customers", params={"limit": 50}).json()["items"]
        cid = next(c["id"] for c in customers if c["name"] == "李四")
        assert api.post("/api/v1/loyalty/members", json={"customer_id": cid}).status_code == 201
        bonus = {"points": 500, "reason": "开卡礼", "key": "e2e-welcome"}
        assert api.post(f"/api/v1/loyalty/members/{cid}/bonus", json=bonus).status_code == 201
        template = {
            "code": "save10", "name_zh": "满30减10", "name_en": "10 off 30",
            "kind": "amount_off", "amount_off_fen": 1000, "min_spend_fen": 3000, "valid_days": 30,
        }  # fmt: skip
        assert api.post("/api/v1/coupons/templates", json=template).status_code == 200
        issued = api.post(
            "/api/v1/coupons/issue",
            json={"template_code": "save10", "source_key": "e2e", "customer_ids": [cid]},
        ).json()
        return cid, issued["coupons"][str(cid)]


def test_an_agent_spends_points_and_redeems_a_coupon(live_server: str, browser: Any) -> None:
    cid, code = _member_with_coupon(live_server)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/customers/{cid}")
    page.get_by_label("用户名").fill("agent")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(rf"/customers/{cid}$"))

    panel = page.locator("#loyalty-panel")
    expect(panel.locator("#loyalty-balance")).to_have_text("500")
    expect(panel).to_contain_text("普通会员")
    expect(panel.locator("#loyalty-coupons")).to_contain_text("满30减10")

    # Spend 200 points on a waybill.
    panel.get_by_text("使用积分", exact=True).click()
    panel.get_by_label("积分", exact=True).fill("200")
    panel.get_by_label("订单或运单号").first.fill("SF7700012345")
    panel.get_by_role("button", name="兑换积分").click()
    expect(panel.get_by_role("status")).to_have_text("已兑换积分")
    expect(panel.locator("#loyalty-balance")).to_have_text("300")
    expect(panel.locator("#loyalty-ledger")).to_contain_text("-200")

    # More than the balance: refused, nothing spent, the balance named.
    panel.get_by_text("使用积分", exact=True).click()
    panel.get_by_label("积分", exact=True).fill("1000")
    panel.get_by_label("订单或运单号").first.fill("SF7700012346")
    panel.get_by_role("button", name="兑换积分").click()
    expect(panel.get_by_role("alert")).to_contain_text("积分：积分不足：余额为 300")
    expect(panel.locator("#loyalty-balance")).to_have_text("300")

    # The coupon, typed as the customer reads it out.
    shown = f"{code[:4]}-{code[4:8]}-{code[8:]}".lower()
    panel.get_by_text("使用优惠券", exact=True).click()
    panel.get_by_label("券码").fill(shown)
    panel.get_by_label("订单或运单号").last.fill("SF7700012345")
    panel.get_by_label("订单金额（元）").fill("45")
    panel.get_by_role("button", name="核销优惠券").click()
    expect(panel.get_by_role("status")).to_have_text("优惠券已核销")
    expect(panel.locator("#loyalty-coupons")).to_contain_text("已使用")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The sticky top bar must not cover the panel in the picture; set through the CSSOM
    # (the CSP refuses an injected <style>).
    page.locator(".topbar").evaluate(
        "bar => bar.style.setProperty('position', 'static', 'important')"
    )
    panel.screenshot(path=str(SHOTS / "loyalty-panel.png"))
    context.close()
