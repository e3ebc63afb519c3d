"""The /quality page: in Chinese and English, the stale-months selector, permissions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.security.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import PASSWORD
from tests.integration.quality.base import build_base

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def sign_in(client: Any, username: str) -> None:
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": "/quality"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text


@pytest.fixture
def base(db: Session, make_user: Any) -> dict[str, int]:
    return build_base(db, owner_id=make_user("sales").id)


def test_page_in_chinese(client: Any, make_user: Any, base: dict[str, int]) -> None:
    sign_in(client, make_user("analyst").username)
    resp = client.get("/quality", headers=ZH)
    assert resp.status_code == 200, resp.text
    page = resp.text
    for text in ("数据质量", "完整性", "无效或可疑的值", "疑似重复", "陈旧客户档案", "活跃客户"):
        assert text in page, text
    assert "Completeness" not in page
    # Example ids link to the customers; a group shows its members.
    assert f'href="/customers/{base["c3"]}"' in page
    assert re.search(
        rf'#{base["c1"]}</a> <a class="mono" href="/customers/{base["c2"]}">#{base["c2"]}</a>',
        page,
    )
    # Ids only: no name, phone or e-mail from the base appears on the page.
    for secret in ("张三", "13912345678", "example.com", "杭州快运"):
        assert secret not in page
    # The percentage bar of a field with 60 % filled (an SVG: no inline style allowed).
    assert '<rect width="60.0" height="1"></rect>' in page


def test_page_in_english_with_stale_months(
    client: Any, make_user: Any, base: dict[str, int]
) -> None:
    sign_in(client, make_user("manager").username)
    resp = client.get("/quality?stale_months=2", headers=EN)
    assert resp.status_code == 200, resp.text
    page = resp.text
    for text in ("Data quality", "Completeness", "Suspected duplicates", "Stale records"):
        assert text in page, text
    assert '<option value="2" selected>2 months</option>' in page
    assert "have not shipped since 2" in page
    assert client.get("/quality?stale_months=0", headers=EN).status_code == 422
    assert client.get("/quality?stale_months=many", headers=EN).status_code == 422


@pytest.mark.parametrize("role", list(Role))
def test_who_may_see_the_report(client: Any, make_user: Any, role: Role) -> None:
    sign_in(client, make_user(role.value).username)
    resp = client.get("/quality", headers=EN)
    if Permission.data_quality in ROLE_PERMISSIONS[role]:
        assert resp.status_code == 200
    else:
        assert resp.status_code == 403
        assert "Completeness" not in resp.text


def test_agent_and_sales_are_refused(client: Any, make_user: Any) -> None:
    for role in ("agent", "sales"):
        client.cookies.clear()
        sign_in(client, make_user(role).username)
        assert client.get("/quality").status_code == 403


def test_anonymous_is_sent_to_sign_in(client: Any) -> None:
    resp = client.get("/quality?stale_months=6", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=%2Fquality")


def test_bearer_token_works_too(client: Any, login: Any) -> None:
    _, headers = login("analyst")
    assert client.get("/quality", headers={**headers, **EN}).status_code == 200
