"""The contact log: interactions with action items, cadence rules and the due list per
account owner, and the return visit booked when a complaint closes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.interactions import service
from guanxi.interactions.schemas import CadenceRuleIn, InteractionCreate
from guanxi.tickets import service as tickets
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.schemas import TicketCreate

SH = ZoneInfo("Asia/Shanghai")


def test_cadence_and_due_list(db: Session, make_user: Any, make_customer: Any) -> None:
    sales = make_user("sales")
    admin = make_user("admin")
    service.save_rule(db, rule_in=CadenceRuleIn(name="普通客户", every_days=30), actor=admin)
    service.save_rule(
        db, rule_in=CadenceRuleIn(name="重要客户", tag="VIP", every_days=14), actor=admin
    )
    with clock.frozen(datetime(2026, 3, 1, 2, tzinfo=UTC)):
        vip = make_customer(name="重要客户甲", owner_id=sales.id, tags=["VIP"])
        plain = make_customer(name="普通客户乙", owner_id=sales.id)
        make_customer(name="别人的客户", owner_id=admin.id, tags=["VIP"])
    with clock.frozen(datetime(2026, 3, 10, 2, tzinfo=UTC)):
        service.log_interaction(
            db,
            interaction_in=InteractionCreate(
                customer_id=plain.id,
                kind="visit",  # type: ignore[arg-type]
                summary="上门拜访，谈月结",
                action_items=[{"title": "发报价单", "due_on": date(2026, 3, 12)}],  # type: ignore[list-item]
            ),
            actor=sales,
        )
    due = service.due_contacts(db, owner_id=sales.id, today=date(2026, 3, 20))
    # VIP: 14 days since 1 March -> due 15 March; the visited one is due 9 April.
    assert [(d.customer_id, d.every_days, d.due_on, d.overdue_days) for d in due] == [
        (vip.id, 14, date(2026, 3, 15), 5)
    ]
    later = service.due_contacts(db, owner_id=sales.id, today=date(2026, 4, 10))
    assert [(d.customer_id, d.overdue_days) for d in later] == [(vip.id, 26), (plain.id, 1)]
    items = service.due_items(db, owner_id=sales.id, until=date(2026, 3, 20))
    assert [(i.title, i.due_on, i.customer_id) for i in items] == [
        ("发报价单", date(2026, 3, 12), plain.id)
    ]
    service.complete_item(db, item_id=items[0].id, actor=sales)
    assert service.due_items(db, owner_id=sales.id, until=date(2026, 3, 20)) == []
    # A rule changed by tag replaces the old one.
    service.save_rule(
        db, rule_in=CadenceRuleIn(name="重要客户", tag="VIP", every_days=30), actor=admin
    )
    assert service.due_contacts(db, owner_id=sales.id, today=date(2026, 3, 20)) == []


def test_a_closed_complaint_books_a_return_visit(
    db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="投诉后回访")
    ticket = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(
            type="complaint", channel="hotline", subject="派送延误", customer_id=customer.id
        ),  # type: ignore[arg-type]
        actor=agent,
    )
    ticket = tickets.take(db, ticket_id=ticket.id, actor=agent)
    for action in (TicketAction.start, TicketAction.resolve):
        ticket = tickets.act(
            db, ticket_id=ticket.id, action=action, actor=agent, version=ticket.version
        )
    # Closed on Friday 13 February 2026: three working days on are Saturday 14 (worked in
    # lieu), Tuesday 24 and Wednesday 25 (the Spring Festival lies between).
    with clock.frozen(datetime(2026, 2, 13, 10, tzinfo=SH)):
        ticket = tickets.act(
            db, ticket_id=ticket.id, action=TicketAction.close, actor=agent, version=ticket.version
        )
    items = service.due_items(db, owner_id=agent.id, until=date(2026, 3, 1))
    assert [(i.ticket_id, i.due_on, i.title) for i in items] == [
        (ticket.id, date(2026, 2, 25), "派送延误")
    ]
    # The return visit itself completes the follow-up.
    service.log_interaction(
        db,
        interaction_in=InteractionCreate(
            customer_id=customer.id,
            kind="return_visit",
            summary="客户表示满意",
            ticket_id=ticket.id,  # type: ignore[arg-type]
        ),
        actor=agent,
    )
    assert service.due_items(db, owner_id=agent.id, until=date(2026, 3, 1)) == []
    assert [i.kind for i in service.history(db, customer_id=customer.id, viewer=agent)] == [
        "return_visit"
    ]


def test_interactions_api(client: Any, login: Any, make_customer: Any) -> None:
    user, headers = login("agent")
    customer = make_customer(name="接口沟通")
    resp = client.post(
        "/api/v1/interactions",
        json={"customer_id": customer.id, "kind": "call", "summary": "来电咨询运费"},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    listed = client.get(f"/api/v1/customers/{customer.id}/interactions", headers=headers).json()
    assert [i["summary"] for i in listed] == ["来电咨询运费"]
    bad = client.post(
        "/api/v1/interactions",
        json={"customer_id": customer.id, "kind": "fax", "summary": ""},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"kind", "summary"}
    unknown = client.post(
        "/api/v1/interactions",
        json={
            "customer_id": customer.id,
            "kind": "call",
            "summary": "约定回电",
            "ticket_id": 999_999,
            "action_items": [{"title": "回电", "due_on": "2026-12-01", "owner_id": 999_999}],
        },
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert unknown.status_code == 422
    assert [(e["field"], e["message"]) for e in unknown.json()["errors"]] == [
        ("ticket_id", "没有这个工单"),
        ("action_items.0.owner_id", "指定的客户经理不存在"),
    ]
    assert client.get("/api/v1/due", headers=headers).json() == {"contacts": [], "items": []}
    assert (
        client.put(
            "/api/v1/cadence-rules", json={"name": "x", "every_days": 7}, headers=headers
        ).status_code
        == 403
    )
