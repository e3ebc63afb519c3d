"""Demo data-subject requests: a few requests in every state, registered by the agents
over the last weeks and worked by the privacy officer (``dpo``) — one overdue, one due in
a few working days, an export made, a correction applied, one rejected — through the
service functions, so each has its audit trail."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.customers.enums import CustomerKind, CustomerStatus
from guanxi.customers.models import Customer
from guanxi.customers.schemas import CustomerUpdate
from guanxi.privacy import service
from guanxi.privacy.enums import RequestChannel, RequestKind, Verification
from guanxi.privacy.schemas import (
    RequestComplete,
    RequestCorrection,
    RequestCreate,
    RequestReject,
)
from guanxi.security.models import User


@dataclass
class PrivacyDemo:
    """What the demo registered."""

    requests: int = 0
    open: int = 0
    overdue: int = 0


def _user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def seed_privacy(session: Session, *, seed: int = 7) -> PrivacyDemo:
    """Register and work the demo requests (nothing when the demo users are missing)."""
    rng = random.Random(seed)
    dpo, agent = _user(session, "dpo"), _user(session, "agent")
    out = PrivacyDemo()
    if dpo is None or agent is None:
        return out
    people = list(
        session.scalars(
            select(Customer.id)
            .where(
                Customer.kind == CustomerKind.individual.value,
                Customer.status == CustomerStatus.active.value,
            )
            .order_by(Customer.id)
            .limit(200)
        )
    )
    if len(people) < 6:
        return out
    chosen = rng.sample(people, 6)
    now = clock.now()
    # (kind, channel, verification, days ago, what the officer does)
    plan = [
        (RequestKind.deletion, RequestChannel.letter, Verification.id_document, 30, "start"),
        (RequestKind.access, RequestChannel.phone, Verification.phone_callback, 17, "start"),
        (RequestKind.copy, RequestChannel.email, Verification.sms_code, 9, "export"),
        (RequestKind.correction, RequestChannel.counter, Verification.in_person, 6, "correct"),
        (RequestKind.objection, RequestChannel.phone, Verification.phone_callback, 4, "reject"),
        (RequestKind.access, RequestChannel.phone, Verification.sms_code, 0, None),
    ]
    details = {
        RequestKind.deletion: "客户来函要求注销账户并删除个人信息",
        RequestKind.access: "客户来电询问我司保存了哪些个人信息",
        RequestKind.copy: "客户要求提供寄件记录副本",
        RequestKind.correction: "客户所在地区已变更",
        RequestKind.objection: "客户拒绝接收营销短信",
    }
    for cid, (kind, channel, verification, days, step) in zip(chosen, plan, strict=True):
        with clock.frozen(now - timedelta(days=days, hours=rng.randint(0, 5))):
            row = service.create_request(
                session,
                request_in=RequestCreate(
                    customer_id=cid,
                    kind=kind,
                    channel=channel,
                    verification=verification,
                    details=details[kind],
                ),
                actor=agent,
            )
        out.requests += 1
        if step in ("start", "export"):
            row = service.start_request(session, request_id=row.id, version=row.version, actor=dpo)
        if step == "export":
            row, _data = service.export_for_request(
                session, request_id=row.id, fmt="json", actor=dpo
            )
            row = service.complete_request(
                session,
                request_id=row.id,
                complete_in=RequestComplete(
                    note="已通过电子邮件发送加密导出文件", version=row.version
                ),
                actor=dpo,
            )
        elif step == "correct":
            row = service.correct_customer(
                session,
                request_id=row.id,
                correction_in=RequestCorrection(
                    changes=CustomerUpdate(region="华南"), version=row.version
                ),
                actor=dpo,
            )
            row = service.complete_request(
                session,
                request_id=row.id,
                complete_in=RequestComplete(note="已更正所在地区", version=row.version),
                actor=dpo,
            )
        elif step == "reject":
            row = service.reject_request(
                session,
                request_id=row.id,
                reject_in=RequestReject(
                    reason="来电号码与档案不符，无法核实身份；已请客户到网点办理",
                    version=row.version,
                ),
                actor=dpo,
            )
        if row.status in ("received", "in_progress"):
            out.open += 1
            if row.due_on < service.local_day(now, service.working_calendar()):
                out.overdue += 1
    return out
