"""A supervisor works a compensation claim in a real browser: from the claims list open the
claim filed on a damaged parcel's ticket, upload a photo as evidence (and download it
back), approve it within the limit, record the payout."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS

pytestmark = pytest.mark.e2e


def _png() -> bytes:
    """A small real PNG (a 4 x 4 red square)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * 4 for _ in range(4))
    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _claim_on_a_ticket(base: str) -> int:
    """Through the API, as the agent on the phone would: a customer, their waybill, a
    complaint about it, and a claim of 280 元 on it (uninsured, fee 120 元)."""
    with httpx.Client(base_url=base, timeout=10) as api:
        token = api.post("/api/v1/auth/token", json={"username": "agent", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        customer = api.post("/api/v1/customers", json={"name": "赵六", "phones": ["13600136000"]})
        assert customer.status_code == 201, customer.text
        shipment = api.post(
            "/api/v1/shipments",
            json={
                "waybill_no": "SF7700112233",
                "customer_id": customer.json()["id"],
                "fee_fen": 12_000,
                "weight_g": 5200,
                "receiver_name": "赵六",
                "dest_province": "浙江省",
                "dest_city": "杭州市",
                "is_damaged": True,
            },
        )
        assert shipment.status_code == 201, shipment.text
        ticket = api.post(
            "/api/v1/tickets",
            json={
                "type": "claim",
                "channel": "hotline",
                "customer_id": customer.json()["id"],
                "waybill_no": "SF7700112233",
                "subject": "电饭煲外箱压坏，要求赔偿",
            },
        )
        assert ticket.status_code == 201, ticket.text
        claim = api.post(
            "/api/v1/claims",
            json={
                "waybill_no": "SF7700112233",
                "reason": "damage",
                "requested_fen": 28_000,
                "ticket_id": ticket.json()["id"],
                "evidence": "客户称签收时外箱已压坏，内胆变形。",
            },
        )
        assert claim.status_code == 201, claim.text
        return int(claim.json()["id"])


def test_a_supervisor_approves_and_pays_a_claim(
    live_server: str, browser: Any, tmp_path: Path
) -> None:
    claim_id = _claim_on_a_ticket(live_server)
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.goto(f"{live_server}/login?next=/tickets")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="理赔").click()
    expect(page).to_have_url(re.compile(r"/claims$"))
    expect(page.locator("#my-limit")).to_have_text("¥5,000.00")
    row = page.locator("#claims tbody tr", has_text="SF7700112233")
    expect(row).to_contain_text("赵六")
    expect(row).to_contain_text("280.00")
    row.get_by_role("link", name=str(claim_id), exact=True).click()

    expect(page).to_have_url(re.compile(rf"/claims/{claim_id}$"))
    expect(page.locator("#claim-standard")).to_have_text("¥280.00")
    expect(page.locator("#standard-basis")).to_contain_text("运费 ¥120.00 的 3 倍")
    expect(page.locator("#approver-limit")).to_have_text("¥5,000.00")

    photo = tmp_path / "破损外箱.png"
    photo.write_bytes(_png())
    page.locator("#evidence").get_by_label("上传附件").set_input_files(str(photo))
    page.locator("#evidence").get_by_role("button", name="上传", exact=True).click()
    link = page.locator("#evidence").get_by_role("link", name="破损外箱.png")
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "back.png"
    download.value.save_as(str(saved))
    assert download.value.suggested_filename == "破损外箱.png"
    assert saved.read_bytes() == photo.read_bytes()

    page.get_by_label("批准金额（元）").fill("260")
    page.get_by_label("备注").fill("照片核实外箱破损，按实际损失赔付。")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # From the top: the sticky menu bar would otherwise sit where the page was scrolled.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "claims.png"), full_page=True)
    page.get_by_role("button", name="批准", exact=True).click()
    expect(page.locator("#claim-status")).to_have_text("已批准")
    expect(page.locator("#claim-approved")).to_have_text("¥260.00")

    page.get_by_label(re.compile("赔付流水号")).fill("WX-20261125-0042")
    page.get_by_role("button", name="标记为已赔付").click()
    expect(page.locator("#claim-status")).to_have_text("已支付")
    expect(page.locator("#claim-payout")).to_have_text("WX-20261125-0042")

    page.get_by_role("link", name="返回理赔列表").click()
    expect(page.locator("#claims tbody tr", has_text="SF7700112233")).to_contain_text("260.00")
    context.close()
