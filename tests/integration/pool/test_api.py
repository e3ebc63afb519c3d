"""The pool through the JSON API: browsing (filters, masked phones), claiming under the
daily cap, releasing, assigning, the policy and the history; permissions per role; bad
input answered 422 naming the field, with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core import clock
from guanxi.core.pagination import encode_cursor
from guanxi.customers.models import Customer
from guanxi.pool.models import PoolClaimDay, PoolEvent
from tests.integration.pool.conftest import local


def _owner(db: Session, customer_id: int) -> int | None:
    db.expire_all()
    return db.scalar(select(Customer.owner_id).where(Customer.id == customer_id))


def _events(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(PoolEvent)) or 0)


def _fields(resp: Any) -> dict[str, str]:
    return {e["field"]: e["code"] for e in resp.json()["errors"]}


def test_a_salesperson_browses_the_pool_masked_and_claims(
    client: Any, login: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    sales, headers = login("sales", display_name="王销售")
    other = make_user("sales", display_name="李销售")
    first = make_customer("甲公司", kind="enterprise", phones=["13912340061"], region="浙江省")
    second = make_customer("乙个人", phones=["13912340062"])
    make_customer("丙公司", actor=other)
    page = client.get("/api/v1/pool", headers=headers)
    assert page.status_code == 200, page.text
    assert [(c["id"], c["name"], c["phone"]) for c in page.json()["items"]] == [
        (second.id, "乙个人", "139****0062"),
        (first.id, "甲公司", "139****0061"),
    ]
    assert "13912340061" not in page.text
    resp = client.post("/api/v1/pool/claim", json={"customer_id": first.id}, headers=headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["kind"], body["customer_name"], body["to_user_id"], body["to_user_name"]) == (
        "claimed",
        "甲公司",
        sales.id,
        "王销售",
    )
    assert _owner(db, first.id) == sales.id
    audit = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_type == "customer", AuditEntry.target_id == str(first.id))
        .order_by(AuditEntry.id.desc())
    ).first()
    assert audit is not None
    assert (audit.action, audit.actor_id, audit.before, audit.after) == (
        "customer.updated",
        sales.id,
        {"owner_id": None},
        {"owner_id": sales.id, "reason": "claimed"},
    )
    today = client.get("/api/v1/pool/claims/today", headers=headers).json()
    assert (today["claimed"], today["cap"]) == (1, 10)
    left = client.get("/api/v1/pool", headers=headers).json()["items"]
    assert [c["id"] for c in left] == [second.id]


def test_a_customer_someone_claimed_first_is_refused_with_their_name(
    client: Any, login: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    winner, win_headers = login("sales", display_name="王销售")
    _loser, lose_headers = login("sales", display_name="李销售")
    customer = make_customer("抢手客户")
    assert (
        client.post(
            "/api/v1/pool/claim", json={"customer_id": customer.id}, headers=win_headers
        ).status_code
        == 201
    )
    late = client.post(
        "/api/v1/pool/claim", json={"customer_id": customer.id}, headers=lose_headers
    )
    assert late.status_code == 409
    assert late.json()["errors"] == [
        {
            "field": "customer_id",
            "loc": ["customer_id"],
            "code": "pool_taken",
            "message": "王销售已先领取该客户，客户已不在公海中",
        }
    ]
    again = client.post(
        "/api/v1/pool/claim", json={"customer_id": customer.id}, headers=win_headers
    )
    assert (again.status_code, _fields(again)) == (409, {"customer_id": "pool_yours"})
    assert _owner(db, customer.id) == winner.id
    assert _events(db) == 1


def test_the_daily_cap_counts_local_days_and_releases_do_not_give_places_back(
    client: Any, login: Any, make_customer: Any, db: Session, policy: Any
) -> None:
    policy(daily_cap=2)
    sales, headers = login("sales")
    a, b, c = (make_customer(n) for n in ("客户甲", "客户乙", "客户丙"))
    # 23:30 in Shanghai on 5 March: one local day with the morning.
    with clock.frozen(local(2026, 3, 5, 9)):
        for customer in (a, b):
            ok = client.post(
                "/api/v1/pool/claim", json={"customer_id": customer.id}, headers=headers
            )
            assert ok.status_code == 201, ok.text
        back = client.post("/api/v1/pool/release", json={"customer_id": a.id}, headers=headers)
        assert back.status_code == 201, back.text
    with clock.frozen(local(2026, 3, 5, 23, 30)):
        capped = client.post(
            "/api/v1/pool/claim",
            json={"customer_id": c.id},
            headers={**headers, "Accept-Language": "en"},
        )
        assert capped.status_code == 409
        assert [(e["field"], e["code"], e["message"]) for e in capped.json()["errors"]] == [
            (
                "customer_id",
                "pool_cap_reached",
                "You have claimed 2 customers today, the daily limit; claim more tomorrow",
            )
        ]
        assert client.get("/api/v1/pool/claims/today", headers=headers).json()["claimed"] == 2
    assert _owner(db, c.id) is None
    # Midnight in Shanghai (16:00 UTC): a new day, a new count.
    with clock.frozen(local(2026, 3, 6, 0, 5)):
        ok = client.post("/api/v1/pool/claim", json={"customer_id": c.id}, headers=headers)
        assert ok.status_code == 201, ok.text
    db.expire_all()
    assert sorted(
        (d.day.isoformat(), d.claimed)
        for d in db.scalars(select(PoolClaimDay).where(PoolClaimDay.user_id == sales.id))
    ) == [("2026-03-05", 2), ("2026-03-06", 1)]


def test_release_by_the_owner_or_a_manager_only(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    owner, owner_headers = login("sales", display_name="王销售")
    _other, other_headers = login("sales")
    _boss, boss_headers = login("manager")
    mine = make_customer("我的客户", actor=owner)
    second = make_customer("第二个", actor=owner)
    # Another salesperson does not see it at all.
    nosy = client.post("/api/v1/pool/release", json={"customer_id": mine.id}, headers=other_headers)
    assert nosy.status_code == 404
    resp = client.post(
        "/api/v1/pool/release",
        json={"customer_id": mine.id, "note": "客户已转给同行"},
        headers=owner_headers,
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["kind"], resp.json()["from_user_name"], resp.json()["note"]) == (
        "released",
        "王销售",
        "客户已转给同行",
    )
    again = client.post(
        "/api/v1/pool/release", json={"customer_id": mine.id}, headers=owner_headers
    )
    assert (again.status_code, _fields(again)) == (409, {"customer_id": "pool_not_owned"})
    by_boss = client.post(
        "/api/v1/pool/release", json={"customer_id": second.id}, headers=boss_headers
    )
    assert by_boss.status_code == 201
    assert (_owner(db, mine.id), _owner(db, second.id)) == (None, None)


def test_a_manager_assigns_and_reads_the_history(
    client: Any, login: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    boss, headers = login("manager", display_name="销售主管")
    wang = make_user("sales", display_name="王销售")
    li = make_user("sales", display_name="李销售")
    pooled = make_customer("公海客户")
    owned = make_customer("李的客户", actor=li)
    resp = client.post(
        "/api/v1/pool/assign",
        json={"customer_ids": [pooled.id, owned.id], "owner_id": wang.id, "note": "区域调整"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"assigned": [pooled.id, owned.id], "unchanged": []}
    same = client.post(
        "/api/v1/pool/assign",
        json={"customer_ids": [owned.id], "owner_id": wang.id},
        headers=headers,
    )
    assert same.json() == {"assigned": [], "unchanged": [owned.id]}
    assert (_owner(db, pooled.id), _owner(db, owned.id)) == (wang.id, wang.id)
    history = client.get("/api/v1/pool/history", headers=headers)
    assert history.status_code == 200
    assert [
        (
            e["customer_name"],
            e["kind"],
            e["from_user_name"],
            e["to_user_name"],
            e["actor_name"],
            e["note"],
        )
        for e in history.json()["items"]
    ] == [
        ("李的客户", "assigned", "李销售", "王销售", "销售主管", "区域调整"),
        ("公海客户", "assigned", None, "王销售", "销售主管", "区域调整"),
    ]
    only_li = client.get(f"/api/v1/pool/history?user_id={li.id}", headers=headers).json()
    assert [e["customer_id"] for e in only_li["items"]] == [owned.id]
    paged = client.get("/api/v1/pool/history?limit=1", headers=headers).json()
    assert len(paged["items"]) == 1
    rest = client.get(
        f"/api/v1/pool/history?limit=1&cursor={paged['next_cursor']}", headers=headers
    ).json()
    assert ([e["customer_id"] for e in rest["items"]], rest["next_cursor"]) == ([pooled.id], None)
    assert boss.id == history.json()["items"][0]["actor_id"]


def test_the_policy_is_read_by_sales_and_set_by_managers(
    client: Any, login: Any, make_customer: Any, db: Session
) -> None:
    _sales, sales_headers = login("sales")
    _boss, headers = login("manager")
    make_customer("重点", tags=["重点客户"])
    default = client.get("/api/v1/pool/policy", headers=sales_headers).json()
    assert default == {
        "daily_cap": 10,
        "no_follow_up_days": 30,
        "contract_ended_days": 30,
        "warn_days": 3,
        "only_from_pool": False,
        "exempt_tags": [],
    }
    wanted = {
        "daily_cap": 3,
        "no_follow_up_days": 15,
        "contract_ended_days": None,
        "warn_days": 2,
        "only_from_pool": False,
        "exempt_tags": ["重点客户"],
    }
    assert client.put("/api/v1/pool/policy", json=wanted, headers=sales_headers).status_code == 403
    saved = client.put("/api/v1/pool/policy", json=wanted, headers=headers)
    assert (saved.status_code, saved.json()) == (200, wanted)
    assert client.get("/api/v1/pool/policy", headers=sales_headers).json() == wanted
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "pool.policy_changed")).one()
    assert audit.after == {
        "daily_cap": 3,
        "no_follow_up_days": 15,
        "contract_ended_days": None,
        "warn_days": 2,
        "only_from_pool": False,
        "exempt_tags": ["重点客户"],
    }


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/api/v1/pool/claim", {"customer_id": "x"}, {"customer_id"}),
        ("/api/v1/pool/claim", {"customer_id": 0}, {"customer_id"}),
        ("/api/v1/pool/claim", {}, {"customer_id"}),
        ("/api/v1/pool/release", {"customer_id": 1, "note": "长" * 201}, {"note"}),
        ("/api/v1/pool/assign", {"customer_ids": [], "owner_id": 1}, {"customer_ids"}),
        ("/api/v1/pool/assign", {"customer_ids": [1], "owner_id": -3}, {"owner_id"}),
    ],
)
def test_malformed_input_is_422_naming_the_field(
    client: Any, login: Any, path: str, body: dict[str, Any], fields: set[str], db: Session
) -> None:
    _boss, headers = login("manager")
    resp = client.post(path, json=body, headers=headers)
    assert resp.status_code == 422, resp.text
    assert {e["loc"][0] for e in resp.json()["errors"]} == fields
    assert _events(db) == 0


def test_rule_breaking_input_is_422_naming_the_field_in_chinese(
    client: Any, login: Any, make_user: Any, make_customer: Any, db: Session
) -> None:
    _boss, headers = login("manager")
    agent = make_user("agent")
    customer = make_customer("客户")
    to_agent = client.post(
        "/api/v1/pool/assign",
        json={"customer_ids": [customer.id], "owner_id": agent.id},
        headers=headers,
    )
    assert to_agent.status_code == 422
    assert [(e["field"], e["message"]) for e in to_agent.json()["errors"]] == [
        ("owner_id", "请选择一位在职且负责销售的用户")
    ]
    unknown = client.post(
        "/api/v1/pool/assign",
        json={"customer_ids": [customer.id, 999999], "owner_id": make_user("sales").id},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in unknown.json()["errors"]] == [
        ("customer_ids.1", "pool_customer_unknown", "没有这个有效客户")
    ]
    bad_policy = client.put(
        "/api/v1/pool/policy",
        json={"daily_cap": 0, "warn_days": 3, "exempt_tags": ["没有这个标签"]},
        headers=headers,
    )
    assert (bad_policy.status_code, set(_fields(bad_policy))) == (422, {"daily_cap"})
    no_tag = client.put(
        "/api/v1/pool/policy", json={"exempt_tags": ["没有这个标签"]}, headers=headers
    )
    assert no_tag.status_code == 422
    assert [(e["field"], e["message"]) for e in no_tag.json()["errors"]] == [
        ("exempt_tags.0", "没有客户带有标签“没有这个标签”")
    ]
    missing = client.post("/api/v1/pool/claim", json={"customer_id": 999999}, headers=headers)
    assert missing.status_code == 404
    assert _owner(db, customer.id) is None
    assert _events(db) == 0


@pytest.mark.parametrize(
    ("role", "browse", "manage"),
    [
        ("admin", 200, 200),
        ("manager", 200, 200),
        ("sales", 200, 403),
        ("agent", 403, 403),
        ("analyst", 403, 403),
        ("auditor", 403, 403),
    ],
)
def test_permissions_per_role(client: Any, login: Any, role: str, browse: int, manage: int) -> None:
    _user, headers = login(role)
    assert client.get("/api/v1/pool", headers=headers).status_code == browse
    assert client.get("/api/v1/pool/claims/today", headers=headers).status_code == browse
    assert client.get("/api/v1/pool/history", headers=headers).status_code == manage
    assert client.post("/api/v1/pool/run", headers=headers).status_code == manage
    assert client.get("/api/v1/pool").status_code == 401


def test_filters_of_the_pool(
    client: Any, login: Any, make_customer: Any, ship: Any, db: Session
) -> None:
    _sales, headers = login("sales")
    with clock.frozen(local(2026, 1, 1)):
        old = make_customer("老企业", kind="enterprise", region="浙江省", industry="制造")
    with clock.frozen(local(2026, 3, 1)):
        new = make_customer("新个人", region="江苏省")
    ship(old.id, local(2026, 2, 20))
    ship(new.id, local(2026, 1, 5))

    def ids(query: str) -> list[int]:
        with clock.frozen(local(2026, 3, 10)):
            resp = client.get(f"/api/v1/pool?{query}", headers=headers)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert ids("") == [new.id, old.id]
    assert ids("region=浙江省") == [old.id]
    assert ids("kind=enterprise&industry=制造") == [old.id]
    assert ids("min_days_in_pool=30") == [old.id]
    assert ids("shipped_within_days=30") == [old.id]
    assert ids("idle_days=30") == [new.id]
    row = client.get("/api/v1/pool?region=浙江省", headers=headers).json()["items"][0]
    assert (row["in_pool_since"][:10], row["last_shipment_at"][:16]) == (
        "2025-12-31",
        "2026-02-19T16:00",
    )
    bad = client.get("/api/v1/pool?min_days_in_pool=-1", headers=headers)
    assert (bad.status_code, bad.json()["errors"][0]["loc"]) == (422, ["query", "min_days_in_pool"])


def test_the_pool_list_query_count_does_not_grow_with_rows(
    client: Any, login: Any, make_customer: Any, ship: Any, engine: Any
) -> None:
    from sqlalchemy import event

    _sales, headers = login("sales")
    statements: list[str] = []
    counts = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    for batch in (3, 30):
        for n in range(batch):
            customer = make_customer(f"批量{batch}-{n}", phones=["13912345678"], tags=["VIP"])
            ship(customer.id, local(2026, 3, 1))
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/api/v1/pool?limit=50", headers=headers).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    # Baseline: token lookup, ids, rows, phones, tags, owners, last moves, last shipments.
    assert counts[0] == counts[1]
    assert counts[0] <= 12


def test_a_tampered_cursor_is_a_422_on_the_cursor(client: Any, login: Any) -> None:
    _, sales = login("sales")
    _, boss = login("manager")
    # Not base64 JSON, a list without a row id, an id that is no number.
    for cursor in ("!!!", encode_cursor([]), encode_cursor(["x"])):
        for url, headers in (("/api/v1/pool", sales), ("/api/v1/pool/history", boss)):
            resp = client.get(url, params={"cursor": cursor}, headers=headers)
            assert resp.status_code == 422, (url, cursor)
            assert _fields(resp) == {"query.cursor": "cursor_invalid"}
