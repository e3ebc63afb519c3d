"""Helpers of the survey tests: invitations, answers, resolved tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.surveys import invitations
from guanxi.surveys.enums import Trigger
from guanxi.surveys.invitations import Invited, InviteRequest
from guanxi.surveys.models import SurveyTemplate
from guanxi.surveys.service import current_version
from guanxi.tickets import service as tickets
from guanxi.tickets.enums import TicketAction, TicketChannel, TicketType
from guanxi.tickets.schemas import TicketCreate

# The after-ticket survey answered by a detractor and by a promoter.
DETRACTOR = {"csat": 3, "nps": 2, "nps_reason": "快递三天没动，客服也没回电话", "dim_timeliness": 2}
PROMOTER = {"csat": 9, "nps": 10, "dim_attitude": 9, "dim_timeliness": 8}


def template(db: Session, code: str) -> SurveyTemplate:
    found = db.scalar(select(SurveyTemplate).where(SurveyTemplate.code == code))
    assert found is not None
    return found


def invite(
    db: Session,
    customer_id: int | None,
    code: str = "relationship",
    *,
    key: str | None = None,
    now: datetime | None = None,
    expiry_days: int = 14,
    trigger: Trigger = Trigger.manual,
) -> Invited:
    """One invitation to ``code``'s published version, committed."""
    tpl = template(db, code)
    version = current_version(db, tpl.id)
    assert version is not None
    with write_transaction(db):
        found = invitations.invite_many(
            db,
            template=tpl,
            version_id=version.id,
            requests=[
                InviteRequest(
                    key=key or f"test:{code}:{customer_id}:{now}",
                    trigger=trigger,
                    customer_id=customer_id,
                )
            ],
            expiry_days=expiry_days,
            now=now,
        )
    assert len(found) == 1
    return found[0]


def resolved_ticket(db: Session, agent: Any, customer_id: int | None, **kw: Any) -> Any:
    """A complaint the agent takes, starts and resolves (the resolved hooks run)."""
    ticket = tickets.create_ticket(
        db,
        ticket_in=TicketCreate(
            type=TicketType.complaint,
            channel=TicketChannel.hotline,
            customer_id=customer_id,
            subject=kw.pop("subject", "快件延误"),
            **kw,
        ),
        actor=agent,
    )
    ticket = tickets.take(db, ticket_id=ticket.id, actor=agent)
    for action in (TicketAction.start, TicketAction.resolve):
        ticket = tickets.act(
            db, ticket_id=ticket.id, action=action, actor=agent, version=ticket.version,
            note="已联系网点加急派送" if action is TicketAction.resolve else None,
            reply=action is TicketAction.resolve,
        )  # fmt: skip
    return ticket
