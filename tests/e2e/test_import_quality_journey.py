"""A supervisor imports a GBK spreadsheet export in a real browser — preview, mapping,
progress, rejected rows — then reads the data-quality report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_import_a_gbk_file_then_read_the_quality_report(
    live_server: str, browser: Any, tmp_path: Path
) -> None:
    data = tmp_path / "门店客户.csv"
    data.write_bytes(
        (
            "客户名称,手机号码,地址,来源渠道,生日\r\n"
            "赵六,13612345678,广东省深圳市南山区科技园路5号,微信,1988年3月5日\r\n"
            "钱七,137-1234-5678,上海市浦东新区世纪大道100号,网点,1990/7/1\r\n"
            "孙八,12345,北京市朝阳区建国路88号,电商,1975-12-31\r\n"
        ).encode("gbk")
    )
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/imports")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/imports$"))

    page.locator("#f-file").set_input_files(str(data))
    page.locator("form button.primary").click()
    # The preview: GBK decoded, Chinese headers mapped to fields.
    expect(page.locator("table").first).to_contain_text("赵六")
    expect(page.locator("select#m-0")).to_have_value("name")
    expect(page.locator("select#m-1")).to_have_value("phone")
    _shot(page, "import-preview")
    page.locator('button[name="dry_run"][value="0"]').click()

    progress = page.locator("#job-progress")
    expect(progress).not_to_have_attribute("hx-get", re.compile("."), timeout=30_000)
    expect(progress).to_contain_text("电话号码无效")
    expect(progress.get_by_role("link", name=re.compile("CSV"))).to_be_visible()
    _shot(page, "import-job")

    page.goto(f"{live_server}/quality")
    expect(page.get_by_role("heading", name="数据质量")).to_be_visible()
    expect(page.locator("#review-queue")).to_contain_text("待复核的疑似重复")
    _shot(page, "quality-report")
    context.close()
