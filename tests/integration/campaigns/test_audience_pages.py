"""The audience pages on both databases: the list, the editor with yuan amounts and its
live count fragment (masked sample), refusals beside their fields in Chinese, archive,
and a read-only editor for analysts."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.campaigns.audiences import definition_of
from guanxi.campaigns.models import Audience
from guanxi.campaigns.schemas import AudienceDefinition

PASSWORD = "correct horse battery"  # noqa: S105 - the test users' password


def _web_login(client: Any, make_user: Any, role: str) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    user = make_user(role)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    home = client.get("/campaigns/audiences")
    found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert found, home.text[:500]
    return found.group(1)


def _audiences(db: Session) -> list[Audience]:
    db.expire_all()
    return list(db.scalars(select(Audience).order_by(Audience.id)))


def test_build_count_save_and_archive_from_the_pages(
    client: Any, make_user: Any, db: Session, make_customer: Any
) -> None:
    a = make_customer("浙江甲", region="浙江省", tags=["VIP"], phones=["13912340081"])
    make_customer("江苏乙", region="江苏省", tags=["VIP"])
    csrf = _web_login(client, make_user, "manager")
    empty = client.get("/campaigns/audiences")
    assert empty.status_code == 200
    assert 'id="new-audience"' in empty.text
    editor = client.get("/campaigns/audiences/new")
    assert editor.status_code == 200
    assert 'hx-get="/campaigns/audiences/count"' in editor.text
    assert 'name="tiers" value="gold"' in editor.text

    live = client.get(
        "/campaigns/audiences/count?regions=浙江省，上海市&tags_any=VIP&clv_min_yuan=",
        headers={"HX-Request": "true"},
    )
    assert live.status_code == 200
    assert 'id="audience-total" data-count="1"' in live.text
    assert "浙**" in live.text
    assert "****0081" in live.text
    assert "浙江甲" not in live.text
    assert "13912340081" not in live.text
    bad = client.get("/campaigns/audiences/count?clv_min_yuan=500&clv_max_yuan=100")
    assert bad.status_code == 422
    # The field as labelled, in the staff page's zh_CN.
    assert "<li>终身价值上限（元）: 不能小于最小值（50000）</li>" in bad.text
    negative = client.get("/campaigns/audiences/count?shipped_within_days=-1")
    assert negative.status_code == 422
    assert "<li>最近寄件（天内）: 不能小于 1</li>" in negative.text

    form = {
        "csrf_token": csrf,
        "name": "浙江 VIP",
        "description": "浙江省 VIP",
        "regions": "浙江省",
        "tags_any": "VIP",
        "clv_min_yuan": "12.5",
        "tiers": "platinum",
    }
    refused = client.post("/campaigns/audiences", data=form)
    assert refused.status_code == 422
    assert "未知会员等级：platinum" in refused.text
    assert 'value="12.5"' in refused.text  # what was typed comes back
    assert _audiences(db) == []
    del form["tiers"]
    form["clv_min_yuan"] = "十二元"
    refused = client.post("/campaigns/audiences", data=form)
    assert refused.status_code == 422
    assert "终身价值下限（元）: 不是以元为单位的金额（最多两位小数）" in refused.text
    assert _audiences(db) == []
    form["clv_min_yuan"] = "¥12.5"
    created = client.post("/campaigns/audiences", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    [saved] = _audiences(db)
    assert created.headers["location"] == f"/campaigns/audiences/{saved.id}?saved=1"
    assert definition_of(saved) == AudienceDefinition(
        regions=["浙江省"], tags_any=["VIP"], clv_min_fen=1250
    )
    page = client.get(f"/campaigns/audiences/{saved.id}")
    assert page.status_code == 200
    assert 'value="12.5"' in page.text
    listed = client.get("/campaigns/audiences")
    assert f'hx-get="/campaigns/audiences/{saved.id}/count"' in listed.text
    number = client.get(f"/campaigns/audiences/{saved.id}/count", headers={"HX-Request": "true"})
    # No CLV run yet: the CLV floor matches nobody.
    assert number.text.strip() == '<span data-count="0">0</span>'

    form["clv_min_yuan"] = ""
    form["version"] = str(saved.version)
    edited = client.post(f"/campaigns/audiences/{saved.id}", data=form, follow_redirects=False)
    assert edited.status_code == 303
    sample = client.get(f"/campaigns/audiences/{saved.id}/count?sample=true")
    assert 'data-count="1"' in sample.text
    assert f'data-customer="{a.id}"' in sample.text
    stale = client.post(f"/campaigns/audiences/{saved.id}", data=form)
    assert stale.status_code == 409

    archived = client.post(
        f"/campaigns/audiences/{saved.id}/archive",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert archived.status_code == 303
    assert _audiences(db)[0].archived_at is not None
    assert 'id="restore-audience"' in client.get(f"/campaigns/audiences/{saved.id}").text
    assert "浙江 VIP" not in client.get("/campaigns/audiences").text
    assert "浙江 VIP" in client.get("/campaigns/audiences?archived=true").text


def test_analysts_read_agents_do_not(client: Any, make_user: Any, db: Session) -> None:
    manager_csrf = _web_login(client, make_user, "manager")
    client.post(
        "/campaigns/audiences",
        data={"csrf_token": manager_csrf, "name": "全部", "kinds": "enterprise"},
    )
    [saved] = _audiences(db)
    client.post("/logout", data={"csrf_token": manager_csrf})
    csrf = _web_login(client, make_user, "analyst")
    page = client.get(f"/campaigns/audiences/{saved.id}")
    assert page.status_code == 200
    assert 'id="save-audience"' not in page.text
    assert "<fieldset disabled>" in page.text
    assert f"/campaigns/audiences/{saved.id}/count?sample=true" in page.text
    assert client.get("/campaigns/audiences/count?kinds=individual").status_code == 200
    assert client.get("/campaigns/audiences/new").status_code == 403
    refused = client.post(
        f"/campaigns/audiences/{saved.id}",
        data={"csrf_token": csrf, "name": "改名"},
    )
    assert refused.status_code == 403
    assert _audiences(db)[0].name == "全部"
    client.post("/logout", data={"csrf_token": csrf})
    _web_login_agent = make_user("agent")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": _web_login_agent.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    assert client.get("/campaigns/audiences").status_code == 403
    assert client.get(f"/campaigns/audiences/{saved.id}").status_code == 403
