"""Demo service desk: tickets about real demo waybills, opened over the last three days
and worked to different points (new, taken, waiting on the customer, resolved, closed,
one reopened), plus a few compensation claims — so queues, countdowns, breaches and the
claims page have something to show. Everything goes through the services (routing, SLA
moments, timeline, audit), with the clock set back to when each step happened."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.security.models import User
from guanxi.shipments.models import Shipment
from guanxi.tickets import claims, service
from guanxi.tickets.enums import ClaimReason, Severity, TicketAction, TicketChannel, TicketType
from guanxi.tickets.models import Ticket
from guanxi.tickets.schemas import TicketCreate

# (type, category, subject, severity, claim reason when a claim follows)
CASES: list[tuple[TicketType, str, str, Severity, ClaimReason | None]] = [
    (TicketType.complaint, "delay.transit", "快件三天未更新物流", Severity.major, None),
    (TicketType.complaint, "delay.delivery", "承诺次日达，第三天才派送", Severity.minor, None),
    (TicketType.complaint, "damage.contents", "收到时内件破损", Severity.major, ClaimReason.damage),
    (TicketType.complaint, "damage.package", "外包装压坏", Severity.minor, None),
    (TicketType.claim, "loss.whole", "快件丢失，申请赔偿", Severity.critical, ClaimReason.loss),
    (TicketType.complaint, "loss.partial", "内件短少一件", Severity.major, ClaimReason.shortage),
    (TicketType.complaint, "delivery.fake_sign", "显示已签收但未收到", Severity.major, None),
    (TicketType.complaint, "delivery.not_to_door", "快递员未送货上门", Severity.minor, None),
    (TicketType.complaint, "service_attitude", "快递员态度差", Severity.minor, None),
    (TicketType.inquiry, "price", "保价费用怎么算", Severity.minor, None),
    (TicketType.service_request, "pickup.missed", "预约上门取件未到", Severity.minor, None),
    (TicketType.inquiry, "other", "能否修改收件地址", Severity.minor, None),
]
CHANNELS = [
    TicketChannel.hotline,
    TicketChannel.hotline,
    TicketChannel.online_chat,
    TicketChannel.wechat,
    TicketChannel.web_form,
    TicketChannel.outlet,
]


@contextmanager
def _at(moment: datetime) -> Iterator[None]:
    with clock.frozen(moment):
        yield


def seed_desk(session: Session, *, seed: int = 7, count: int = 40) -> int:
    """Open ``count`` demo tickets (once: nothing happens if tickets exist); returns how
    many were opened."""
    if session.scalar(select(func.count()).select_from(Ticket)):
        return 0
    users = {u.username: u for u in session.scalars(select(User))}
    agents = [users[n] for n in ("agent", "agent2") if n in users]
    manager = users.get("manager")
    if not agents or manager is None:
        return 0
    rng = random.Random(seed)
    total = session.scalar(select(func.count()).select_from(Shipment)) or 0
    if total == 0:
        return 0
    offsets = sorted(rng.sample(range(total), min(count, total)))
    waybills = [
        session.execute(
            select(Shipment.waybill_no, Shipment.customer_id)
            .order_by(Shipment.id)
            .offset(o)
            .limit(1)
        ).one()
        for o in offsets
    ]
    start = clock.now() - timedelta(days=3)
    opened = 0
    for n, (waybill, customer_id) in enumerate(waybills):
        type_, category, subject, severity, reason = CASES[n % len(CASES)]
        created = start + timedelta(minutes=rng.randint(0, 3 * 24 * 60 - 120))
        with _at(created):
            ticket = service.create_ticket(
                session,
                ticket_in=TicketCreate(
                    type=type_,
                    channel=rng.choice(CHANNELS),
                    customer_id=customer_id,
                    waybill_no=waybill,
                    category=category,
                    severity=severity,
                    subject=subject,
                    description=f"客户反映：{subject}。",
                ),
                actor=manager,
            )
        opened += 1
        _work(session, ticket, created, n, rng, agents, reason)
    return opened


def _work(
    session: Session,
    ticket: Ticket,
    created: datetime,
    n: int,
    rng: random.Random,
    agents: list[User],
    reason: ClaimReason | None,
) -> None:
    """Move the ticket as far as its place in the demo says: a fifth stay untouched."""
    stage = n % 5
    if stage == 0:
        return
    moment = created + timedelta(minutes=rng.randint(10, 90))
    if moment > clock.now():
        return
    owner = next((a for a in agents if a.id == ticket.owner_id), None)
    with _at(moment):
        if owner is None:
            owner = agents[n % len(agents)]
            ticket = service.take(session, ticket_id=ticket.id, actor=owner)
        ticket = service.act(
            session,
            ticket_id=ticket.id,
            action=TicketAction.start,
            actor=owner,
            version=ticket.version,
            note="您好，已收到您的反馈，正在联系网点核实。",
            reply=True,
        )
    if reason is not None and ticket.waybill_no:
        with _at(moment + timedelta(minutes=5)):
            claims.file_claim(
                session,
                waybill_no=ticket.waybill_no,
                reason=reason,
                requested_fen=rng.choice([5_000, 12_000, 30_000]),
                actor=owner,
                ticket_id=ticket.id,
                evidence="客户提供了签收照片。",
            )
    later = moment + timedelta(hours=rng.randint(2, 20))
    if stage == 1 or later > clock.now():
        return
    with _at(later):
        if stage == 2:
            service.act(
                session,
                ticket_id=ticket.id,
                action=TicketAction.wait_customer,
                actor=owner,
                version=ticket.version,
                note="请提供收件时的外包装照片。",
                reply=True,
            )
            return
        ticket = service.act(
            session,
            ticket_id=ticket.id,
            action=TicketAction.resolve,
            actor=owner,
            version=ticket.version,
            note="网点已重新派送，并向您致歉。",
            reply=True,
            resolution_code="redelivered",
            root_cause="网点积压",
        )
        if stage == 4:
            ticket = service.record_satisfaction(
                session, ticket_id=ticket.id, score=5, actor=owner, comment="满意"
            )
            service.act(
                session,
                ticket_id=ticket.id,
                action=TicketAction.close,
                actor=owner,
                version=ticket.version,
            )
