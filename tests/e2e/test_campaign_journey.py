"""A supervisor runs a measured campaign in a real browser: an audience of 60 customers
(tagged at a fair), a campaign with a 30 % control group created and launched from the
pages, customers respond (they open their tracked links, some ship), and the report page
shows the funnel and the return with its interval — the exact figures of the responses."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import DATABASES, SHOTS

pytestmark = pytest.mark.e2e
TAG = "展会客户"
FEE = 5000


@contextmanager
def _api(base: str, username: str) -> Iterator[httpx.Client]:
    """A JSON API client signed in as ``username``."""
    with httpx.Client(base_url=base, timeout=20) as api:
        token = api.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield api


def _audience(base: str) -> int:
    """60 customers met at a fair, and the audience of them (through the JSON API)."""
    with _api(base, "manager") as api:
        for n in range(60):
            resp = api.post("/api/v1/customers", json={"name": f"展会客户{n:02d}", "tags": [TAG]})
            assert resp.status_code == 201, resp.text
        resp = api.post(
            "/api/v1/audiences",
            json={"name": "展会新客", "definition": {"tags_any": [TAG]}},
        )
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])


def _database(live_server: str) -> Path:
    """The live server's SQLite file."""
    return DATABASES[live_server]


def test_a_supervisor_launches_a_campaign_and_reads_its_return(
    live_server: str, browser: Any
) -> None:
    _audience(live_server)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/campaigns")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/campaigns$"))
    page.get_by_role("link", name="新建活动").click()

    page.locator("#f-name").fill("展会新客回访")
    page.locator("#f-audience_id").select_option(label="展会新客")
    expect(page.locator("#audience-count")).to_have_text("现有 60 位客户")
    page.locator("#f-channel").select_option("email")
    page.locator("#f-target_url").fill("https://example.com/fair")
    page.locator("#f-control_pct").fill("30")
    page.locator("#f-A_subject_zh").fill("展会专享寄件优惠")
    # A placeholder the campaign does not know is refused beside its field.
    page.locator("#f-A_body_zh").fill("{name}您好，展会专享：{link} {price}")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#form-errors")).to_contain_text("未知占位符 {price}")
    page.locator("#f-A_body_zh").fill("{name}您好，展会专享寄件优惠：{link}")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("h1")).to_have_text("展会新客回访")
    page.get_by_role("button", name="立即发布").click()
    expect(page.locator("#fact-recipients")).to_have_text("60")

    # The customers respond: the recipients and their link codes as stored.
    with sqlite3.connect(_database(live_server)) as db:
        rows = db.execute(
            "SELECT r.customer_id, r.variant, r.code FROM campaign_recipient r "
            "JOIN campaign c ON c.id = r.campaign_id WHERE c.name = '展会新客回访' "
            "ORDER BY r.customer_id"
        ).fetchall()
    treated = [(cid, code) for cid, variant, code in rows if variant != "control"]
    control = [cid for cid, variant, _code in rows if variant == "control"]
    assert len(treated) + len(control) == 60
    assert len(control) >= 2
    clicked = treated[:6]
    with httpx.Client(base_url=live_server, timeout=20) as public:
        for _cid, code in clicked:
            resp = public.get(f"/c/{code}")
            assert resp.status_code == 302
            assert resp.headers["location"] == "https://example.com/fair"
    buyers = [cid for cid, _code in treated[: len(treated) // 2]] + control[:1]
    with _api(live_server, "agent") as api:
        for n, cid in enumerate(buyers):
            resp = api.post(
                "/api/v1/shipments",
                json={"waybill_no": f"ZH{n:010d}", "customer_id": cid, "fee_fen": FEE},
            )
            assert resp.status_code == 201, resp.text

    page.get_by_role("button", name="刷新转化").click()
    funnel = page.locator("#funnel")
    row_a = funnel.locator('tr[data-group="A"]')
    expect(row_a.locator("td").nth(3)).to_have_text(str(len(clicked)))
    expect(row_a.locator("td").nth(4)).to_have_text(str(len(treated) // 2))
    row_c = funnel.locator('tr[data-group="control"]')
    expect(row_c.locator("td").nth(4)).to_have_text("1")
    # Incremental revenue = (treated − control revenue per head) × treated, in yuan.
    n_t, n_c = len(treated), len(control)
    estimate = round(((len(treated) // 2) * FEE / n_t - FEE / n_c) * n_t)
    expect(page.locator("#roi-incremental td").first).to_have_text(f"{estimate / 100:,.2f}")
    expect(page.locator("#roi-incremental td").nth(1)).to_contain_text("–")
    expect(page.locator("#cp-funnel canvas")).to_be_visible()
    # A cost line arrives after the launch: the net and the ROI follow.
    page.locator("#f-label").fill("短信与设计")
    page.locator("#f-amount_yuan").fill("200")
    page.get_by_role("button", name="添加成本").click()
    expect(page.locator("#cost-total")).to_have_text("200.00")
    expect(page.locator("#roi-net td").first).to_have_text(f"{(estimate - 20_000) / 100:,.2f}")
    expect(page.locator("#roi-ratio td").first).to_have_text(f"{(estimate - 20_000) / 200:.0f}%")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # From the top: the sticky header would otherwise be drawn where the page was scrolled.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "campaign-report.png"), full_page=True)
    context.close()
