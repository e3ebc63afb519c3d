"""The service desk pages: queues, the new-ticket form with field errors, the ticket page
with take, workflow buttons, replies, hand-over, and refusals shown in the user's language."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.tickets.models import Ticket
from tests.conftest import PASSWORD


def _sign_in(client: Any, username: str) -> str:
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    page = client.get("/tickets/new")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _version(client: Any, ticket_id: int) -> str:
    match = re.search(r'name="version" value="(\d+)"', client.get(f"/tickets/{ticket_id}").text)
    assert match
    return match.group(1)


def test_agent_works_a_ticket_in_the_browser(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent", display_name="客服 李娜")
    colleague = make_user("agent", display_name="理赔 王强")
    customer = make_customer(name="投诉人张三")
    csrf = _sign_in(client, agent.username)
    zh = {"Accept-Language": "zh-CN"}

    bad = client.post(
        "/tickets",
        data={"csrf_token": csrf, "type": "complaint", "channel": "hotline", "subject": ""},
        headers=zh,
    )
    assert bad.status_code == 422
    assert 'id="e-subject"' in bad.text

    resp = client.post(
        "/tickets",
        data={
            "csrf_token": csrf,
            "type": "complaint",
            "channel": "hotline",
            "severity": "major",
            "customer_id": str(customer.id),
            "subject": "快件三天未更新",
            "description": "客户来电",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    ticket_id = int(resp.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/tickets/{ticket_id}", headers=zh)
    assert "受理此工单" in page.text
    assert (
        client.get("/tickets?view=unassigned", headers=zh).text.count(
            f'href="/tickets/{ticket_id}"'
        )
        == 2
    )

    client.post(f"/tickets/{ticket_id}/take", data={"csrf_token": csrf})
    version = _version(client, ticket_id)
    client.post(
        f"/tickets/{ticket_id}/act",
        data={
            "csrf_token": csrf,
            "version": version,
            "action": "start",
            "note": "已联系网点",
            "reply": "1",
        },
    )
    # A step the workflow does not allow: the page says why, in Chinese.
    version = _version(client, ticket_id)
    refused = client.post(
        f"/tickets/{ticket_id}/act",
        data={"csrf_token": csrf, "version": version, "action": "close"},
        headers=zh,
    )
    assert "工单当前状态为 in_progress，不能执行此操作" in refused.text
    client.post(
        f"/tickets/{ticket_id}/hand-over",
        data={"csrf_token": csrf, "to_user_id": str(colleague.id), "reason": "转理赔"},
    )
    db.expire_all()
    ticket = db.scalar(select(Ticket).where(Ticket.id == ticket_id))
    assert ticket is not None
    assert (ticket.status, ticket.owner_id, ticket.first_owner_id) == (
        "in_progress",
        colleague.id,
        agent.id,
    )
    assert ticket.first_response_at is not None
    page = client.get(f"/tickets/{ticket_id}", headers={"Accept-Language": "en"})
    assert "Handed over" in page.text
    assert "理赔 王强" in page.text
    assert "转理赔" in page.text
    # No longer the owner: no workflow buttons for the former owner.
    assert 'id="act-form"' not in page.text
    mine = client.get("/tickets?view=mine").text
    assert f'href="/tickets/{ticket_id}"' not in mine


def test_pages_need_ticket_permissions(client: Any, make_user: Any) -> None:
    sales = make_user("sales")
    client.post("/login", data={"username": sales.username, "password": PASSWORD, "next": "/"})
    assert client.get("/tickets").status_code == 403
    assert client.get("/tickets/new").status_code == 403


def test_resolve_with_codes_and_record_an_unhappy_answer(
    client: Any, db: Session, make_user: Any
) -> None:
    agent = make_user("agent")
    csrf = _sign_in(client, agent.username)
    resp = client.post(
        "/tickets",
        data={"csrf_token": csrf, "type": "complaint", "channel": "wechat", "subject": "少件"},
        follow_redirects=False,
    )
    ticket_id = int(resp.headers["location"].rsplit("/", 1)[1])
    client.post(f"/tickets/{ticket_id}/take", data={"csrf_token": csrf})
    for action in ("start", "resolve"):
        client.post(
            f"/tickets/{ticket_id}/act",
            data={
                "csrf_token": csrf,
                "version": _version(client, ticket_id),
                "action": action,
                "resolution_code": "refunded",
                "root_cause": "漏装",
            },
        )
    page = client.get(f"/tickets/{ticket_id}", headers={"Accept-Language": "zh-CN"})
    # The answer the customer gives on the phone goes into the survey (surveys/).
    assert f'id="survey-enter" href="/surveys/enter?ticket_id={ticket_id}"' in page.text
    old_form = client.post(
        f"/tickets/{ticket_id}/satisfaction",
        data={"csrf_token": csrf, "score": "1", "comment": "不满意"},
        follow_redirects=False,
    )
    assert old_form.headers["location"] == f"/surveys/enter?ticket_id={ticket_id}"
    db.expire_all()
    ticket = db.get(Ticket, ticket_id)
    assert ticket is not None
    assert (ticket.status, ticket.satisfaction, ticket.resolution_code, ticket.root_cause) == (
        "resolved",
        None,
        "refunded",
        "漏装",
    )


def test_customer_page_shows_open_tickets_and_contact_log(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    from guanxi.interactions.schemas import InteractionCreate
    from guanxi.interactions.service import log_interaction
    from guanxi.tickets.schemas import TicketCreate
    from guanxi.tickets.service import create_ticket

    agent = make_user("agent")
    customer = make_customer(name="面板客户")
    ticket = create_ticket(
        db,
        ticket_in=TicketCreate(
            type="complaint", channel="hotline", subject="面板投诉", customer_id=customer.id
        ),  # type: ignore[arg-type]
        actor=agent,
    )
    log_interaction(
        db,
        interaction_in=InteractionCreate(customer_id=customer.id, kind="call", summary="电话致歉"),  # type: ignore[arg-type]
        actor=agent,
    )
    _sign_in(client, agent.username)
    page = client.get(f"/customers/{customer.id}", headers={"Accept-Language": "zh-CN"}).text
    panel = page.split('id="open-tickets"')[1].split("</ul>")[0]
    assert f'href="/tickets/{ticket.id}"' in panel
    assert "面板投诉" in panel
    log = page.split('id="contact-log"')[1].split("</ol>")[0]
    # One timeline: the call and the ticket's opening, newest first.
    items = re.findall(r"<strong>([^<]+)</strong> · (?:<a href=\"[^\"]+\">)?([^<]+)", log)
    assert items == [("电话", "电话致歉"), ("创建工单", f"#{ticket.id} 面板投诉")]
    assert f'href="/tickets/new?customer_id={customer.id}"' in page


def test_caller_lookup_finds_customer_and_waybills(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    from guanxi.shipments.schemas import ShipmentCreate
    from guanxi.shipments.service import create_shipment

    agent = make_user("agent")
    customer = make_customer(name="来电客户", phones=["13912340000"])
    create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="SFCALL000001", customer_id=customer.id, fee_fen=1000
        ),
        actor=agent,
    )
    csrf = _sign_in(client, agent.username)
    found = client.post(
        "/tickets/caller", data={"csrf_token": csrf, "caller_phone": "139 1234 0000"}
    )
    assert f'href="/tickets/new?customer_id={customer.id}"' in found.text
    assert f"/tickets/new?customer_id={customer.id}&amp;waybill_no=SFCALL000001" in found.text
    none = client.post(
        "/tickets/caller",
        data={"csrf_token": csrf, "caller_phone": "13800000001"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert "没有客户使用这个号码" in none.text
    form = client.get(f"/tickets/new?customer_id={customer.id}&waybill_no=SFCALL000001").text
    assert 'value="SFCALL000001"' in form
