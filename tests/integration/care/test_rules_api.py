"""Care rules through the JSON API and the pages: validation naming the field in Chinese
and English, quiet hours, switching on and off with audit, previews, runs, permissions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.care import policy as care_policy
from guanxi.care.models import CareRule
from guanxi.core import clock
from tests.integration.care.conftest import BIRTHDAY, FESTIVAL, local


def _count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(CareRule)) or 0)


def _errors(resp: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in resp.json()["errors"]}


def test_create_preview_enable_and_disable_through_the_api(
    client: Any, login: Any, db: Session, make_customer: Any, grant: Any
) -> None:
    _, headers = login("manager")
    grant(make_customer("接口", phones=["13912340061"], birthday=date(1990, 9, 25)))
    resp = client.post("/api/v1/care/rules", json=BIRTHDAY, headers=headers)
    assert resp.status_code == 201, resp.text
    rule = resp.json()
    assert (rule["enabled"], rule["send_time"], rule["audience"]["regions"]) == (
        False,
        "09:30:00",
        [],
    )
    rid = rule["id"]
    with clock.frozen(local(2026, 9, 20, 12)):
        seen = client.get(f"/api/v1/care/rules/{rid}/preview?day=2026-09-25", headers=headers)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["reached"], body["eligible"], body["occasion"]) == (1, 1, "2026-09-25")
    assert [(s["name"], s["address"], s["body"]) for s in body["sample"]] == [
        ("接*", "139****0061", "接口，关系速递祝您生日快乐！")
    ]
    assert client.post(f"/api/v1/care/rules/{rid}/enable", headers=headers).json()["enabled"]
    again = client.post(f"/api/v1/care/rules/{rid}/enable", headers=headers)
    assert again.status_code == 409
    off = client.post(f"/api/v1/care/rules/{rid}/disable", headers=headers)
    assert off.json()["enabled"] is False
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.target_type == "care_rule", AuditEntry.target_id == str(rid))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["care.rule_created", "care.rule_enabled", "care.rule_disabled"]
    with clock.frozen(local(2026, 9, 20, 12)):
        far = client.get(
            f"/api/v1/care/rules/{rid}/preview?day=2028-01-01",
            headers={**headers, "Accept-Language": "en"},
        )
    assert far.status_code == 422
    assert _errors(far) == {"day": "Choose a date within a year of today"}


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            {
                "body_zh": "Unknown variable festival; you can use: name, company, tier, "
                "coupon_code, coupon_name",
                "subject_en": "The template cannot be read (line 1): unexpected '}'",
            },
        ),
        (
            "zh-CN",
            {
                "body_zh": "未知变量 festival；可用变量：name, company, tier, coupon_code, "
                "coupon_name",
                "subject_en": "模板无法解析（第 1 行）：unexpected '}'",
            },
        ),
    ],
)
def test_template_errors_name_the_field_in_the_readers_language(
    client: Any, login: Any, db: Session, lang: str, expected: dict[str, str]
) -> None:
    _, headers = login("admin")
    before = _count(db)
    bad = {**BIRTHDAY, "body_zh": "{{ name }}{{ festival }}", "subject_en": "{{ name }"}
    resp = client.post("/api/v1/care/rules", json=bad, headers={**headers, "Accept-Language": lang})
    assert resp.status_code == 422
    assert _errors(resp) == expected
    assert _count(db) == before


def test_a_send_time_in_the_quiet_hours_is_refused(client: Any, login: Any, db: Session) -> None:
    _, headers = login("admin")
    before = _count(db)
    resp = client.post(
        "/api/v1/care/rules",
        json={**FESTIVAL, "send_time": "22:30"},
        headers={**headers, "Accept-Language": "en"},
    )
    assert resp.status_code == 422
    assert _errors(resp) == {
        "send_time": "The send time 22:30 falls in the quiet hours (21:00–08:00); "
        "choose a time outside them"
    }
    zh = client.post(
        "/api/v1/care/rules",
        json={**FESTIVAL, "send_time": "07:59"},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert _errors(zh) == {
        "send_time": "发送时间 07:59 处于免打扰时段（21:00–08:00），请选择此时段以外的时间"
    }
    assert _count(db) == before
    # The policy's default send time is checked the same way.
    policy = client.get("/api/v1/care/policy", headers=headers).json()
    refused = client.put(
        "/api/v1/care/policy",
        json={**policy, "default_send_time": "23:00"},
        headers={**headers, "Accept-Language": "en"},
    )
    assert refused.status_code == 422
    assert list(_errors(refused)) == ["default_send_time"]
    saved = client.put(
        "/api/v1/care/policy", json={**policy, "cap_count": 3}, headers=headers
    ).json()
    assert saved["cap_count"] == 3


def test_rule_shape_errors(client: Any, login: Any) -> None:
    _, headers = login("admin")
    cases = [
        ({**FESTIVAL, "festivals": []}, "festivals", "Choose at least one festival"),
        ({**FESTIVAL, "festivals": ["easter"]}, "festivals.0", "Unknown festival: easter"),
        (
            {**BIRTHDAY, "festivals": ["mid_autumn"]},
            "festivals",
            "Only festival greetings name festivals",
        ),
        (
            {**FESTIVAL, "coupon_template": "birthday"},
            "coupon_template",
            "Only birthday, anniversary and win-back messages carry a coupon",
        ),
        (
            {**BIRTHDAY, "coupon_template": "no_such_coupon"},
            "coupon_template",
            "No active coupon template has the code no_such_coupon",
        ),
        (
            {**BIRTHDAY, "sms_template": None},
            "sms_template",
            "Choose the SMS template of the gateway",
        ),
        (
            {**BIRTHDAY, "channel": "email", "subject_zh": ""},
            "subject_zh",
            "An e-mail needs a subject",
        ),
        ({**BIRTHDAY, "body_zh": ""}, "body_zh", "Write the message"),
        (
            {**BIRTHDAY, "audience": {"segments": ["vip"]}},
            "audience.segments.0",
            "Unknown segment: vip",
        ),
    ]
    for body, field, message in cases:
        resp = client.post(
            "/api/v1/care/rules", json=body, headers={**headers, "Accept-Language": "en"}
        )
        assert resp.status_code == 422, (field, resp.text)
        assert _errors(resp) == {field: message}


def test_an_edit_names_the_version_it_read(client: Any, login: Any) -> None:
    _, headers = login("admin")
    rule = client.post("/api/v1/care/rules", json=BIRTHDAY, headers=headers).json()
    changed = {**BIRTHDAY, "name": "生日（新）", "version": rule["version"]}
    ok = client.put(f"/api/v1/care/rules/{rule['id']}", json=changed, headers=headers)
    assert ok.status_code == 200
    assert ok.json()["version"] == rule["version"] + 1
    stale = client.put(f"/api/v1/care/rules/{rule['id']}", json=changed, headers=headers)
    assert stale.status_code == 409


def test_runs_through_the_api_and_the_festival_calendar(
    client: Any, login: Any, db: Session, make_customer: Any, grant: Any, make_rule: Any
) -> None:
    _, headers = login("manager")
    grant(make_customer("运行", phones=["13912340062"]))
    rule = make_rule(FESTIVAL)
    with clock.frozen(local(2026, 9, 25, 10)):
        dry = client.post("/api/v1/care/runs", json={"dry_run": True}, headers=headers).json()
        assert [(r["rule_id"], r["status"], r["queued"]) for r in dry["rules"]] == [
            (rule.id, "dry_run", 1)
        ]
        real = client.post("/api/v1/care/runs", json={"dry_run": False}, headers=headers)
        assert [r["status"] for r in real.json()["rules"]] == ["queued"]
    runs = client.get(f"/api/v1/care/runs?rule_id={rule.id}", headers=headers).json()
    assert [(r["run_date"], r["queued"], r["status"]) for r in runs] == [("2026-09-25", 1, "done")]
    festivals = client.get("/api/v1/care/festivals?year=2027", headers=headers).json()
    assert {"day": "2027-02-06", "code": "spring_festival", "name_zh": "春节",
            "name_en": "Spring Festival", "lunar": True} in festivals  # fmt: skip


@pytest.mark.parametrize(
    ("role", "read", "manage"),
    [
        ("admin", 200, 201),
        ("manager", 200, 201),
        ("analyst", 200, 403),
        ("auditor", 200, 403),
        ("agent", 403, 403),
        ("sales", 403, 403),
    ],
)
def test_permissions(
    client: Any, login: Any, db: Session, role: str, read: int, manage: int
) -> None:
    _, headers = login(role)
    before = _count(db)
    assert client.get("/api/v1/care/rules", headers=headers).status_code == read
    created = client.post("/api/v1/care/rules", json=BIRTHDAY, headers=headers)
    assert created.status_code == manage
    assert _count(db) == before + (1 if manage == 201 else 0)


def _web_login(client: Any, make_user: Any, role: str) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    import re

    user = make_user(role)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": "correct horse battery"}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)
    care = client.get("/care")
    found = re.search(r'name="csrf_token" value="([^"]+)"', care.text)
    assert found, care.text[:500]
    return found.group(1)


def test_pages_create_preview_switch_on_and_show_the_runs(
    client: Any, make_user: Any, db: Session, make_customer: Any, grant: Any
) -> None:
    csrf = _web_login(client, make_user, "manager")
    rules = client.get("/care")
    assert rules.status_code == 200
    assert "生日祝福（附优惠券）" in rules.text
    editor = client.get("/care/rules/new?kind=festival")
    assert editor.status_code == 200
    assert 'name="festivals" value="mid_autumn"' in editor.text
    form = {
        "csrf_token": csrf,
        "kind": "festival",
        "name": "中秋问候（页面）",
        "channel": "sms",
        "festivals": "mid_autumn",
        "sms_template": "care_greeting",
        "body_zh": "{{ name }}，中秋快乐！{{ years }}",
        "send_time": "10:00",
        "lead_days": "0",
        "priority": "50",
    }
    refused = client.post("/care/rules", data=form)
    assert refused.status_code == 422
    assert "未知变量 years" in refused.text  # the staff page in the default zh_CN
    form["body_zh"] = "{{ name }}，中秋快乐！"
    created = client.post("/care/rules", data=form, follow_redirects=False)
    assert created.status_code == 303
    url = created.headers["location"]
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="preview-panel"' in page.text
    grant(make_customer("页面客户", phones=["13912340063"]))
    with clock.frozen(local(2026, 9, 20, 12)):
        panel = client.get(f"{url}/preview?day=2026-09-25", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    # The figures, the masked name and address, and the exact message.
    assert '<strong data-figure="reached">1</strong>' in panel.text
    assert "<td>页***</td>" in panel.text
    assert "139****0063" in panel.text
    assert "<td>页面客户，中秋快乐！</td>" in panel.text
    assert "<html" not in panel.text  # a fragment for htmx
    on = client.post(f"{url}/enable", data={"csrf_token": csrf}, follow_redirects=False)
    assert on.status_code == 303
    db.expire_all()
    rule_id = int(url.rsplit("/", 1)[1])
    assert db.get(CareRule, rule_id).enabled  # type: ignore[union-attr]
    runs = client.get("/care/runs?active=false")
    assert runs.status_code == 200
    # The new rule is a filter choice, "every day" is selected, and nothing has run yet.
    assert f'<option value="{rule_id}">中秋问候（页面）</option>' in runs.text
    assert '<option value="false" selected>' in runs.text
    assert 'id="runs"' not in runs.text
    assert '<p class="empty">' in runs.text
    policy_before = care_policy.load_policy(db)
    bad_policy = client.post(
        "/care/policy",
        data={"csrf_token": csrf, "cap_count": "0", "cap_days": "30",
              "default_send_time": "10:00", "company_zh": "关系速递", "company_en": "G"},
    )  # fmt: skip
    assert bad_policy.status_code == 422
    db.expire_all()
    assert care_policy.load_policy(db) == policy_before
