"""An analyst reads the dashboards in a real browser: the ECharts charts are drawn with
their data, a tile and a chart bar each open the rows behind their number, the list
exports to CSV, the service and forecast tabs draw, and the page fits a phone."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from guanxi.analytics import runner
from guanxi.app import create_app
from guanxi.core.migrate import upgrade
from guanxi.demo.accounts import DEMO_PASSWORD, ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.history import History, load_staff
from tests.conftest import settings_for
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Guanxi with the demo's customers, shipments and service history (1,500 customers)
    and the analytics computed on them."""
    tmp = tmp_path_factory.mktemp("dash")
    settings = settings_for(f"sqlite:///{tmp / 'dash.db'}", tmp)
    app = create_app(settings)
    engine = app.state.engine
    upgrade(engine)
    with app.state.sessionmaker() as session:
        owners = ensure_demo_users(session)
        history = History(load_staff(session))
    generate(engine, customers=1500, seed=7, owner_ids=owners, history=history)
    history.write(engine)
    summary = runner.run(engine, settings, only=["kpi", "forecast"])
    assert summary.status == "succeeded", summary
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _chart(page: Page, element_id: str, expression: str) -> Any:
    """Evaluate ``expression`` on the option of the chart drawn in ``element_id``."""
    return page.evaluate(
        f"() => {{ const option = echarts.getInstanceByDom("
        f"document.getElementById('{element_id}')).getOption(); return {expression}; }}"
    )


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login?next=/customers")
    page.get_by_label("用户名").fill("analyst")
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/customers"))


def test_an_analyst_reads_the_dashboards(
    dashboard_server: str, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(page, dashboard_server)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="数据分析").click()
    expect(page).to_have_url(re.compile(r"/analytics$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("客户与运单")

    # Every chart is an ECharts instance with its series and data, drawn on a canvas.
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom("
                           "document.getElementById('chart-segments'))")  # fmt: skip
    for element_id, series in (
        ("chart-volume", 2),
        ("chart-customers", 3),
        ("chart-retention", 3),
        ("chart-segments", 1),
    ):
        assert _chart(page, element_id, "option.series.length") == series
        expect(page.locator(f"#{element_id} canvas")).to_have_count(1)
    shipments = _chart(page, "chart-volume", "option.series[0].data")
    assert len(shipments) == 13
    assert sum(shipments) > 0
    # The bar of the chosen month is the figure on its tile.
    tile = page.locator("#tile-shipments .an-tile-value")
    assert int(tile.inner_text().replace(",", "")) == shipments[-1]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "analytics-dashboard.png"), full_page=True)

    # Recompute asks the worker for a run (the analytics API, with the page's CSRF token).
    page.get_by_role("button", name="重新计算").click()
    expect(page.locator("[data-recompute-status]")).to_have_text(
        "已提交重新计算：后台任务将刷新数据。"
    )

    # A tile opens the customers behind it, as many as it says.
    active = page.locator("#tile-active_customers .an-tile-value").inner_text()
    page.locator("#tile-active_customers").click()
    expect(page).to_have_url(re.compile(r"/analytics/drill\?metric=active_customers"))
    expect(page.locator("#drill-total")).to_have_text(active)
    expect(page.locator("#drill-rows tbody tr")).to_have_count(
        min(50, int(active.replace(",", "")))
    )
    first = page.locator("#drill-rows tbody tr").first.get_by_role("link").first
    expect(first).to_have_attribute("href", re.compile(r"^/customers/\d+$"))

    # ... and exports them: UTF-8 with a byte-order mark, one line per customer.
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    path = tmp_path / "active.csv"
    download.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("客户编号,名称")
    assert len(lines) == 1 + int(active.replace(",", ""))

    # A click on a bar of the shipments chart opens that month's shipments.
    page.goto(f"{dashboard_server}/analytics")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom("
                           "document.getElementById('chart-volume'))")  # fmt: skip
    index = len(shipments) - 1
    # The bars grow in for about a second: click once they stand.
    page.wait_for_timeout(1200)
    x, y = page.evaluate(
        "(i) => { const c = echarts.getInstanceByDom(document.getElementById('chart-volume'));"
        " const v = c.getOption().series[0].data[i];"
        " return c.convertToPixel({seriesIndex: 0}, [i, v / 2]); }",
        index,
    )
    page.locator("#chart-volume").scroll_into_view_if_needed()
    box = page.locator("#chart-volume").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(page).to_have_url(re.compile(r"/analytics/drill\?metric=shipments"))
    expect(page.locator("#drill-total")).to_have_text(f"{shipments[-1]:,}")

    # The service tab and the forecast with its band.
    page.goto(f"{dashboard_server}/analytics/service")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom("
                           "document.getElementById('chart-complaints'))")  # fmt: skip
    assert _chart(page, "chart-complaints", "option.series.length") == 2
    page.get_by_role("navigation", name="仪表盘").get_by_role("link", name="预测").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("业务量预测")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom("
                           "document.getElementById('chart-forecast'))")  # fmt: skip
    assert _chart(page, "chart-forecast", "option.series.length") == 5
    ahead = _chart(page, "chart-forecast", "option.series[3].data.filter(v => v !== null)")
    assert len(ahead) > 0
    assert errors == []
    context.close()


def test_the_dashboard_fits_a_phone(dashboard_server: str, browser: Any) -> None:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    page = context.new_page()
    _sign_in(page, dashboard_server)
    page.goto(f"{dashboard_server}/analytics")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom("
                           "document.getElementById('chart-volume'))")  # fmt: skip
    # Nothing wider than the screen but the KPI table, which scrolls inside its card.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    width = page.evaluate("document.getElementById('chart-volume').clientWidth")
    assert 250 < width <= 390
    page.screenshot(path=str(SHOTS / "analytics-mobile.png"))
    context.close()
