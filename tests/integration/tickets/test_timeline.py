"""The customer's service timeline: contacts, the customer-facing ticket steps (internal
notes kept out) and claims filed, decided and paid, newest first; tickets and claims only
for users who may read tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.interactions.schemas import InteractionCreate
from guanxi.interactions.service import log_interaction
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets import claims, service
from guanxi.tickets.enums import ClaimReason, TicketAction
from guanxi.tickets.schemas import TicketCreate
from guanxi.workspace.timeline import service_timeline

SH = ZoneInfo("Asia/Shanghai")


def _at(hour: int) -> datetime:
    return datetime(2026, 3, 2, hour, tzinfo=SH)


def test_one_timeline(db: Session, make_user: Any, make_customer: Any) -> None:
    agent, manager, sales = make_user("agent"), make_user("manager"), make_user("sales")
    customer = make_customer(name="时间线客户", owner_id=sales.id)
    create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no="SF5500000001", customer_id=customer.id, fee_fen=2000
        ),
        actor=agent,
    )
    with clock.frozen(_at(9)):
        ticket = service.create_ticket(
            db,
            ticket_in=TicketCreate(
                type="complaint",  # type: ignore[arg-type]
                channel="hotline",  # type: ignore[arg-type]
                subject="外箱破损",
                customer_id=customer.id,
                waybill_no="SF5500000001",
            ),
            actor=agent,
        )
        ticket = service.take(db, ticket_id=ticket.id, actor=agent)
    with clock.frozen(_at(10)):
        ticket = service.act(
            db,
            ticket_id=ticket.id,
            action=TicketAction.start,
            actor=agent,
            version=ticket.version,
            note="内部：联系网点",
        )
    with clock.frozen(_at(11)):
        claim = claims.file_claim(
            db,
            waybill_no="SF5500000001",
            reason=ClaimReason.damage,
            requested_fen=3000,
            actor=agent,
            ticket_id=ticket.id,
        )
    with clock.frozen(_at(12)):
        claims.decide(db, claim_id=claim.id, approve=True, actor=manager)
    with clock.frozen(_at(13)):
        ticket = service.act(
            db,
            ticket_id=ticket.id,
            action=TicketAction.resolve,
            actor=agent,
            version=ticket.version,
            note="已按标准赔付",
            reply=True,
        )
    with clock.frozen(_at(14)):
        claims.mark_paid(db, claim_id=claim.id, payout_ref="WX-0001", actor=manager)
    with clock.frozen(_at(15)):
        log_interaction(
            db,
            interaction_in=InteractionCreate(  # type: ignore[call-arg]
                customer_id=customer.id, kind="return_visit", summary="回访：客户满意"
            ),
            actor=agent,
        )
    got = [
        (e.at.astimezone(SH).hour, e.source, e.title, e.text)
        for e in service_timeline(db, customer_id=customer.id, viewer=agent, lang="en")
    ]
    assert got == [
        (15, "contact", "Return visit", "回访：客户满意"),
        (14, "claim", "Paid", f"#{claim.id} ¥30.00"),
        (13, "ticket", "Resolve", f"#{ticket.id} 外箱破损 — 已按标准赔付"),
        (12, "claim", "Approved", f"#{claim.id} ¥30.00"),
        (11, "claim", "Submitted", f"#{claim.id} ¥30.00"),
        (9, "ticket", "Ticket opened", f"#{ticket.id} 外箱破损"),
    ]
    # An account manager without ticket rights sees the contacts only.
    mine = service_timeline(db, customer_id=customer.id, viewer=sales, lang="en")
    assert [e.source for e in mine] == ["contact"]
