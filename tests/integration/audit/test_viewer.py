"""The auditor's viewer: search by actor, record, action and time with cursor pages
(``GET /api/v1/audit`` and the ``/audit`` page), the CSV export of a search (audited),
permissions per role, bad input as 422 naming the field, masked values only."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor, record
from tests.conftest import PASSWORD

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def _web_login(client: Any, user: Any) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)


def _entries(db: Session) -> list[int]:
    """Five entries an hour apart from T0 (besides whatever the fixtures wrote)."""
    plan = [
        ("li", "customer.updated", "customer", "11"),
        ("wang", "customer.revealed", "customer", "11"),
        ("li", "customer.revealed", "customer", "12"),
        ("li", "ticket.escalated", "ticket", "11"),
        ("wang", "customer.updated", "customer", "12"),
    ]
    ids = []
    for hour, (who, action, kind, target) in enumerate(plan):
        entry = record(
            db,
            actor=Actor(None, who),
            action=action,
            target_type=kind,
            target_id=target,
            before={"phone": "138****0001"} if action == "customer.updated" else None,
            after={"phone": "139****0002"} if action == "customer.updated" else {"field": "phone"},
        )
        ids.append(entry.id)
        # Backdated (a test of the time filter, not of the chain).
        db.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry.id)
            .values(occurred_at=T0 + timedelta(hours=hour))
        )
    db.commit()
    return ids


def _ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [e["id"] for e in resp.json()["items"]]


def test_search_by_actor_record_action_and_time(client: Any, login: Any, db: Session) -> None:
    _user, headers = login("auditor")
    ids = _entries(db)

    def get(**q: str) -> Any:
        return client.get("/api/v1/audit", params=q, headers=headers)

    assert _ids(get(actor="li")) == [ids[3], ids[2], ids[0]]
    assert _ids(get(target_type="customer", target_id="11")) == [ids[1], ids[0]]
    assert _ids(get(target_type="ticket")) == [ids[3]]
    assert _ids(get(action="customer.revealed")) == [ids[2], ids[1]]
    assert _ids(get(actor="wang", action="customer.updated")) == [ids[4]]
    window = get(since="2026-11-20T02:00:00Z", until="2026-11-20T04:00:00Z")
    assert _ids(window) == [ids[2], ids[1]]
    # A time without a zone is UTC; 09:00 Shanghai is 01:00 UTC; until is exclusive.
    assert _ids(get(since="2026-11-20T03:00:00", actor="li")) == [ids[3], ids[2]]
    assert _ids(get(until="2026-11-20T09:00:00+08:00", actor="li")) == []
    item = get(target_type="customer", target_id="12", actor="wang").json()["items"][0]
    assert item == {
        "id": ids[4],
        "occurred_at": "2026-11-20T05:00:00Z",
        "actor_id": None,
        "actor_name": "wang",
        "action": "customer.updated",
        "target_type": "customer",
        "target_id": "12",
        "before": {"phone": "138****0001"},
        "after": {"phone": "139****0002"},
        "request_id": None,
        "hash": item["hash"],
    }


def test_cursor_pages_cover_the_search_once(client: Any, login: Any, db: Session) -> None:
    _user, headers = login("auditor")
    ids = _entries(db)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"target_type": "customer", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/audit", params=params, headers=headers).json()
        seen += [e["id"] for e in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [ids[4], ids[2], ids[1], ids[0]]
    assert pages == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "!!!"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-11-20T05:00:00Z", "until": "2026-11-20T04:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"actor": "x" * 65}, "actor"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: Any, login: Any, params: dict[str, str], field: str
) -> None:
    _user, headers = login("auditor")
    resp = client.get("/api/v1/audit", params=params, headers=headers)
    assert resp.status_code == 422, resp.text
    assert [e["loc"][-1] for e in resp.json()["errors"]] == [field]


def test_permissions_per_role(client: Any, login: Any, db: Session) -> None:
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit/export.csv").status_code == 401
    for role in ("agent", "sales", "analyst"):
        _user, headers = login(role)
        assert client.get("/api/v1/audit", headers=headers).status_code == 403
        assert client.get("/api/v1/audit/export.csv", headers=headers).status_code == 403
    exports = db.scalar(select(AuditEntry.id).where(AuditEntry.action == "audit.exported"))
    assert exports is None
    for role in ("auditor", "admin", "manager", "privacy_officer"):
        _user, headers = login(role)
        assert client.get("/api/v1/audit", headers=headers).status_code == 200, role


def test_the_export_is_the_search_and_is_audited(client: Any, login: Any, db: Session) -> None:
    user, headers = login("auditor")
    ids = _entries(db)
    resp = client.get(
        "/api/v1/audit/export.csv", params={"target_type": "customer"}, headers=headers
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(resp.text.removeprefix("\ufeff"))))
    assert rows[0] == [
        "id", "occurred_at", "actor_id", "actor", "action", "action_label", "target_type",
        "target_id", "before", "after", "request_id", "hash",
    ]  # fmt: skip
    assert [int(r[0]) for r in rows[1:]] == [ids[4], ids[2], ids[1], ids[0]]
    assert rows[1][1:10] == [
        "2026-11-20T05:00:00+00:00",
        "",
        "wang",
        "customer.updated",
        "修改客户",  # the label in the user's language (zh_CN by default)
        "customer",
        "12",
        '{"phone": "138****0001"}',
        '{"phone": "139****0002"}',
    ]
    db.expire_all()
    exported = db.scalars(select(AuditEntry).where(AuditEntry.action == "audit.exported")).all()
    assert [(e.actor_id, e.actor_name, e.target_type, e.after) for e in exported] == [
        (
            user.id,
            user.username,
            "audit_log",
            {"search": {"target_type": "customer"}, "entries": 4},
        )
    ]
    assert resp.headers["content-disposition"] == f'attachment; filename="audit-{ids[4]}.csv"'


def test_personal_data_stays_masked_in_the_viewer(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    _user, headers = login("auditor")
    customer = make_customer("林小姐", phones=["13912345678"], email="lin@example.com")
    body = client.get(
        "/api/v1/audit",
        params={"target_type": "customer", "target_id": str(customer.id)},
        headers=headers,
    ).text
    export = client.get(
        "/api/v1/audit/export.csv",
        params={"target_type": "customer", "target_id": str(customer.id)},
        headers=headers,
    ).text
    for text in (body, export):
        assert "customer.created" in text
        assert "13912345678" not in text
        assert "lin@example.com" not in text
        # The name is sealed in the chain (audit/sealing.py); the viewer shows it masked.
        assert "林小姐" not in text
        assert "sealed:v1" not in text
    created = next(
        e
        for e in client.get(
            "/api/v1/audit",
            params={"target_type": "customer", "target_id": str(customer.id)},
            headers=headers,
        ).json()["items"]
        if e["action"] == "customer.created"
    )
    assert created["after"]["name"] == "林**"


def test_the_viewer_shows_an_anonymised_customers_values_as_erased(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    from guanxi.privacy.anonymise import anonymise_customers

    _user, headers = login("auditor")
    customer = make_customer("林小姐", phones=["13912345678"], notes="夜间勿扰")
    assert anonymise_customers(db, customer_ids=[customer.id], actor=Actor.system("t"), reason="r")
    params = {
        "target_type": "customer",
        "target_id": str(customer.id),
        "action": "customer.created",
    }
    # In the reader's language: the default (zh_CN), then English on request.
    (created,) = client.get("/api/v1/audit", params=params, headers=headers).json()["items"]
    assert (created["after"]["name"], created["after"]["notes"]) == ("（已删除）", "（已删除）")
    english = headers | {"Accept-Language": "en"}
    (created,) = client.get("/api/v1/audit", params=params, headers=english).json()["items"]
    assert (created["after"]["name"], created["after"]["notes"]) == ("(erased)", "(erased)")
    export = client.get("/api/v1/audit/export.csv", params=params, headers=headers).text
    assert "（已删除）" in export
    assert "林小姐" not in export
    assert "sealed:v1" not in export


def test_the_page_searches_pages_and_links_the_export(
    client: Any, make_user: Any, db: Session
) -> None:
    ids = _entries(db)
    auditor = make_user("auditor")
    _web_login(client, auditor)
    page = client.get("/audit", params={"actor": "li"})
    assert page.status_code == 200
    shown = [int(i) for i in re.findall(r'<tr id="entry-(\d+)"', page.text)]
    assert shown == [ids[3], ids[2], ids[0]]
    assert 'href="/api/v1/audit/export.csv?actor=li"' in page.text
    assert "138****0001" in page.text
    # Local dates (Asia/Shanghai), both days included: 20 Nov local is 19 Nov 16:00 UTC on.
    day = client.get("/audit", params={"since": "2026-11-20", "until": "2026-11-20"})
    assert [int(i) for i in re.findall(r'<tr id="entry-(\d+)"', day.text)] == ids[::-1]
    none = client.get("/audit", params={"since": "2026-11-21", "until": "2026-11-20"})
    assert re.findall(r'<tr id="entry-(\d+)"', none.text) == []
    assert client.get("/audit", params={"cursor": "!!!", "actor": "li"}).status_code == 200
    for edge in ("0001-01-01", "9999-12-31"):
        edge_page = client.get("/audit", params={"since": edge, "until": edge})
        assert edge_page.status_code == 200
        assert re.findall(r'<tr id="entry-(\d+)"', edge_page.text) == []
    agent = make_user("agent")
    client.cookies.clear()
    _web_login(client, agent)
    assert client.get("/audit").status_code == 403
