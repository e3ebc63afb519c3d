"""A real Guanxi server (uvicorn, SQLite file) and real headless Chromium for browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from guanxi.app import create_app
from guanxi.audit.service import Actor
from guanxi.core.migrate import upgrade
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.dedupe.service import run as run_dedupe
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from tests.conftest import PASSWORD, settings_for

CHROMIUM = os.environ.get("GUANXI_CHROMIUM", "/usr/bin/chromium")
# Where the journeys save their screenshots: the README's own folder only when asked
# (GUANXI_SCREENSHOTS=1 refreshes them), otherwise a scratch folder, so an ordinary test
# run leaves the tracked pictures alone.
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("GUANXI_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="guanxi-shots-"))
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The SQLite file behind each running live server, by its base URL (a test that checks
# what the server stored reads it).
DATABASES: dict[str, Path] = {}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Guanxi on 127.0.0.1 with an agent user and a few customers."""
    tmp = tmp_path_factory.mktemp("e2e")
    app = create_app(settings_for(f"sqlite:///{tmp / 'e2e.db'}", tmp))
    upgrade(app.state.engine)
    with app.state.sessionmaker() as session:
        agent = create_user(
            session,
            user_in=UserCreate(
                username="agent", display_name="客服专员 李娜", role="agent", password=PASSWORD
            ),  # type: ignore[arg-type]
            actor=Actor.system("e2e"),
        )
        for body in (
            {
                "name": "张三丰",
                "phones": ["13912345678"],
                "tags": ["VIP"],
                "addresses": [{"line": "浙江省杭州市临平区南苑街道人民大道100号"}],
                "source": "wechat",
            },
            {"name": "李四", "phones": ["13800138000"]},
            {
                "kind": "enterprise",
                "name": "杭州顺达物流有限公司",
                "phones": ["0571-88881234"],
                "industry": "电商",
                "contacts": [{"name": "陈经理", "title": "物流经理", "phone": "13700137000"}],
            },
            # The same customer again from another channel, in traditional characters.
            {
                "name": "張三豐",
                "phones": ["13912345678"],
                "email": "zsf@example.cn",
                "addresses": [{"line": "浙江省杭州市人民大道100号"}],
                "source": "app",
            },
        ):
            customer = create_customer(session, customer_in=CustomerCreate(**body), actor=agent)  # type: ignore[arg-type]
            if body["name"] == "李四":
                # A waybill of 李四's to complain about (the ticket journey starts from it).
                create_shipment(
                    session,
                    shipment_in=ShipmentCreate(
                        waybill_no="SF7700012345",
                        customer_id=customer.id,
                        origin_province="广东省",
                        dest_province="浙江省",
                        dest_city="杭州市",
                        fee_fen=1800,
                    ),
                    actor=agent,
                )
        create_user(
            session,
            user_in=UserCreate(
                username="manager", display_name="客服主管 王芳", role="manager", password=PASSWORD
            ),  # type: ignore[arg-type]
            actor=Actor.system("e2e"),
        )
        # Queue the likely duplicates for review (nothing merged automatically).
        run_dedupe(session, actor=Actor.system("e2e"), auto_merge=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    DATABASES[base] = tmp / "e2e.db"
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (no browser download)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: scripts/test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
