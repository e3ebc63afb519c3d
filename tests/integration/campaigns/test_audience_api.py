"""Saved audiences through the JSON API on both databases: save, edit, archive (audited),
the live count, bad definitions refused naming the field in Chinese and English, and who
may read, count and write."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.campaigns.models import Audience

ZJ_VIP = {
    "name": "浙江 VIP",
    "description": "浙江省的 VIP 客户",
    "definition": {"regions": ["浙江省"], "tags_any": ["VIP"]},
}


def _count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(Audience)) or 0)


def _errors(resp: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in resp.json()["errors"]}


def _actions(db: Session, audience_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditEntry.action)
            .where(
                AuditEntry.target_type == "campaign_audience",
                AuditEntry.target_id == str(audience_id),
            )
            .order_by(AuditEntry.id)
        )
    )


def test_save_edit_count_sample_and_archive(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    a = make_customer("浙甲", region="浙江省", tags=["VIP"], phones=["13912340071"])
    make_customer("浙乙", region="浙江省")
    b = make_customer("苏丙", region="江苏省", tags=["VIP"])
    _, headers = login("manager")
    created = client.post("/api/v1/audiences", json=ZJ_VIP, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["description"], body["version"], body["archived_at"]) == (
        "浙江 VIP",
        "浙江省的 VIP 客户",
        1,
        None,
    )
    assert body["definition"]["regions"] == ["浙江省"]
    assert body["definition"]["tags_any"] == ["VIP"]
    assert body["definition"]["kinds"] == []
    aid = body["id"]
    assert client.get(f"/api/v1/audiences/{aid}/count", headers=headers).json() == {"count": 1}
    sample = client.get(f"/api/v1/audiences/{aid}/sample", headers=headers).json()
    assert sample == [
        {"id": a.id, "name": "浙*", "kind": "individual", "region": "浙江省", "phone": "****0071"}
    ]
    live = client.post(
        "/api/v1/audiences/count", json={"tags_any": ["VIP"], "regions": []}, headers=headers
    )
    assert live.json() == {"count": 2}

    changed = {**ZJ_VIP, "definition": {"tags_any": ["VIP"]}, "version": 1}
    edited = client.put(f"/api/v1/audiences/{aid}", json=changed, headers=headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2
    stale = client.put(f"/api/v1/audiences/{aid}", json=changed, headers=headers)
    assert stale.status_code == 409
    assert client.get(f"/api/v1/audiences/{aid}/count", headers=headers).json() == {"count": 2}
    ids = {m["id"] for m in client.get(f"/api/v1/audiences/{aid}/sample", headers=headers).json()}
    assert ids == {a.id, b.id}

    taken = client.post(
        "/api/v1/audiences", json=ZJ_VIP, headers={**headers, "Accept-Language": "en"}
    )
    assert taken.status_code == 422
    assert _errors(taken) == {"name": "Another audience already has this name"}

    archived = client.delete(f"/api/v1/audiences/{aid}", headers=headers)
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    assert client.get("/api/v1/audiences", headers=headers).json() == []
    listed = client.get("/api/v1/audiences?archived=true", headers=headers).json()
    assert [x["id"] for x in listed] == [aid]
    again = client.delete(f"/api/v1/audiences/{aid}", headers=headers)
    assert again.status_code == 409
    frozen = client.put(f"/api/v1/audiences/{aid}", json=ZJ_VIP, headers=headers)
    assert frozen.status_code == 409
    restored = client.post(f"/api/v1/audiences/{aid}/restore", headers=headers)
    assert restored.json()["archived_at"] is None
    assert [x["id"] for x in client.get("/api/v1/audiences", headers=headers).json()] == [aid]
    assert _actions(db, aid) == [
        "campaign.audience_created",
        "campaign.audience_changed",
        "campaign.audience_archived",
        "campaign.audience_restored",
    ]
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "campaign.audience_changed")
    ).one()
    assert entry.before == {"definition": {"regions": ["浙江省"], "tags_any": ["VIP"]}}
    assert entry.after == {"definition": {"tags_any": ["VIP"]}}
    assert client.get("/api/v1/audiences/999999", headers=headers).status_code == 404


BAD = [
    (
        {"tiers": ["platinum"]},
        "tiers.0",
        "Unknown membership tier: platinum",
        "未知会员等级：platinum",
    ),
    (
        {"clv_min_fen": 50_000, "clv_max_fen": 10_000},
        "clv_max_fen",
        "Must be at least the minimum (50000)",
        "不能小于最小值（50000）",
    ),
    (
        {"points_min": 300, "points_max": 200},
        "points_max",
        "Must be at least the minimum (300)",
        "不能小于最小值（300）",
    ),
    ({"shipped_within_days": -3}, "shipped_within_days", "Must be at least 1", "不能小于 1"),
    ({"no_shipment_for_days": 0}, "no_shipment_for_days", "Must be at least 1", "不能小于 1"),
    ({"segments": ["vip"]}, "segments.0", "Unknown segment: vip", "未知客户分群：vip"),
    ({"owner_ids": [987654]}, "owner_ids.0", "No such user: 987654", "没有这个用户：987654"),
    ({"value_tiers": ["top"]}, "value_tiers.0", "Must be one of: 'high', 'medium' or 'low'", None),
    ({"colour": ["red"]}, "colour", "Unknown field", "未知字段"),
]


@pytest.mark.parametrize(("definition", "field", "en", "zh"), BAD)
def test_bad_definitions_are_refused_naming_the_field(
    client: Any,
    login: Any,
    db: Session,
    definition: dict[str, Any],
    field: str,
    en: str,
    zh: str | None,
) -> None:
    _, headers = login("manager")
    for lang, message in (("en", en), ("zh-CN", zh)):
        counted = client.post(
            "/api/v1/audiences/count", json=definition, headers={**headers, "Accept-Language": lang}
        )
        assert counted.status_code == 422, counted.text
        if message is not None:
            assert _errors(counted) == {field: message}
        else:
            assert list(_errors(counted)) == [field]
        saved = client.post(
            "/api/v1/audiences",
            json={"name": "坏的", "definition": definition},
            headers={**headers, "Accept-Language": lang},
        )
        assert saved.status_code == 422, saved.text
        if message is not None:
            assert _errors(saved) == {f"definition.{field}": message}
    assert _count(db) == 0


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("agent", False, False),
        ("sales", False, False),
        ("analyst", True, False),
        ("auditor", True, False),
        ("manager", True, True),
        ("admin", True, True),
    ],
)
def test_who_may_read_count_and_write(
    client: Any, login: Any, db: Session, role: str, read: bool, write: bool
) -> None:
    _, owner = login("manager")
    aid = client.post("/api/v1/audiences", json=ZJ_VIP, headers=owner).json()["id"]
    _, headers = login(role)
    reads = [
        client.get("/api/v1/audiences", headers=headers),
        client.get(f"/api/v1/audiences/{aid}", headers=headers),
        client.get(f"/api/v1/audiences/{aid}/count", headers=headers),
        client.get(f"/api/v1/audiences/{aid}/sample", headers=headers),
        client.post("/api/v1/audiences/count", json={}, headers=headers),
    ]
    assert [r.status_code for r in reads] == [200 if read else 403] * 5
    before = _count(db)
    writes = [
        client.post("/api/v1/audiences", json={**ZJ_VIP, "name": role}, headers=headers),
        client.put(
            f"/api/v1/audiences/{aid}", json={**ZJ_VIP, "description": role}, headers=headers
        ),
        client.delete(f"/api/v1/audiences/{aid}", headers=headers),
    ]
    assert [w.status_code for w in writes] == ([201, 200, 200] if write else [403] * 3)
    db.expire_all()
    stored = db.get(Audience, aid)
    assert stored is not None
    if write:
        assert _count(db) == before + 1
        assert (stored.description, stored.archived_at is not None) == (role, True)
    else:
        assert _count(db) == before
        assert (stored.description, stored.archived_at, stored.version) == (
            "浙江省的 VIP 客户",
            None,
            1,
        )
