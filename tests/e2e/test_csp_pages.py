"""The content security policy holds in a real browser: every page in each role's main
menu, the detail pages (a customer's 360, a ticket, a campaign with its charts), the
public pages (self-service, survey, lead form, unsubscribe) load with no
``securitypolicyviolation`` event and no policy error on the console, while htmx and
ECharts run (charts drawn, a tooltip shown)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from guanxi.app import create_app
from guanxi.demo.accounts import DEMO_PASSWORD
from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY, settings_for

pytestmark = pytest.mark.e2e

# Recorded in the page before any of its own scripts run (Playwright's init scripts are
# not subject to the page's policy).
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
ROLES = ("agent", "manager", "analyst", "sales")
# How Chromium words a refusal by a policy on the console.
POLICY_WORDS = ("Content Security Policy", "Refused to", "Permissions-Policy", "Permissions policy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """``guanxi demo`` (300 customers, every domain, analytics computed) behind a server."""
    tmp = tmp_path_factory.mktemp("csp")
    url = f"sqlite:///{tmp / 'demo.db'}"
    env = {
        **os.environ,
        "GUANXI_ENV": "test",
        "GUANXI_DATABASE_URL": url,
        "GUANXI_DATA_DIR": str(tmp),
        "GUANXI_SECRET_KEY": "test-secret",
        "GUANXI_FIELD_KEYS": json.dumps({"t1": TEST_FIELD_KEY}),
        "GUANXI_ACTIVE_FIELD_KEY": "t1",
        "GUANXI_BLIND_INDEX_KEY": TEST_BLIND_KEY,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "guanxi.cli", "demo", "--customers", "300"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    app = create_app(settings_for(url, tmp))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


class Watched:
    """A page whose policy violations and console errors are collected."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(locale="zh-CN")
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.visited: list[str] = []
        self.page.on("console", self._console)
        # A script that failed (htmx refusing an eval, a chart that could not draw).
        self.page.on("pageerror", lambda error: self.console.append(f"{self.page.url}: {error}"))

    def _console(self, message: Any) -> None:
        if any(word in message.text for word in POLICY_WORDS):
            self.console.append(f"{self.page.url}: {message.text}")

    def visit(self, url: str) -> Page:
        """Open ``url`` and wait for its scripts to settle."""
        response = self.page.goto(url)
        assert response is not None
        self.page.wait_for_load_state("networkidle")
        self.visited.append(url)
        return self.page

    def violations(self) -> list[str]:
        """Violations recorded on the page now open."""
        return [f"{self.page.url}: {v}" for v in self.page.evaluate("window.__csp")]


def _sign_in(w: Watched, base: str, username: str) -> None:
    w.visit(f"{base}/login?next=/customers")
    w.page.get_by_label("用户名").fill(username)
    w.page.get_by_label("密码").fill(DEMO_PASSWORD)
    w.page.get_by_role("button", name="登录").click()
    expect(w.page).to_have_url(re.compile(r"/customers"))


def _ids(app: Any) -> dict[str, Any]:
    from guanxi.campaigns.models import Campaign
    from guanxi.surveys.models import SurveyOutlet, SurveyTemplate
    from guanxi.surveys.outlets import outlet_code
    from guanxi.tickets.models import Ticket

    with app.state.sessionmaker() as s:
        outlet = s.scalars(select(SurveyOutlet).order_by(SurveyOutlet.id)).first()
        template = s.get(SurveyTemplate, outlet.template_id) if outlet else None
        return {
            "ticket": s.scalar(select(Ticket.id).order_by(Ticket.id).limit(1)),
            "campaign": s.scalar(select(Campaign.id).order_by(Campaign.id).limit(1)),
            "outlet": outlet_code(outlet, template.code, "test-secret")
            if outlet and template
            else None,
        }


def test_no_page_breaks_the_content_policy(demo_server: tuple[str, Any], browser: Any) -> None:
    base, app = demo_server
    ids = _ids(app)
    assert all(ids.values()), ids
    problems: list[str] = []
    for role in ROLES:
        w = Watched(browser)
        _sign_in(w, base, role)
        menu = w.page.eval_on_selector_all(
            "nav.mainnav a", "links => links.map(a => a.getAttribute('href'))"
        )
        assert menu, role
        # A customer this role may open: the first of its own customer list.
        w.visit(f"{base}/customers")
        first = w.page.eval_on_selector_all(
            "main a[href^='/customers/']",
            "links => links.map(a => a.getAttribute('href'))"
            ".filter(h => /^[/]customers[/][0-9]+$/.test(h))",
        )
        assert first, role
        pages = [*menu, first[0]]
        if role in ("agent", "manager"):
            pages += [f"/tickets/{ids['ticket']}"]
        if role == "manager":
            pages += [f"/campaigns/{ids['campaign']}", "/analytics/service"]
        if role == "analyst":
            pages += ["/analytics/service", "/analytics/forecast"]
        if role == "sales":
            pages += ["/sales/forecast"]
        for path in pages:
            w.visit(base + path)
            problems += w.violations()
        problems += w.console
        w.context.close()
    assert problems == []


def test_charts_and_htmx_run_under_the_policy(demo_server: tuple[str, Any], browser: Any) -> None:
    base, _app = demo_server
    w = Watched(browser)
    _sign_in(w, base, "analyst")
    tips = 0
    for path in ("/analytics", "/analytics/forecast"):
        page = w.visit(base + path)
        # ECharts drew into its canvases (styles it sets through the CSSOM are allowed).
        charts = page.locator("[_echarts_instance_]")
        assert charts.count() > 0, path
        page.evaluate(
            "window.__tips = 0; document.querySelectorAll('[_echarts_instance_]').forEach("
            "el => echarts.getInstanceByDom(el).on('showTip', () => { window.__tips += 1; }))"
        )
        # Over each chart: its tooltips (HTML ones would carry refused style attributes).
        for n in range(charts.count()):
            box = charts.nth(n).bounding_box()
            assert box is not None
            for fx in (0.3, 0.5, 0.7):
                page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.5)
                page.wait_for_timeout(100)
        tips += page.evaluate("window.__tips")
        assert w.violations() == [], path
    assert tips > 0
    # htmx loaded with the page's configuration: no indicator style element, no eval.
    config = w.page.evaluate(
        "({styles: document.querySelectorAll('style').length,"
        " eval: htmx.config.allowEval, indicator: htmx.config.includeIndicatorStyles})"
    )
    assert config == {"styles": 0, "eval": False, "indicator": False}
    assert w.console == []
    w.context.close()


def test_public_pages_keep_the_policy(demo_server: tuple[str, Any], browser: Any) -> None:
    base, app = demo_server
    ids = _ids(app)
    w = Watched(browser)
    problems: list[str] = []
    for path in ("/track", f"/q/o/{ids['outlet']}", "/forms/lead", "/u/not-a-token", "/login"):
        page = w.visit(base + path)
        # The page's style sheets loaded (an inline style would have been refused).
        rules = page.evaluate("[...document.styleSheets].map(s => s.cssRules.length)")
        assert rules, path
        assert all(n > 0 for n in rules), path
        problems += w.violations()
    problems += w.console
    w.context.close()
    assert problems == []


def test_the_policy_header_is_on_the_pages(demo_server: tuple[str, Any], browser: Any) -> None:
    base, _app = demo_server
    w = Watched(browser)
    response = w.page.goto(f"{base}/login")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self';" in policy
    # An inline script injected into the page is refused, and reported.
    w.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.body.appendChild(s); }"
    )
    w.page.wait_for_timeout(200)
    assert w.page.evaluate("window.__ran === undefined")
    violations = w.page.evaluate("window.__csp")
    assert len(violations) == 1
    assert violations[0].startswith("script-src-elem inline ")
    w.context.close()
