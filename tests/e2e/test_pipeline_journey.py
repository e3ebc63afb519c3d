"""A sales manager works the pipeline in a real browser: drag a card from one stage to the
next on the board (HTML5 drag and drop, posted through htmx), the weighted total follows,
and the forecast page shows the new figure."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from guanxi.core import clock
from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _opportunities(base: str) -> int:
    """Two opportunities of the manager (10% and 25% stage defaults); returns the id of
    the lead to drag."""
    close = (clock.now().date() + timedelta(days=40)).isoformat()
    with httpx.Client(base_url=base, timeout=10) as api:
        token = api.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        lead = api.post(
            "/api/v1/sales/opportunities",
            json={
                "title": "顺达物流月结合作",
                "expected_revenue": 2_000_000,
                "expected_close": close,
            },
        )
        assert lead.status_code == 201, lead.text
        other = api.post(
            "/api/v1/sales/opportunities",
            json={
                "title": "冷链年框",
                "stage": "qualified",
                "expected_revenue": 1_000_000,
                "expected_close": close,
            },
        )
        assert other.status_code == 201, other.text
        return int(lead.json()["id"])


def test_a_manager_drags_a_card_and_the_forecast_follows(live_server: str, browser: Any) -> None:
    lead_id = _opportunities(live_server)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/sales")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/sales$"))
    # 10% of 20 000 yuan and 25% of 10 000 yuan.
    expect(page.locator("#board-weighted")).to_have_text("4,500.00")
    card = page.locator(f"#opp-{lead_id}")
    expect(page.locator('section[data-stage="lead"]').locator(f"#opp-{lead_id}")).to_be_visible()

    card.drag_to(page.locator('section[data-stage="proposal"]'))

    # The board comes back from the server: the card in 方案报价, 50% of 20 000 yuan now.
    expect(
        page.locator('section[data-stage="proposal"]').locator(f"#opp-{lead_id}")
    ).to_be_visible()
    expect(page.locator("#board-weighted")).to_have_text("12,500.00")
    expect(page.locator(f"#opp-{lead_id}")).to_have_class(re.compile(r"\bmoved\b"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "sales-pipeline.png"), full_page=True)
    page.get_by_role("link", name="预测", exact=True).click()
    expect(page.locator("#forecast-weighted")).to_have_text("12,500.00")
    context.close()
