"""The satisfaction survey in real Chromium: an agent resolves a ticket; the customer opens
the survey link of the SMS queued in the outbox on a phone and answers as a detractor; the
follow-up ticket appears in the queue and the NPS on the results page changes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect
from sqlalchemy import select

from guanxi.app import create_app
from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.migrate import upgrade
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.notify.models import OutboxMessage
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD, settings_for
from tests.e2e.conftest import SHOTS, _free_port

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def survey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """Guanxi on 127.0.0.1 (its app kept, to read the outbox as the SMS gateway would), with
    an agent, a supervisor and a customer who has a mobile number."""
    tmp = tmp_path_factory.mktemp("e2e-survey")
    app = create_app(settings_for(f"sqlite:///{tmp / 'e2e.db'}", tmp))
    upgrade(app.state.engine)
    with app.state.sessionmaker() as session:
        system = Actor.system("e2e")
        for username, name, role in (("agent", "客服专员 李娜", "agent"),
                                     ("manager", "客服主管 王芳", "manager")):  # fmt: skip
            create_user(
                session,
                user_in=UserCreate(
                    username=username, display_name=name, role=role, password=PASSWORD
                ),  # type: ignore[arg-type]
                actor=system,
            )
        create_customer(
            session,
            customer_in=CustomerCreate(name="赵敏", phones=["13912345678"], region="浙江省"),  # type: ignore[arg-type]
            actor=system,
        )
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


def _api(base: str, username: str) -> httpx.Client:
    api = httpx.Client(base_url=base, timeout=10)
    token = api.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return api


def _resolve_a_ticket(api: httpx.Client) -> int:
    customer = api.get("/api/v1/customers", params={"q": "赵敏"}).json()["items"][0]
    created = api.post(
        "/api/v1/tickets",
        json={"type": "complaint", "channel": "hotline", "customer_id": customer["id"],
              "subject": "快件延误三天", "region": "浙江省"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    ticket_id = int(created.json()["id"])
    assert api.post(f"/api/v1/tickets/{ticket_id}/take").status_code == 200
    version = api.get(f"/api/v1/tickets/{ticket_id}").json()["version"]
    for action, note in (("start", None), ("resolve", "已联系网点加急派送，今天送达。")):
        resp = api.post(
            f"/api/v1/tickets/{ticket_id}/actions",
            json={"action": action, "version": version, "note": note, "reply": bool(note)},
        )
        assert resp.status_code == 200, resp.text
        version = resp.json()["version"]
    return ticket_id


def _earlier_answers(api: httpx.Client) -> list[int]:
    """Thirty phone answers of the last three months (typed in by the agent), timeliness
    driving satisfaction; returns their NPS scores."""
    customer = api.get("/api/v1/customers", params={"q": "赵敏"}).json()["items"][0]
    today = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    scores = []
    for i in range(30):
        timeliness, attitude = 3 + (i * 7) % 8, 5 + (i * 3) % 6
        csat = max(1, min(10, round(0.7 * timeliness + 0.2 * attitude + 1)))
        nps = max(0, min(10, csat + (i % 3) - 1))
        scores.append(nps)
        answers = {"csat": csat, "nps": nps, "dim_timeliness": timeliness,
                   "dim_attitude": attitude, "dim_process": 4 + (i * 5) % 7}  # fmt: skip
        with clock.frozen(today - timedelta(days=87 - 3 * i)):
            # Signed in at that moment too (a token from the future is no token).
            resp = _api(str(api.base_url), "agent").post(
                "/api/v1/surveys/responses",
                json={"template": "after_ticket", "channel": "phone",
                      "customer_id": customer["id"], "answers": answers},
            )  # fmt: skip
        assert resp.status_code == 201, resp.text
    return scores


def nps_of(scores: list[int]) -> str:
    """The NPS as the results page shows it."""
    value = 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)
    return f"{value:+.1f}"


def _sms_link(app: Any, base: str) -> str:
    """The survey link of the invitation SMS waiting in the outbox."""
    with app.state.sessionmaker() as session:
        sms = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.key.startswith("survey-invite:"), OutboxMessage.channel == "sms"
            )
        )
        assert sms is not None
        assert (sms.template, sms.category) == ("survey_invite", "service")
        link = json.loads(sms.params or "{}")["link"]
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/q/[A-Za-z0-9_-]{22}", link)
    return link.replace("http://127.0.0.1:8000", base)


def test_a_detractor_answer_opens_a_follow_up_and_moves_the_nps(
    survey_server: tuple[str, Any], browser: Any
) -> None:
    base, app = survey_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The supervisor's results page before: no answers, no NPS.
    desk = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    boss = desk.new_page()
    boss.goto(f"{base}/login?next=/surveys")
    boss.get_by_label("用户名").fill("manager")
    boss.get_by_label("密码").fill(PASSWORD)
    boss.get_by_role("button", name="登录").click()
    expect(boss.locator("#tile-nps .an-tile-value")).to_have_text("—")
    agent = _api(base, "agent")
    earlier = _earlier_answers(agent)
    boss.reload()
    expect(boss.locator("#tile-nps .an-tile-value")).to_have_text(nps_of(earlier))
    # Timeliness was planted as what drives satisfaction.
    expect(boss.locator("#sv-top-driver th")).to_have_text("时效")

    ticket_id = _resolve_a_ticket(agent)
    link = _sms_link(app, base)

    # The customer on a phone.
    phone = browser.new_context(
        locale="zh-CN", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    page.goto(link)
    expect(page.locator("#survey-title")).to_have_text("工单处理满意度调查")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    nps_ten = page.locator("#q-nps label").filter(has_text=re.compile(r"^10$"))
    box = nps_ten.bounding_box()
    assert box is not None
    assert box["height"] >= 44  # a thumb-sized target
    page.screenshot(path=str(SHOTS / "survey-zh.png"), full_page=True)
    # Submitting without the required NPS names the question.
    page.locator("#q-csat label").filter(has_text=re.compile(r"^3$")).click()
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#e-nps")).to_have_text(
        "第 2 题“您有多大可能向亲友或同事推荐我们？”：请作答"
    )
    page.locator("#q-nps label").filter(has_text=re.compile(r"^2$")).click()
    page.locator("#q-dim_timeliness label").filter(has_text=re.compile(r"^1$")).click()
    page.get_by_label("您的回答").fill("说好当天送到，结果又等了两天，客服也没回电话。")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#survey-done h1")).to_have_text("谢谢您！")
    expect(page.locator("#follow-up-note")).to_contain_text("客服同事会尽快与您联系")
    # The link works once.
    page.goto(link)
    expect(page.locator("#survey-link-problem h1")).to_have_text("您已经作答过了")
    phone.close()

    # The follow-up ticket waits in the queue, with the customer's reason.
    boss.goto(f"{base}/tickets?view=unassigned")
    # (the earlier answers' detractors have theirs too: one each).
    every = boss.locator("#tickets").get_by_role("link", name=re.compile("满意度回访"))
    expect(every).to_have_count(sum(s <= 6 for s in earlier) + 1)
    follow_up = boss.locator("#tickets").get_by_role(
        "link", name=re.compile("满意度回访：工单处理满意度调查，NPS 2，CSAT 3")
    )
    expect(follow_up).to_have_count(1)
    follow_up.click()
    expect(boss.locator("main")).to_contain_text("说好当天送到，结果又等了两天")
    # The surveyed ticket keeps its status, with the CSAT answer as its satisfaction.
    boss.goto(f"{base}/tickets/{ticket_id}")
    expect(boss.locator("#ticket-satisfaction strong")).to_have_text("3")
    # The NPS on the results page moves with the detractor's 2.
    boss.goto(f"{base}/surveys")
    after = nps_of([*earlier, 2])
    assert after != nps_of(earlier)
    expect(boss.locator("#tile-nps .an-tile-value")).to_have_text(after)
    expect(boss.locator("#tile-responses .an-tile-value")).to_have_text("31")
    # One invitation sent (the ticket's), answered.
    expect(boss.locator("#tile-rate .an-tile-value")).to_have_text("100.0%")
    boss.wait_for_function("document.querySelector('#sv-trend canvas') !== null")
    boss.screenshot(path=str(SHOTS / "survey-results.png"), full_page=True)
    desk.close()
