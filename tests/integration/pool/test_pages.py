"""The pool's pages: browse and claim (htmx row and plain form), my claims against the
cap, release, assignment by a manager, the policy form with errors beside the fields,
the history with a run started by hand; pages per role; phones masked."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.customers.models import Customer
from guanxi.pool.models import PoolEvent
from tests.conftest import PASSWORD
from tests.integration.pool.conftest import local


def _web_login(client: Any, user: Any) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def _owner(db: Session, customer_id: int) -> int | None:
    db.expire_all()
    return db.scalar(select(Customer.owner_id).where(Customer.id == customer_id))


def test_a_salesperson_browses_claims_and_releases_on_the_pages(
    client: Any, make_user: Any, make_customer: Any, db: Session, policy: Any
) -> None:
    policy(daily_cap=2)
    sales = make_user("sales", display_name="王销售")
    csrf = _web_login(client, sales)
    first = make_customer("页面甲", phones=["13912340071"], region="浙江省")
    second = make_customer("页面乙", phones=["13912340072"])
    third = make_customer("页面丙")
    page = client.get("/pool")
    assert page.status_code == 200
    assert "今日已领取：0 / 2" in page.text
    assert "139****0071" in page.text
    assert "13912340071" not in page.text
    assert page.text.count('hx-post="/pool/') == 3
    # htmx: the claim button's place says what happened; the count follows out of band.
    row = client.post(
        f"/pool/{first.id}/claim", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert row.status_code == 200
    assert "领取成功：该客户已归您所有" in row.text
    assert "今日已领取：1 / 2" in row.text
    assert "<html" not in row.text
    # A plain form: the page with a message.
    plain = client.post(f"/pool/{second.id}/claim", data={"csrf_token": csrf})
    assert plain.status_code == 200
    assert "领取成功：该客户已归您所有" in plain.text
    assert "今日已领取：2 / 2" in plain.text
    capped = client.post(
        f"/pool/{third.id}/claim", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert "您今天已领取2个客户，达到每日上限；请明天再领取" in capped.text
    assert (_owner(db, first.id), _owner(db, second.id), _owner(db, third.id)) == (
        sales.id,
        sales.id,
        None,
    )
    # The customer's own history names the new owner and why, in the reader's language.
    timeline = client.get(f"/customers/{first.id}")
    assert timeline.status_code == 200
    assert "原因</span>: 已领取" in timeline.text
    mine = client.get("/pool")
    assert 'id="pool-mine"' in mine.text
    assert f'action="/pool/{first.id}/release"' in mine.text
    back = client.post(
        f"/pool/{first.id}/release",
        data={"csrf_token": csrf, "note": "不做了"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    assert _owner(db, first.id) is None
    db.expire_all()
    last = db.scalars(select(PoolEvent).order_by(PoolEvent.id.desc())).first()
    assert last is not None
    assert (last.kind, last.note, last.from_user_id) == ("released", "不做了", sales.id)
    assert client.get("/pool/policy").status_code == 403
    assert client.get("/pool/history").status_code == 403


def test_a_manager_assigns_sets_the_policy_and_runs_the_returns(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    boss = make_user("manager", display_name="销售主管")
    wang = make_user("sales", display_name="王销售")
    csrf = _web_login(client, boss)
    with clock.frozen(local(2026, 1, 1)):
        customer = make_customer("分配客户")
    make_customer("标签客户", tags=["重点客户"])
    page = client.get("/pool")
    assert f'<option value="{wang.id}">王销售</option>' in page.text
    given = client.post(
        "/pool/assign",
        data={"csrf_token": csrf, "customer_id": str(customer.id), "owner_id": str(wang.id)},
        follow_redirects=False,
    )
    assert given.status_code == 303
    assert _owner(db, customer.id) == wang.id
    wrong = client.post(
        "/pool/assign", data={"csrf_token": csrf, "customer_id": "x", "owner_id": str(wang.id)}
    )
    assert wrong.status_code == 422
    form = client.get("/pool/policy")
    assert form.status_code == 200
    assert 'name="daily_cap" type="number" value="10"' in form.text
    refused = client.post(
        "/pool/policy",
        data={"csrf_token": csrf, "daily_cap": "0", "warn_days": "3", "exempt_tags": "没有这个"},
    )
    assert refused.status_code == 422
    assert 'id="e-daily_cap"' in refused.text
    unknown = client.post(
        "/pool/policy",
        data={"csrf_token": csrf, "daily_cap": "5", "warn_days": "3", "exempt_tags": "没有这个"},
    )
    assert unknown.status_code == 422
    assert "没有客户带有标签“没有这个”" in unknown.text
    saved = client.post(
        "/pool/policy",
        data={
            "csrf_token": csrf,
            "daily_cap": "5",
            "no_follow_up_days": "20",
            "contract_ended_days": "",
            "warn_days": "0",
            "exempt_tags": "重点客户",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    api = client.get("/api/v1/pool/policy").json()
    assert api == {
        "daily_cap": 5,
        "no_follow_up_days": 20,
        "contract_ended_days": None,
        "warn_days": 0,
        "only_from_pool": False,
        "exempt_tags": ["重点客户"],
    }
    # Assigned today (the real clock): returned 20 days later on the first run (no warning
    # days); signed in again, the session of weeks ago has lapsed.
    with clock.frozen(clock.now() + timedelta(days=21)):
        csrf = _web_login(client, boss)
        ran = client.post("/pool/run", data={"csrf_token": csrf}, follow_redirects=False)
        assert ran.headers["location"] == "/pool/history?warned=0&returned=1"
        history = client.get(ran.headers["location"])
    assert history.status_code == 200
    assert "已提醒负责人：0；退回公海的客户：1" in history.text
    assert "退回：未跟进" in history.text
    assert "已分配" in history.text
    assert "每日任务" in history.text
    assert _owner(db, customer.id) is None


def test_pages_refuse_roles_without_the_pipeline(client: Any, make_user: Any) -> None:
    _web_login(client, make_user("agent"))
    assert client.get("/pool").status_code == 403
    assert client.get("/pool/history").status_code == 403
