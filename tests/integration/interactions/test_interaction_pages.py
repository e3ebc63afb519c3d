"""The due list page, logging a contact from the customer's page, ticking a follow-up."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.interactions import service
from guanxi.interactions.models import ActionItem, Interaction
from guanxi.interactions.schemas import CadenceRuleIn
from tests.conftest import PASSWORD


def _sign_in(client: Any, username: str) -> str:
    client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/customers/new").text)
    assert match
    return match.group(1)


def test_due_list_and_logging_a_contact(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    sales = make_user("sales")
    admin = make_user("admin")
    service.save_rule(db, rule_in=CadenceRuleIn(name="全部客户", every_days=1), actor=admin)
    customer = make_customer(name="待联系客户", owner_id=sales.id)
    with clock.frozen(clock.now() - timedelta(days=2)):
        older = make_customer(name="两天前的客户", owner_id=sales.id)
    db.add(
        ActionItem(
            customer_id=customer.id,
            owner_id=sales.id,
            title="寄送合同",
            due_on=clock.now().date() - timedelta(days=1),
        )
    )
    db.flush()
    csrf = _sign_in(client, sales.username)
    # The customer was created today: with a one-day cadence it is due tomorrow, not today.
    page = client.get("/due", headers={"Accept-Language": "zh-CN"}).text
    assert "待联系客户" not in page.split('id="h-due-items"')[0]
    assert "寄送合同" in page
    listed = page.split('id="due-customers"')[1].split("</table>")[0]
    # Created two days ago with a one-day cadence: due yesterday, one day overdue.
    assert f'href="/customers/{older.id}"' in listed
    assert '<span class="pill warn">1</span>' in listed

    bad = client.post(
        f"/customers/{customer.id}/interactions",
        data={"csrf_token": csrf, "kind": "fax", "summary": ""},
        follow_redirects=False,
    )
    assert bad.headers["location"] == f"/customers/{customer.id}?contact=invalid"
    client.post(
        f"/customers/{customer.id}/interactions",
        data={"csrf_token": csrf, "kind": "call", "summary": "电话确认地址", "outcome": "下周拜访"},
    )
    logged = db.scalars(select(Interaction).where(Interaction.customer_id == customer.id)).all()
    assert [(i.kind, i.summary, i.outcome, i.user_id) for i in logged] == [
        ("call", "电话确认地址", "下周拜访", sales.id)
    ]
    profile = client.get(f"/customers/{customer.id}", headers={"Accept-Language": "zh-CN"}).text
    assert "电话确认地址" in profile.split('id="contact-log"')[1]

    item_id = db.scalar(select(ActionItem.id).where(ActionItem.customer_id == customer.id))
    client.post(f"/action-items/{item_id}/done", data={"csrf_token": csrf})
    db.expire_all()
    assert db.get(ActionItem, item_id).done_at is not None  # type: ignore[union-attr]
    assert "寄送合同" not in client.get("/due").text
