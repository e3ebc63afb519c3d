"""Campaigns through the JSON API and the pages on both databases: create, launch, the
public tracked link (click recorded, listener called once, redirect), report and export;
bad input refused naming the field (422, never 500) in English and Chinese; who may read
and who may write."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.campaigns import tracking
from guanxi.campaigns.models import Campaign, CampaignRecipient
from tests.integration.campaigns.campaign_support import (
    bulk_customers,
    campaign_body,
    make_audience,
    sms_template,
)


def _errors(resp: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in resp.json()["errors"]}


def _count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(Campaign)) or 0)


@pytest.fixture
def setup(db: Session, make_user: Any) -> int:
    """40 customers in 浙江省, their audience and the campaigns' SMS template."""
    admin = make_user("admin")
    bulk_customers(db, 40, region="浙江省")
    sms_template(db, admin)
    return make_audience(db, admin)


def test_create_launch_click_and_report(
    client: Any, login: Any, db: Session, setup: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = login("manager")
    heard: list[tuple[int, int]] = []
    monkeypatch.setattr(tracking, "_listeners", [])
    tracking.register_response_listener(
        lambda _s, campaign, customer: heard.append((campaign, customer))
    )

    created = client.post("/api/v1/campaigns", json=campaign_body(setup), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "draft"
    assert body["variants"][0]["code"] == "A"
    cid = body["id"]
    cost = client.post(
        f"/api/v1/campaigns/{cid}/costs",
        json={"label": "短信费", "amount_fen": 2000},
        headers=headers,
    )
    assert cost.status_code == 201
    launched = client.post(f"/api/v1/campaigns/{cid}/launch", headers=headers)
    assert launched.status_code == 200, launched.text
    figures = launched.json()
    assert figures["recipients"] == 40
    assert figures["queued"] == 40 - figures["control"]
    assert figures["status"] == "launched"
    again = client.post(f"/api/v1/campaigns/{cid}/launch", headers=headers)
    assert again.status_code == 409

    db.expire_all()
    customer, code = db.execute(
        select(CampaignRecipient.customer_id, CampaignRecipient.code)
        .where(CampaignRecipient.campaign_id == cid, CampaignRecipient.code.is_not(None))
        .order_by(CampaignRecipient.customer_id)
    ).first()
    first = client.get(f"/c/{code}", follow_redirects=False)
    assert first.status_code == 302
    assert first.headers["location"] == "https://example.com/promo"
    second = client.get(f"/c/{code}", follow_redirects=False)
    assert second.status_code == 302
    assert heard == [(cid, customer)]
    assert client.get("/c/AAAAAAAAAAAAAAAA", follow_redirects=False).status_code == 404
    assert client.get("/c/not-a-code", follow_redirects=False).status_code == 404
    db.expire_all()
    clicks = db.scalar(select(CampaignRecipient.clicks).where(CampaignRecipient.code == code))
    assert clicks == 2

    report = client.get(f"/api/v1/campaigns/{cid}/report", headers=headers)
    assert report.status_code == 200
    data = report.json()
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["A"]["clicked"] == 1
    assert groups["A"]["recipients"] + groups["control"]["recipients"] == 40
    assert groups["A"]["sent"] == 0  # queued, not sent yet
    assert data["cost_fen"] == 2000
    assert data["net_fen"]["estimate"] == -2000
    csv = client.get(f"/api/v1/campaigns/{cid}/report/export?format=csv", headers=headers)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "组,收件人,已发送,已送达手机,已点击,已转化,收入（元）"
    xlsx = client.get(f"/api/v1/campaigns/{cid}/report/export?format=xlsx", headers=headers)
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"
    stopped = client.post(f"/api/v1/campaigns/{cid}/stop", headers=headers)
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"


PLACES = "{name}, {company}, {link}, {coupon_name}, {coupon_code}"


@pytest.mark.parametrize(
    ("lang", "audience", "placeholder"),
    [
        ("en", "No such audience", f"Unknown placeholder {{price}}; you can use: {PLACES}"),
        ("zh-CN", "没有这个目标客群", f"未知占位符 {{price}}；可用：{PLACES}"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    client: Any, login: Any, db: Session, setup: int, lang: str, audience: str, placeholder: str
) -> None:
    _, headers = login("manager")
    headers = {**headers, "Accept-Language": lang}
    before = _count(db)
    unknown = client.post("/api/v1/campaigns", json=campaign_body(999_999), headers=headers)
    assert unknown.status_code == 422
    assert _errors(unknown) == {"audience_id": audience}
    bad = campaign_body(
        setup,
        variants=[{"code": "A", "sms_template": "campaign_offer", "body_zh": "{name} {price}"}],
    )
    resp = client.post("/api/v1/campaigns", json=bad, headers=headers)
    assert resp.status_code == 422
    assert _errors(resp) == {"variants.0.body_zh": placeholder}
    for body, field in (
        (campaign_body(setup, control_pct=60), "control_pct"),
        (campaign_body(setup, budget_fen=-1), "budget_fen"),
        (campaign_body(setup, channel="fax"), "channel"),
        (campaign_body(setup, variants=[]), "variants"),
        (campaign_body(setup, send_at="2030-01-01T10:00:00"), "send_at"),
        (campaign_body(setup, target_url="javascript:alert(1)"), "target_url"),
        (campaign_body(setup, variants=[{"code": "A", "body_zh": "x"}]), "variants.0.sms_template"),
    ):
        refused = client.post("/api/v1/campaigns", json=body, headers=headers)
        assert refused.status_code == 422, (field, refused.text)
        assert list(_errors(refused)) == [field], refused.text
    assert _count(db) == before


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [("agent", 403, 403), ("sales", 403, 403), ("analyst", 200, 403), ("auditor", 200, 403),
     ("manager", 200, 201), ("admin", 200, 201)],
)  # fmt: skip
def test_who_may_read_and_write(
    client: Any, login: Any, db: Session, setup: int, role: str, read: int, write: int
) -> None:
    _, headers = login(role)
    before = _count(db)
    assert client.get("/api/v1/campaigns", headers=headers).status_code == read
    created = client.post("/api/v1/campaigns", json=campaign_body(setup), headers=headers)
    assert created.status_code == write
    assert _count(db) == before + (1 if write == 201 else 0)
    assert client.get("/campaigns", headers=headers).status_code == read


def _web_login(client: Any, make_user: Any, role: str) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    user = make_user(role)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": "correct horse battery"}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/campaigns").text)
    assert found
    return found.group(1)


def test_pages_create_launch_and_report(
    client: Any, make_user: Any, db: Session, setup: int
) -> None:
    csrf = _web_login(client, make_user, "manager")
    assert client.get("/campaigns").status_code == 200
    editor = client.get("/campaigns/new")
    assert editor.status_code == 200
    assert f'<option value="{setup}">浙江客户</option>' in editor.text
    count = client.get(f"/campaigns/audience-count?audience_id={setup}")
    assert count.text == '<span id="audience-count">现有 40 位客户</span>'
    form = {
        "csrf_token": csrf,
        "name": "页面活动",
        "audience_id": str(setup),
        "channel": "sms",
        "sms_template": "campaign_offer",
        "target_url": "https://example.com/p",
        "control_pct": "25",
        "attribution_days": "14",
        "budget_yuan": "1,000",
        "A_weight": "1",
        "A_body_zh": "{name}您好 {link}",
    }
    refused = client.post("/campaigns/new", data=form)
    assert refused.status_code == 422
    assert 'id="e-budget_yuan"' in refused.text
    form["budget_yuan"] = "1000.50"
    # A variant's error shows beside that variant's field (variants.0.body_zh -> A_body_zh).
    placeholder = client.post("/campaigns/new", data={**form, "A_body_zh": "{name} {price}"})
    assert placeholder.status_code == 422
    message = f"未知占位符 {{price}}；可用：{PLACES}"
    beside = r'id="f-A_body_zh"[^>]*>\{name\} \{price\}</textarea>\s*<p class="error" role="alert">'
    assert re.search(beside + re.escape(message) + "</p>", placeholder.text)
    created = client.post("/campaigns/new", data=form, follow_redirects=False)
    assert created.status_code == 303
    url = created.headers["location"]
    db.expire_all()
    campaign = db.scalar(select(Campaign).where(Campaign.name == "页面活动"))
    assert campaign is not None
    assert (campaign.budget_fen, campaign.control_pct) == (100050, 25)
    launched = client.post(f"{url}/launch", data={"csrf_token": csrf}, follow_redirects=False)
    assert launched.status_code == 303
    cost = client.post(
        f"{url}/costs", data={"csrf_token": csrf, "label": "设计", "amount_yuan": "300"},
        follow_redirects=False,
    )  # fmt: skip
    assert cost.status_code == 303
    page = client.get(url)
    assert page.status_code == 200
    assert '<td class="num" id="cost-total">300.00</td>' in page.text
    assert 'id="fact-recipients">40<' in page.text
    assert 'id="an-charts"' in page.text
    assert client.get(f"{url}/export?format=csv").status_code == 200


def test_policy_and_cost_lines(client: Any, login: Any, db: Session, setup: int) -> None:
    _, headers = login("manager")
    _, reader = login("analyst")
    assert client.get("/api/v1/campaigns/policy", headers=reader).json() == {
        "cap_count": 4,
        "cap_days": 30,
    }
    refused = client.put(
        "/api/v1/campaigns/policy", json={"cap_count": 0, "cap_days": 30}, headers=headers
    )
    assert refused.status_code == 422
    assert list(_errors(refused)) == ["cap_count"]
    assert (
        client.put(
            "/api/v1/campaigns/policy", json={"cap_count": 2, "cap_days": 7}, headers=reader
        ).status_code
        == 403
    )
    saved = client.put(
        "/api/v1/campaigns/policy", json={"cap_count": 2, "cap_days": 7}, headers=headers
    )
    assert saved.json() == {"cap_count": 2, "cap_days": 7}
    assert client.get("/api/v1/campaigns/policy", headers=reader).json() == saved.json()

    cid = client.post("/api/v1/campaigns", json=campaign_body(setup), headers=headers).json()["id"]
    bad = client.post(
        f"/api/v1/campaigns/{cid}/costs", json={"label": "", "amount_fen": 0}, headers=headers
    )
    assert bad.status_code == 422
    assert sorted(_errors(bad)) == ["amount_fen", "label"]
    added = client.post(
        f"/api/v1/campaigns/{cid}/costs", json={"label": "设计", "amount_fen": 800}, headers=headers
    )
    assert added.status_code == 201
    assert (
        client.post(
            f"/api/v1/campaigns/{cid}/costs", json={"label": "x", "amount_fen": 1}, headers=reader
        ).status_code
        == 403
    )
    gone = client.delete(f"/api/v1/campaigns/{cid}/costs/{added.json()['id']}", headers=headers)
    assert gone.status_code == 204
    assert client.get(f"/api/v1/campaigns/{cid}", headers=reader).json()["costs"] == []
    assert client.get("/api/v1/campaigns/999999", headers=reader).status_code == 404


def test_the_frequency_cap_is_set_on_the_campaigns_page(
    client: Any, make_user: Any, login: Any
) -> None:
    csrf = _web_login(client, make_user, "manager")
    page = client.get("/campaigns")
    assert '<input id="f-cap_count" name="cap_count" type="number" value="4"' in page.text
    assert '<input id="f-cap_days" name="cap_days" type="number" value="30"' in page.text
    client.headers["Accept-Language"] = "zh-CN"
    refused = client.post(
        "/campaigns/policy", data={"csrf_token": csrf, "cap_count": "0", "cap_days": "30"}
    )
    assert refused.status_code == 422
    assert 'id="e-cap_count"' in refused.text
    assert 'id="e-cap_days"' not in refused.text
    # The value typed comes back for correction; nothing was saved.
    assert client.get("/api/v1/campaigns/policy").json() == {"cap_count": 4, "cap_days": 30}
    saved = client.post(
        "/campaigns/policy",
        data={"csrf_token": csrf, "cap_count": "2", "cap_days": "14"},
        follow_redirects=False,
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/campaigns?saved=true")
    assert client.get("/api/v1/campaigns/policy").json() == {"cap_count": 2, "cap_days": 14}
    # An analyst reads the cap without a form to change it, and may not post one.
    _, analyst = login("analyst")
    shown = client.get("/campaigns", headers=analyst)
    assert "每位客户 14 天内最多 2 条营销活动消息。" in shown.text
    assert 'id="policy-form"' not in shown.text
    posted = client.post(
        "/campaigns/policy", data={"cap_count": "9", "cap_days": "9"}, headers=analyst
    )
    assert posted.status_code == 403
    assert client.get("/api/v1/campaigns/policy").json() == {"cap_count": 2, "cap_days": 14}
