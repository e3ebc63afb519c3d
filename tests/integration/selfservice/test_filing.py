"""Filing a complaint after a lookup: exactly one web-form ticket for the shipment's customer
and waybill, its private link, the proof that must come with the form, the filing limit."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import func, select

from guanxi.audit.models import AuditEntry
from guanxi.notify.models import OutboxEmail
from guanxi.notify.outbox import ADDRESS_FIELD
from guanxi.security.crypto import cipher
from guanxi.selfservice import service
from guanxi.tickets.models import Ticket, TicketEvent
from tests.integration.selfservice.base import (
    WAYBILL,
    file_form,
    file_ticket,
    proof_of,
    track_page,
)


def _tickets(db: Any) -> list[Ticket]:
    return list(db.scalars(select(Ticket).order_by(Ticket.id)))


def test_filing_creates_one_web_form_ticket_with_a_private_link(
    client: Any, db: Any, shipment: Any, customer: Any
) -> None:
    token = file_ticket(client, digits="8000", type="service_request", email="li.si@example.cn")
    [ticket] = _tickets(db)
    assert (ticket.type, ticket.channel, ticket.customer_id, ticket.waybill_no) == (
        "service_request",
        "web_form",
        customer.id,
        WAYBILL,
    )
    assert (ticket.category, ticket.status, ticket.created_by) == ("delay.transit", "new", None)
    assert ticket.subject == "快件在杭州转运中心停了三天，一直没有更新。"
    assert ticket.description == "快件在杭州转运中心停了三天，一直没有更新。"
    # Only the secret's hash is stored; the secret is derived from id and creation time.
    assert ticket.public_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token == service.public_token("test-secret", ticket)
    [event] = db.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    assert (event.action, event.actor_id) == ("create", None)
    audit = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ticket.created", AuditEntry.target_id == str(ticket.id)
        )
    ).one()
    assert (audit.actor_id, audit.actor_name) == (None, "self-service")
    # The link goes to the address given in the form, once.
    [mail] = db.scalars(select(OutboxEmail))
    assert mail.key == f"selfservice-filed:{ticket.id}"
    assert cipher().decrypt(ADDRESS_FIELD, mail.to_enc) == "li.si@example.cn"
    assert (
        mail.subject == f"我们已收到您的工单 #{ticket.id} / We received your request #{ticket.id}"
    )
    assert f"http://127.0.0.1:8000/s/{token}" in mail.body
    assert "SF12****7890" in mail.body
    assert WAYBILL not in mail.body
    # The confirmation page is the ticket's private page, with the link to keep.
    page = client.get(f"/s/{token}?filed=1", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert f"We received your request #{ticket.id}." in page.text
    assert f'id="private-link">http://testserver/s/{token}</p>' in page.text


def test_without_an_email_nothing_is_mailed(client: Any, db: Any, shipment: Any) -> None:
    file_ticket(client)
    assert len(_tickets(db)) == 1
    assert db.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_the_form_needs_the_proof_and_its_cookie(client: Any, db: Any, shipment: Any) -> None:
    page = track_page(client, WAYBILL, "5678")
    proof = proof_of(page.text)
    # Another browser with a copy of the form: no cookie, refused.
    client.cookies.clear()
    refused = file_form(client, proof)
    assert refused.status_code == 403
    assert "查询已过期，请重新查询运单。" in refused.text
    # A forged or altered proof.
    page = track_page(client, WAYBILL, "5678")
    assert file_form(client, proof_of(page.text)[:-2] + "xx").status_code == 403
    assert file_form(client, "").status_code == 403
    assert _tickets(db) == []
    assert service.read_proof("test-secret", proof=proof, browser="x", max_age_seconds=60) is None


def test_a_proof_expires(client: Any, db: Any, shipment: Any) -> None:
    proof, browser = service.issue_proof("test-secret", shipment_id=shipment.id, waybill_no=WAYBILL)
    good = service.read_proof("test-secret", proof=proof, browser=browser, max_age_seconds=60)
    assert good == service.Proof(shipment.id, WAYBILL)
    assert service.read_proof("other-key", proof=proof, browser=browser, max_age_seconds=60) is None
    assert (
        service.read_proof("test-secret", proof=proof, browser=browser, max_age_seconds=-1) is None
    )


def test_invalid_fields_are_named_and_nothing_is_filed(client: Any, db: Any, shipment: Any) -> None:
    page = track_page(client, WAYBILL, "5678")
    proof = proof_of(page.text)
    resp = client.post(
        "/track/file",
        data={
            "proof": proof,
            "type": "claim",
            "category": "nonsense",
            "description": "短",
            "email": "x@",
        },
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 422
    for message in (
        "Choose what you need",
        "Describe what happened (5 to 5000 characters)",
        "Not a valid e-mail address",
    ):
        assert message in resp.text
    unknown_category = file_form(client, proof, category="nonsense")
    assert unknown_category.status_code == 422
    assert "请从列表中选择问题类别" in unknown_category.text
    assert _tickets(db) == []
    # The tracking is shown again beside the form, still masked.
    assert 'id="s-sender">张**<' in resp.text
    assert "张三丰" not in resp.text


def test_one_filing_per_lookup(client: Any, db: Any, shipment: Any) -> None:
    page = track_page(client, WAYBILL, "5678")
    proof = proof_of(page.text)
    assert file_form(client, proof).status_code == 303
    # Sent twice (a double tap, the back button): the cookie is spent, nothing more filed.
    assert file_form(client, proof).status_code == 403
    assert len(_tickets(db)) == 1


def test_filing_is_limited_per_address(client: Any, db: Any, shipment: Any) -> None:
    def lookup_and_file() -> Any:
        return file_form(client, proof_of(track_page(client, WAYBILL, "5678").text))

    codes = [lookup_and_file().status_code for _ in range(6)]
    assert codes == [303] * 5 + [429]
    assert len(_tickets(db)) == 5
    refused = lookup_and_file()
    assert refused.status_code == 429
    assert 3540 <= int(refused.headers["retry-after"]) <= 3600
    assert re.search(r"尝试次数过多，请 (59|60) 分钟后再试。", refused.text)
