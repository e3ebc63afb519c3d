"""The customer's private ticket page: customer-visible replies only, messages that reach the
owner, the link to the satisfaction survey once resolved, wrong links, and the resolution
mail."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from guanxi.notify.models import Notification, OutboxEmail
from guanxi.notify.outbox import ADDRESS_FIELD
from guanxi.security.crypto import cipher
from guanxi.selfservice import service
from guanxi.tickets import service as tickets
from guanxi.tickets.enums import TicketAction
from guanxi.tickets.models import Ticket, TicketEvent
from guanxi.tickets.schemas import TicketCreate
from tests.integration.selfservice.base import WAYBILL, file_ticket

EN = {"Accept-Language": "en"}
INTERNAL = "内部备注：司机称已送达，待核实"
REPLY = "已联系转运中心，明天优先派送。"


def _ticket(db: Any) -> Ticket:
    ticket = db.scalars(select(Ticket)).one()
    db.refresh(ticket)
    return ticket


def _work(
    db: Any, agent: Any, ticket_id: int, *steps: tuple[TicketAction, str | None, bool]
) -> Any:
    """Take the ticket (if nobody has) and run the workflow steps (action, note, reply)."""
    ticket = tickets.get_ticket(db, ticket_id)
    if ticket.owner_id is None:
        ticket = tickets.take(db, ticket_id=ticket_id, actor=agent)
    for action, note, reply in steps:
        ticket = tickets.act(
            db,
            ticket_id=ticket_id,
            action=action,
            actor=agent,
            version=ticket.version,
            note=note,
            reply=reply,
        )
    return ticket


def test_the_page_shows_status_and_only_customer_visible_replies(
    client: Any, db: Any, agent: Any, shipment: Any
) -> None:
    token = file_ticket(client)
    ticket = _ticket(db)
    page = client.get(f"/s/{token}", headers=EN)
    assert page.status_code == 200
    assert 'id="ticket-status">Received: waiting for a customer service agent<' in page.text
    assert 'id="ticket-waybill">SF12****7890<' in page.text
    assert WAYBILL not in page.text
    assert "No replies yet. We will answer here." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"] == "noindex, nofollow"

    _work(
        db,
        agent,
        ticket.id,
        (TicketAction.start, INTERNAL, False),
        (TicketAction.wait_third_party, REPLY, True),
    )
    page = client.get(f"/s/{token}", headers=EN)
    assert REPLY in page.text
    assert INTERNAL not in page.text
    assert agent.display_name not in page.text
    assert agent.username not in page.text
    assert 'id="ticket-status">We are checking with the delivery network<' in page.text
    read = service.view(db, token=token)
    assert [(r.from_customer, r.text) for r in read.replies] == [(False, REPLY)]
    zh = client.get(f"/s/{token}", headers={"Accept-Language": "zh-CN"})
    assert 'id="ticket-status">正在与网点核实<' in zh.text
    # The language switch on the page keeps the customer on their ticket.
    switched = client.get(f"/s/{token}?lang=zh_CN", headers=EN)
    assert 'id="ticket-status">正在与网点核实<' in switched.text
    assert switched.cookies.get("guanxi_lang") == "zh_CN"


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,  # the right shape, no ticket
        "short",
        "x" * 300,
        "%2e%2e",
    ],
)
def test_a_wrong_link_is_404(client: Any, shipment: Any, token: str) -> None:
    file_ticket(client)
    for resp in (
        client.get(f"/s/{token}", headers=EN),
        client.post(f"/s/{token}/message", data={"message": "hi"}, headers=EN),
    ):
        assert resp.status_code == 404
        assert "This link does not open any request." in resp.text
    for resp in (
        client.get(f"/s/{token}/survey", headers=EN),
        client.post(f"/s/{token}/survey", data={"q_csat": "1"}, headers=EN),
    ):
        assert resp.status_code == 404
        assert "This link does not work" in resp.text


def test_every_ticket_has_its_link_from_the_start(db: Any, client: Any, agent: Any) -> None:
    ticket = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(type="inquiry", channel="hotline", subject="咨询"),  # type: ignore[arg-type]
        actor=agent,
    )
    token = service.public_token("test-secret", ticket)
    assert ticket.public_token_hash == service.token_hash(token)
    assert client.get(f"/s/{token}").status_code == 200
    # A link made with another secret opens nothing.
    assert client.get(f"/s/{service.public_token('other', ticket)}").status_code == 404


def test_a_customer_message_reaches_the_owner(
    client: Any, db: Any, agent: Any, shipment: Any
) -> None:
    token = file_ticket(client)
    ticket = _ticket(db)
    _work(db, agent, ticket.id)
    resp = client.post(
        f"/s/{token}/message", data={"message": "  请尽快送到，谢谢。  "}, follow_redirects=False
    )
    assert (resp.status_code, resp.headers["location"]) == (303, f"/s/{token}#replies")
    event = db.scalars(select(TicketEvent).where(TicketEvent.action == "customer_message")).one()
    assert (event.ticket_id, event.note, event.internal, event.actor_id) == (
        ticket.id,
        "请尽快送到，谢谢。",
        False,
        None,
    )
    [note] = db.scalars(select(Notification).where(Notification.kind == "ticket_customer_message"))
    assert (note.user_id, note.key, note.link) == (
        agent.id,
        f"customer-message:{event.id}",
        f"/tickets/{ticket.id}",
    )
    page = client.get(f"/s/{token}", headers=EN)
    assert '<li class="mine"><span class="who">You · ' in page.text
    assert "请尽快送到，谢谢。" in page.text
    # An empty message is refused, naming the field; nothing recorded.
    empty = client.post(f"/s/{token}/message", data={"message": "   "}, headers=EN)
    assert empty.status_code == 422
    assert "Write a message (up to 5000 characters)" in empty.text
    assert (
        db.scalar(select(TicketEvent.id).where(TicketEvent.action == "customer_message").offset(1))
        is None
    )


def test_once_resolved_the_page_offers_the_survey(
    client: Any, db: Any, agent: Any, shipment: Any
) -> None:
    token = file_ticket(client)
    ticket_id = _ticket(db).id
    page = client.get(f"/s/{token}", headers=EN)
    assert 'id="survey-link"' not in page.text  # not before it is resolved
    assert client.get(f"/s/{token}/survey", headers=EN).status_code == 404

    _work(
        db, agent, ticket_id, (TicketAction.start, None, False), (TicketAction.resolve, REPLY, True)
    )
    page = client.get(f"/s/{token}", headers=EN)
    assert f'id="survey-link" href="/s/{token}/survey"' in page.text
    survey = client.get(f"/s/{token}/survey", headers=EN)
    assert survey.status_code == 200
    assert "After a ticket" in survey.text
    bad = client.post(f"/s/{token}/survey", data={"q_csat": "11", "q_nps": "5"}, headers=EN)
    assert bad.status_code == 422
    assert "choose a score from 1 to 10" in bad.text
    resp = client.post(
        f"/s/{token}/survey",
        data={"q_csat": "3", "q_nps": "2", "q_nps_reason": "还是没收到"},
        follow_redirects=False,
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/q/done/thanks?followup=1")
    # The ticket stays resolved with the CSAT answer (1-10); the survey's follow-up ticket
    # takes the complaint further.
    db.expire_all()
    ticket = db.get(Ticket, ticket_id)
    assert (ticket.status, ticket.satisfaction, ticket.reopened) == ("resolved", 3, 0)
    last = db.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert (last.action, last.note, last.actor_id) == ("unsatisfied", "还是没收到", None)
    follow_up = db.scalars(select(Ticket).where(Ticket.id != ticket.id)).one()
    assert (follow_up.category, follow_up.customer_id) == (
        "return_visit.survey",
        ticket.customer_id,
    )
    page = client.get(f"/s/{token}", headers=EN)
    assert 'id="survey-link"' not in page.text
    assert 'id="ticket-rating">3 / 10<' in page.text
    twice = client.post(f"/s/{token}/survey", data={"q_csat": "9", "q_nps": "9"}, headers=EN)
    assert twice.status_code == 409
    assert "You have already answered" in twice.text
    db.expire_all()
    assert db.get(Ticket, ticket_id).satisfaction == 3


def test_a_closed_ticket_takes_no_messages(client: Any, db: Any, agent: Any, shipment: Any) -> None:
    token = file_ticket(client)
    ticket = _ticket(db)
    _work(
        db,
        agent,
        ticket.id,
        (TicketAction.start, None, False),
        (TicketAction.resolve, REPLY, True),
        (TicketAction.close, None, False),
    )
    page = client.get(f"/s/{token}", headers=EN)
    assert 'id="ticket-status">Closed<' in page.text
    assert 'id="message-form"' not in page.text
    refused = client.post(f"/s/{token}/message", data={"message": "还有问题"}, headers=EN)
    assert refused.status_code == 409
    assert "This request is closed." in refused.text


# --------------------------------------------------------------------------- resolution mail


def test_the_resolution_mail_is_queued_once_with_the_link(
    client: Any, db: Any, agent: Any, shipment: Any
) -> None:
    token = file_ticket(client, email="receiver@example.cn")
    ticket = _ticket(db)
    _work(
        db,
        agent,
        ticket.id,
        (TicketAction.start, INTERNAL, False),
        (TicketAction.resolve, REPLY, True),
    )
    [mail] = db.scalars(select(OutboxEmail).where(OutboxEmail.key.like("selfservice-resolved%")))
    assert mail.key == f"selfservice-resolved:{ticket.id}:0"
    # It carries the survey link too (the customer is also invited by SMS).
    assert mail.body.count("http://127.0.0.1:8000/q/") == 2
    # The address given with the complaint, not the customer of record's (the one who
    # filed may be the receiver).
    assert cipher().decrypt(ADDRESS_FIELD, mail.to_enc) == "receiver@example.cn"
    assert (
        mail.subject
        == f"您的工单 #{ticket.id} 已处理 / Your request #{ticket.id} has been resolved"
    )
    link = f"http://127.0.0.1:8000/s/{token}"
    assert mail.body.count(link) == 2  # once in Chinese, once in English
    assert mail.body.count(REPLY) == 2
    assert INTERNAL not in mail.body
    assert WAYBILL not in mail.body
    # The hook running again (a retry) queues nothing more.
    service.mail_resolution(db, _ticket(db))
    mails = select(OutboxEmail.key).where(OutboxEmail.channel == "email")
    assert len(list(db.scalars(mails))) == 2  # confirmation + resolution
    # Reopened, resolved again: a second mail for the second resolution.
    _work(
        db,
        agent,
        ticket.id,
        (TicketAction.reopen, None, False),
        (TicketAction.resolve, "已重新派送。", True),
    )
    keys = sorted(db.scalars(mails))
    assert keys == [
        f"selfservice-filed:{ticket.id}",
        f"selfservice-resolved:{ticket.id}:0",
        f"selfservice-resolved:{ticket.id}:1",
    ]


def test_a_web_form_ticket_without_an_address_gets_no_mail(
    client: Any, db: Any, agent: Any, shipment: Any
) -> None:
    file_ticket(client)
    ticket = _ticket(db)
    _work(
        db, agent, ticket.id, (TicketAction.start, None, False), (TicketAction.resolve, REPLY, True)
    )
    # No mail (the survey invitation goes by SMS to the customer of record's mobile).
    assert list(db.scalars(select(OutboxEmail).where(OutboxEmail.channel == "email"))) == []


def test_a_hotline_ticket_gets_its_link_by_mail(
    db: Any, client: Any, agent: Any, customer: Any, make_customer: Any
) -> None:
    ticket = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(
            type="complaint",  # type: ignore[arg-type]
            channel="hotline",  # type: ignore[arg-type]
            subject="电话投诉",
            description="客户来电，语气激动（内部记录）",
            customer_id=customer.id,
        ),
        actor=agent,
    )
    _work(
        db, agent, ticket.id, (TicketAction.start, None, False), (TicketAction.resolve, REPLY, True)
    )
    token = service.public_token("test-secret", ticket)
    assert _ticket(db).public_token_hash == hashlib.sha256(token.encode()).hexdigest()
    page = client.get(f"/s/{token}", headers=EN)
    assert page.status_code == 200
    assert REPLY in page.text
    assert "客户来电" not in page.text  # an agent's description is not the customer's words
    [mail] = db.scalars(select(OutboxEmail).where(OutboxEmail.channel == "email"))
    assert f"http://127.0.0.1:8000/s/{token}" in mail.body
    # A customer without an e-mail address gets no mail.
    other = make_customer(name="王五")
    second = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(
            type="inquiry",
            channel="hotline",
            subject="咨询",
            customer_id=other.id,  # type: ignore[arg-type]
        ),
        actor=agent,
    )
    _work(
        db, agent, second.id, (TicketAction.start, None, False), (TicketAction.resolve, REPLY, True)
    )
    assert len(list(db.scalars(select(OutboxEmail).where(OutboxEmail.channel == "email")))) == 1
