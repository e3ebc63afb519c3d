"""The pages of data-subject requests: the register with due dates and overdue ones
marked, the form from the customer's 360 view, a request's page and its actions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.privacy.models import PrivacyRequest
from tests.conftest import PASSWORD

RECEIVED = datetime(2025, 9, 29, 2, 0, tzinfo=UTC)


def _sign_in(client: Any, username: str, page: str, lang: str = "zh_CN") -> str:
    client.cookies.set("guanxi_lang", lang)
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    html = client.get(page).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:300]
    return match.group(1)


def test_agent_registers_from_the_360_view(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    agent = make_user("agent")
    customer = make_customer(phones=["+8613912349876"])
    csrf = _sign_in(client, agent.username, f"/customers/{customer.id}")
    page = client.get(f"/customers/{customer.id}").text
    assert f'href="/privacy/requests/new?customer={customer.id}"' in page
    form = client.get(f"/privacy/requests/new?customer={customer.id}")
    assert form.status_code == 200
    assert "张三丰" in form.text
    assert "13912349876" not in form.text

    bad = client.post(
        "/privacy/requests",
        data={
            "csrf_token": csrf,
            "customer_id": str(customer.id),
            "kind": "erase",
            "channel": "phone",
            "verification": "phone_callback",
        },
    )
    assert bad.status_code == 422
    assert 'id="f-kind"' in bad.text
    assert 'class="error"' in bad.text
    assert db.scalars(select(PrivacyRequest)).all() == []

    with clock.frozen(RECEIVED):
        resp = client.post(
            "/privacy/requests",
            data={
                "csrf_token": csrf,
                "customer_id": str(customer.id),
                "kind": "copy",
                "channel": "phone",
                "verification": "sms_code",
                "details": "客户要求导出寄件记录",
            },
            follow_redirects=False,
        )
    assert resp.status_code == 303
    row = db.scalars(select(PrivacyRequest)).one()
    assert resp.headers["location"] == f"/customers/{customer.id}?privacy_request={row.id}"
    assert (row.kind, row.verification, row.due_on.isoformat()) == (
        "copy",
        "sms_code",
        "2025-10-27",
    )
    # The register itself is the privacy officer's.
    assert client.get("/privacy").status_code == 403
    assert client.get(f"/privacy/requests/{row.id}").status_code == 403


def test_officer_works_a_request_on_its_page(
    client: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    dpo = make_user("privacy_officer")
    customer = make_customer(phones=["+8613912349876"])
    csrf = _sign_in(client, dpo.username, "/privacy")
    with clock.frozen(RECEIVED):
        client.post(
            "/privacy/requests",
            data={
                "csrf_token": csrf,
                "customer_id": str(customer.id),
                "kind": "access",
                "channel": "counter",
                "verification": "id_document",
            },
        )
    row = db.scalars(select(PrivacyRequest)).one()

    with clock.frozen(datetime(2025, 10, 28, 2, 0, tzinfo=UTC)):
        register = client.get("/privacy")
        assert register.status_code == 200
        line = re.search(
            rf'<tr data-request="{row.id}" class="overdue">.*?</tr>', register.text, re.S
        )
        assert line is not None
        assert "2025-10-27" in line.group(0)
        assert "已超时" in line.group(0)
        assert "data-request" in client.get("/privacy?overdue=true").text
        assert "data-request" not in client.get("/privacy?kind=deletion").text

    page = client.get(f"/privacy/requests/{row.id}")
    assert page.status_code == 200
    assert f'href="/api/v1/privacy/requests/{row.id}/export?format=csv"' in page.text
    download = client.get(f"/api/v1/privacy/requests/{row.id}/export?format=csv")
    assert (download.status_code, download.headers["content-type"]) == (200, "application/zip")
    assert "13912349876" not in page.text

    resp = client.post(
        f"/privacy/requests/{row.id}/start",
        data={"csrf_token": csrf, "version": "1"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    refused = client.post(
        f"/privacy/requests/{row.id}/reject",
        data={"csrf_token": csrf, "version": "2", "reason": ""},
    )
    assert refused.status_code == 422
    assert 'id="e-reason"' in refused.text
    resp = client.post(
        f"/privacy/requests/{row.id}/complete",
        data={"csrf_token": csrf, "version": "2", "note": "已当面交付导出文件"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.expire_all()
    assert (db.get(PrivacyRequest, row.id).status, db.get(PrivacyRequest, row.id).resolution) == (  # type: ignore[union-attr]
        "completed",
        "已当面交付导出文件",
    )
    page = client.get(f"/privacy/requests/{row.id}").text
    history = re.search(r'<ul class="plain" id="history">(.*?)</ul>', page, re.S)
    assert history is not None
    assert [li.split(" · ")[-1] for li in re.findall(r"<li>(.*?)</li>", history.group(1))] == [
        "已登记",
        "已导出数据",
        "已受理",
        "已完成",
    ]
    # A stale form is refused, beside the status.
    stale = client.post(
        f"/privacy/requests/{row.id}/start", data={"csrf_token": csrf, "version": "1"}
    )
    assert stale.status_code == 409


def test_policy_form_names_the_field(client: Any, make_user: Any) -> None:
    dpo = make_user("privacy_officer")
    csrf = _sign_in(client, dpo.username, "/privacy")
    resp = client.post(
        "/privacy/policy",
        data={"csrf_token": csrf, "due_working_days": "0", "warn_working_days": "3"},
    )
    assert resp.status_code == 422
    assert 'id="e-due_working_days"' in resp.text
    resp = client.post(
        "/privacy/policy",
        data={"csrf_token": csrf, "due_working_days": "12", "warn_working_days": "2"},
        follow_redirects=False,
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/privacy?policy_saved=1")
    assert 'value="12"' in client.get("/privacy").text
