"""The customer API contract, errors and search, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.customers.models import Customer
from tests.helpers import credit_code, resident_id


def _create(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/customers", json=body, headers=headers)


def test_create_contract_and_masked_read(client: Any, login: Any) -> None:
    _, headers = login("agent")
    code = credit_code()
    resp = _create(
        client,
        headers,
        kind="enterprise",
        name="杭州顺达物流有限公司",
        phones=["0571-88881234"],
        email="ops@shunda.example.com",
        credit_code=code,
        addresses=[
            {"line": "杭州市临平区南苑街道星光街1号"},
            {"province": "上海市", "detail": "浦东新区世纪大道100号"},
        ],
        source="referral",
        industry="电商",
        tags=["月结客户"],
        contacts=[{"name": "陈经理", "title": "物流经理", "phone": "13800138000"}],
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["name"] == "杭州顺达物流有限公司"
    assert body["kind"] == "enterprise"
    assert body["phones"][0]["number"] == "0571-****1234"
    assert body["phones"][0]["kind"] == "landline"
    assert body["email"] == "o***@shunda.example.com"
    assert body["credit_code"] == code[:2] + "*" * 12 + code[-4:]
    assert body["addresses"][0]["province"] == "浙江省"
    assert body["addresses"][0]["district"] == "临平区"
    assert body["contacts"][0]["phone"] == "138****8000"
    assert body["tags"] == ["月结客户"]
    assert code not in resp.text
    assert "88881234" not in resp.text

    detail = client.get(f"/api/v1/customers/{body['id']}", headers=headers)
    assert detail.status_code == 200
    data = detail.json()
    assert data["customer"]["id"] == body["id"]
    assert data["shipment_stats"]["count"] == 0
    assert [h["action"] for h in data["history"]] == ["customer.created"]


def test_anonymous_is_401_problem(client: Any) -> None:
    resp = client.get("/api/v1/customers")
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "not_authenticated"


def test_without_permission_is_403_and_nothing_changes(
    client: Any, login: Any, db: Session
) -> None:
    _, headers = login("analyst")
    resp = _create(client, headers, name="张三")
    assert resp.status_code == 403
    assert db.scalar(select(func.count()).select_from(Customer)) == 0


def test_invalid_fields_are_named_in_the_users_language(
    client: Any, login: Any, db: Session
) -> None:
    _, headers = login("agent")
    bad = {
        "name": "张三",
        "phones": ["13912345678", "12345"],
        "id_number": "330113198001151234",
        "birthday": "2999-01-01",
    }
    resp = _create(client, {**headers, "Accept-Language": "zh-CN,zh;q=0.9"}, **bad)
    assert resp.status_code == 422
    errors = {e["field"]: (e["code"], e["message"]) for e in resp.json()["errors"]}
    assert errors["phones.1"][0] == "phone_invalid"
    assert errors["phones.1"][1] == "电话号码无效"
    assert errors["id_number"][0] == "id_number_checksum"
    assert errors["birthday"][0] == "birthday_future"
    en = _create(client, {**headers, "Accept-Language": "en-US"}, **bad)
    en_errors = {e["field"]: e["message"] for e in en.json()["errors"]}
    assert en_errors["phones.1"] == "Not a valid phone number"
    assert db.scalar(select(func.count()).select_from(Customer)) == 0


def test_malformed_and_oversized_bodies(client: Any, login: Any) -> None:
    _, headers = login("agent")
    resp = client.post(
        "/api/v1/customers",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["code"] == "json_invalid"
    big = client.post(
        "/api/v1/customers",
        content=b"x" * (3 * 1024 * 1024),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    wrong_type = _create(client, headers, name=["not", "a", "string"], phones="13912345678")
    assert wrong_type.status_code == 422
    assert {e["field"] for e in wrong_type.json()["errors"]} == {"name", "phones"}


def test_search_finds_names_phones_codes_and_waybills(client: Any, login: Any) -> None:
    _, headers = login("agent")
    code = credit_code()
    ids = {}
    for body in (
        {"name": "张三丰", "phones": ["13912345678"]},
        {"name": "张三", "phones": ["13800138000"]},
        {"name": "李四", "phones": ["13700137000"], "id_number": resident_id()},
        {"kind": "enterprise", "name": "杭州顺达物流有限公司", "credit_code": code},
        {"kind": "enterprise", "name": "Shunda Logistics Co., Ltd."},
        {
            "kind": "enterprise",
            "name": "宁波海港贸易有限公司",
            "contacts": [{"name": "物流部张伟"}],
        },
    ):
        resp = _create(client, headers, **body)
        assert resp.status_code == 201, resp.text
        ids[body["name"]] = resp.json()["id"]
    ship = client.post(
        "/api/v1/shipments",
        json={"waybill_no": "GX202611110001", "customer_id": ids["李四"], "fee_fen": 1200},
        headers=headers,
    )
    assert ship.status_code == 201, ship.text

    def names(q: str) -> list[str]:
        resp = client.get("/api/v1/customers", params={"q": q}, headers=headers)
        assert resp.status_code == 200, resp.text
        return [c["name"] for c in resp.json()["items"]]

    assert names("张三") == ["张三", "张三丰"]
    assert names("三丰") == ["张三丰"]
    assert names("物流") == ["宁波海港贸易有限公司", "杭州顺达物流有限公司"]
    assert names("顺达物流") == ["杭州顺达物流有限公司"]
    assert names("logis") == ["Shunda Logistics Co., Ltd."]
    assert names("+86 139-1234-5678") == ["张三丰"]
    assert names("139 1234 5678") == ["张三丰"]
    assert names(code) == ["杭州顺达物流有限公司"]
    assert names(resident_id()) == ["李四"]
    assert names("gx202611110001") == ["李四"]
    assert names("王") == []
    assert names("张") == ["宁波海港贸易有限公司", "张三", "张三丰"]  # contact 张伟 too


def test_list_pagination_filters_and_sorting(client: Any, login: Any) -> None:
    _, headers = login("agent")
    for i in range(7):
        kind = "enterprise" if i % 2 else "individual"
        assert _create(client, headers, name=f"客户{i:02d}", kind=kind).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/customers", params=params, headers=headers).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"客户{i:02d}" for i in reversed(range(7))]
    enterprises = client.get(
        "/api/v1/customers", params={"kind": "enterprise", "sort": "name"}, headers=headers
    )
    assert [c["name"] for c in enterprises.json()["items"]] == ["客户01", "客户03", "客户05"]
    bad = client.get("/api/v1/customers", params={"sort": "password"}, headers=headers)
    assert bad.status_code == 422
    tampered = client.get("/api/v1/customers", params={"cursor": "!!!"}, headers=headers)
    assert tampered.status_code == 422
    assert tampered.json()["errors"][0]["field"] == "query.cursor"


def test_update_archive_restore_reveal(client: Any, login: Any) -> None:
    _, agent = login("agent")
    _, manager = login("manager")
    _, sales = login("sales")
    cid = _create(client, agent, name="周九", phones=["13912345678"]).json()["id"]
    patched = client.patch(
        f"/api/v1/customers/{cid}", json={"notes": "夜间勿扰", "version": 1}, headers=agent
    )
    assert patched.status_code == 200
    assert patched.json()["notes"] == "夜间勿扰"
    stale = client.patch(
        f"/api/v1/customers/{cid}", json={"notes": "x", "version": 1}, headers=agent
    )
    assert stale.status_code == 409
    assert client.post(f"/api/v1/customers/{cid}/archive", headers=agent).status_code == 403
    assert (
        client.post(f"/api/v1/customers/{cid}/archive", headers=manager).json()["status"]
        == "archived"
    )
    listed = client.get("/api/v1/customers", headers=agent).json()["items"]
    assert cid not in [c["id"] for c in listed]
    assert (
        client.post(f"/api/v1/customers/{cid}/restore", headers=manager).json()["status"]
        == "active"
    )
    revealed = client.post(
        f"/api/v1/customers/{cid}/reveal", json={"field": "phones"}, headers=agent
    )
    assert revealed.json() == {"field": "phones", "values": ["+8613912345678"]}
    # Sales may not reveal; they see a customer in the pool (no owner) but not one another
    # account manager owns.
    assert (
        client.post(
            f"/api/v1/customers/{cid}/reveal", json={"field": "phones"}, headers=sales
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/customers/{cid}", headers=sales).status_code == 200
    other, _ = login("sales")
    given = client.patch(f"/api/v1/customers/{cid}", json={"owner_id": other.id}, headers=manager)
    assert given.status_code == 200
    assert client.get(f"/api/v1/customers/{cid}", headers=sales).status_code == 404


def test_duplicate_waybill_is_409(client: Any, login: Any) -> None:
    _, headers = login("agent")
    cid = _create(client, headers, name="吴十").json()["id"]
    body = {"waybill_no": "GX000000000001", "customer_id": cid, "fee_fen": 800, "weight_g": 1200}
    assert client.post("/api/v1/shipments", json=body, headers=headers).status_code == 201
    dup = client.post(
        "/api/v1/shipments", json={**body, "waybill_no": "gx000000000001"}, headers=headers
    )
    assert dup.status_code == 409
    assert dup.json()["errors"][0]["field"] == "waybill_no"
