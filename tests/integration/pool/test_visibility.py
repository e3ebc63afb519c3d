"""A salesperson sees their own customers and the pool (customers without an owner), not
other people's; they change a pool customer only after claiming it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from guanxi.customers.service import can_see


def test_sales_see_their_own_and_the_pool_in_the_list_and_the_record(
    client: Any, login: Any, make_user: Any, make_customer: Any
) -> None:
    sales, headers = login("sales")
    other = make_user("sales")
    mine = make_customer("我的客户", actor=sales)
    pooled = make_customer("公海客户")
    theirs = make_customer("别人的客户", actor=other)
    listed = client.get("/api/v1/customers", headers=headers).json()["items"]
    assert [c["id"] for c in listed] == [pooled.id, mine.id]
    found = client.get("/api/v1/customers?q=客户", headers=headers).json()["items"]
    assert [c["id"] for c in found] == [pooled.id, mine.id]
    assert client.get(f"/api/v1/customers/{pooled.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/customers/{theirs.id}", headers=headers).status_code == 404
    assert (can_see(sales, mine), can_see(sales, pooled), can_see(sales, theirs)) == (
        True,
        True,
        False,
    )


def test_users_without_the_pipeline_keep_the_old_rule(
    make_user: Any, make_customer: Any, db: Session
) -> None:
    # Every role but sales reads all customers; a role without either sees only its own.
    agent = make_user("agent")
    pooled = make_customer("公海客户")
    assert can_see(agent, pooled) is True


def test_a_pool_customer_is_changed_only_after_claiming_it(
    client: Any, login: Any, make_customer: Any
) -> None:
    _sales, headers = login("sales")
    pooled = make_customer("公海客户")
    edit = client.patch(f"/api/v1/customers/{pooled.id}", json={"notes": "我来跟"}, headers=headers)
    assert edit.status_code == 403
    assert (
        client.get(f"/api/v1/customers/{pooled.id}", headers=headers).json()["customer"]["notes"]
        is None
    )
    claimed = client.post("/api/v1/pool/claim", json={"customer_id": pooled.id}, headers=headers)
    assert claimed.status_code == 201
    edit = client.patch(f"/api/v1/customers/{pooled.id}", json={"notes": "我来跟"}, headers=headers)
    assert edit.status_code == 200, edit.text
    assert edit.json()["notes"] == "我来跟"
