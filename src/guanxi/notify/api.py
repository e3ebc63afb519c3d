"""JSON routes of the e-mail outbox: what waits, what failed and why; send one again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from guanxi.core.ids import PathId, QueryId
from guanxi.notify import outbox
from guanxi.notify.outbox import OutboxStatus
from guanxi.notify.schemas import OutboxPage, OutboxRead
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of

router = APIRouter(prefix="/api/v1", tags=["notify"])

# Mail settings and deliveries are an administrator's matter.
Admin = Annotated[User, require(Permission.user_manage)]


@router.get("/outbox", response_model=OutboxPage)
def list_outbox(
    session: SessionDep,
    user: Admin,
    status: Annotated[list[OutboxStatus] | None, Query()] = None,
    before: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OutboxPage:
    """E-mails not sent yet (pending, being sent) and given up on (failed), newest first;
    ``status`` narrows the list (``sent`` shows delivered mails)."""
    statuses = (
        tuple(status)
        if status
        else (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.failed)
    )
    items = outbox.list_outbox(session, statuses=statuses, before_id=before, limit=limit)
    return OutboxPage(
        items=[OutboxRead.model_validate(i) for i in items],
        next_before=items[-1].id if len(items) == limit else None,
    )


@router.post("/outbox/{email_id}/retry", response_model=OutboxRead)
def retry(email_id: PathId, session: SessionDep, user: Admin) -> OutboxRead:
    """Send a pending or failed e-mail at the worker's next run (a failed one gets all its
    attempts again)."""
    return OutboxRead.model_validate(
        outbox.retry_email(session, email_id=email_id, actor=actor_of(user))
    )
