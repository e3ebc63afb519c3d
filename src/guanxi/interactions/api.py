"""JSON routes of the contact log (``/api/v1/interactions``, ``/api/v1/due``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from guanxi.core import clock
from guanxi.core.ids import PathId
from guanxi.interactions import service
from guanxi.interactions.schemas import (
    ActionItemRead,
    CadenceRuleIn,
    DueContactRead,
    DueList,
    InteractionCreate,
    InteractionRead,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["interactions"])

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]
Admin = Annotated[User, require(Permission.user_manage)]


@router.post("/interactions", response_model=InteractionRead, status_code=201)
def log_interaction(body: InteractionCreate, session: SessionDep, user: Writer) -> InteractionRead:
    """Record a call, visit, e-mail, chat, meeting or return visit with its action items."""
    return InteractionRead.model_validate(
        service.log_interaction(session, interaction_in=body, actor=user)
    )


@router.get("/customers/{customer_id}/interactions", response_model=list[InteractionRead])
def customer_interactions(
    customer_id: PathId, session: SessionDep, user: Reader
) -> list[InteractionRead]:
    """A customer's contacts, newest first."""
    return [
        InteractionRead.model_validate(i)
        for i in service.history(session, customer_id=customer_id, viewer=user)
    ]


@router.post("/action-items/{item_id}/done", response_model=ActionItemRead)
def complete(item_id: PathId, session: SessionDep, user: Writer) -> ActionItemRead:
    """Mark a follow-up done."""
    return ActionItemRead.model_validate(
        service.complete_item(session, item_id=item_id, actor=user)
    )


@router.get("/due", response_model=DueList)
def due(
    session: SessionDep, user: Reader, days_ahead: Annotated[int, Query(ge=0, le=60)] = 7
) -> DueList:
    """My customers due for contact by their cadence, and my follow-ups due soon."""
    today = clock.now().date()
    contacts = service.due_contacts(session, owner_id=user.id, today=today)
    items = service.due_items(session, owner_id=user.id, until=today + timedelta(days=days_ahead))
    return DueList(
        contacts=[DueContactRead.model_validate(c) for c in contacts],
        items=[ActionItemRead.model_validate(i) for i in items],
    )


@router.put("/cadence-rules", status_code=204)
def save_rule(body: CadenceRuleIn, session: SessionDep, user: Admin) -> None:
    """Add or change a contact-cadence rule (administrators)."""
    service.save_rule(session, rule_in=body, actor=user)
