"""The consent API and the 360 view's consent panel: read, record, validation errors that
name the field, permissions and visibility."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.customers.models import CustomerConsentEvent


def _events(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(CustomerConsentEvent)) or 0


def test_read_and_record(client: Any, login: Any, make_customer: Any, db: Session) -> None:
    agent, headers = login("agent")
    c = make_customer()
    url = f"/api/v1/customers/{c.id}/consents"
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    assert [(i["purpose"], i["granted"], i["allowed"]) for i in first.json()["items"]] == [
        ("marketing_sms", None, False),
        ("marketing_email", None, False),
        ("survey", None, True),
        ("third_party", None, False),
        ("cross_border", None, False),
    ]
    resp = client.put(
        url,
        json={
            "purpose": "marketing_sms",
            "granted": True,
            "source": "agent",
            "notice_version": "2026-01",
        },
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["items"][0] == {
        "purpose": "marketing_sms",
        "granted": True,
        "allowed": True,
        "source": "agent",
        "updated_at": body["items"][0]["updated_at"],
    }
    [event] = body["history"]
    assert (event["purpose"], event["granted"], event["source"], event["actor_name"]) == (
        "marketing_sms",
        True,
        "agent",
        agent.username,
    )
    assert (event["legal_basis"], event["notice_version"]) == ("consent", "2026-01")


def test_validation_errors_name_the_field(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    _, headers = login("agent")
    c = make_customer()
    url = f"/api/v1/customers/{c.id}/consents"
    cases = [
        ({"purpose": "spam", "granted": True}, "purpose"),
        ({"purpose": "survey"}, "granted"),
        ({"purpose": "survey", "granted": "maybe"}, "granted"),
        ({"purpose": "survey", "granted": False, "source": "sms_reply"}, "source"),
        ({"purpose": "survey", "granted": False, "notice_version": "x" * 31}, "notice_version"),
        ({"purpose": "survey", "granted": False, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        resp = client.put(url, json=body, headers={**headers, "Accept-Language": "zh-CN"})
        assert resp.status_code == 422, (body, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == [field], body
    en = client.put(
        url, json={"purpose": "spam", "granted": True}, headers={**headers, "Accept-Language": "en"}
    )
    assert en.json()["errors"][0]["message"].startswith("Must be one of: ")
    assert (
        client.put(
            "/api/v1/customers/999999/consents",
            json={"purpose": "survey", "granted": False},
            headers=headers,
        ).status_code
        == 404
    )
    assert _events(db) == 0


def test_permissions_and_visibility(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    c = make_customer()
    url = f"/api/v1/customers/{c.id}/consents"
    body = {"purpose": "marketing_email", "granted": True}
    _, auditor = login("auditor")
    assert client.get(url, headers=auditor).status_code == 200
    assert client.put(url, json=body, headers=auditor).status_code == 403
    # An account manager sees their own customers and the pool (no owner), not others'.
    sales, sales_headers = login("sales")
    other, _ = login("sales")
    theirs = make_customer(name="别人的客户", owner_id=other.id)
    other_url = f"/api/v1/customers/{theirs.id}/consents"
    assert client.get(other_url, headers=sales_headers).status_code == 404
    assert client.put(other_url, json=body, headers=sales_headers).status_code == 404
    assert client.get(url, headers=sales_headers).status_code == 200
    own = make_customer(name="自己的客户", owner_id=sales.id)
    assert (
        client.put(
            f"/api/v1/customers/{own.id}/consents", json=body, headers=sales_headers
        ).status_code
        == 200
    )
    assert client.get(url).status_code == 401
    assert _events(db) == 1


def test_the_panel_records_a_consent_taken_on_the_phone(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    agent, headers = login("agent")
    c = make_customer()
    page = client.get(f"/customers/{c.id}", headers=headers)
    assert page.status_code == 200
    assert f'hx-get="/customers/{c.id}/consents"' in page.text
    panel = client.get(f"/customers/{c.id}/consents", headers={**headers, "Accept-Language": "en"})
    assert panel.status_code == 200
    assert 'id="consent-form"' in panel.text
    assert "Marketing by SMS" in panel.text
    saved = client.post(
        f"/customers/{c.id}/consents",
        data={"purpose": "survey", "granted": "false"},
        headers={**headers, "HX-Request": "true", "Accept-Language": "zh-CN"},
    )
    assert saved.status_code == 200
    assert "已记录同意。" in saved.text
    assert "满意度调查" in saved.text
    assert '<span class="pill warn">' in saved.text
    event = db.scalar(select(CustomerConsentEvent))
    assert event is not None
    assert (event.purpose, event.granted, event.source, event.actor_id) == (
        "survey",
        False,
        "agent",
        agent.id,
    )
    bad = client.post(
        f"/customers/{c.id}/consents",
        data={"purpose": "junk", "granted": "true"},
        headers={**headers, "HX-Request": "true", "Accept-Language": "en"},
    )
    assert bad.status_code == 200
    assert 'role="alert"' in bad.text
    assert "Purpose: Must be one of" in bad.text
    assert _events(db) == 1
    # Without the write permission: the panel shows, the form does not, posting is refused.
    _, auditor = login("auditor")
    view = client.get(f"/customers/{c.id}/consents", headers=auditor)
    assert view.status_code == 200
    assert 'id="consent-form"' not in view.text
