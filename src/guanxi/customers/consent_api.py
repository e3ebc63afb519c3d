"""JSON routes of a customer's consents (``/api/v1/customers/{id}/consents``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from guanxi.core.ids import PathId
from guanxi.customers import consent
from guanxi.customers.schemas import ConsentEventRead, ConsentRead, ConsentsRead, ConsentUpdate
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter()

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]


def _read(states: list[consent.ConsentState], history: list[object]) -> ConsentsRead:
    return ConsentsRead(
        items=[
            ConsentRead(
                purpose=s.purpose.value,
                granted=s.granted,
                allowed=s.allowed,
                source=s.source,
                updated_at=s.updated_at,
            )
            for s in states
        ],
        history=[ConsentEventRead.model_validate(e) for e in history],
    )


@router.get("/{customer_id}/consents", response_model=ConsentsRead)
def get_consents(customer_id: PathId, session: SessionDep, user: Reader) -> ConsentsRead:
    """The customer's standing for each purpose and the consent history, newest first."""
    states, history = consent.read_consents(session, customer_id=customer_id, viewer=user)
    return _read(states, list(history))


@router.put("/{customer_id}/consents", response_model=ConsentsRead)
def put_consent(
    customer_id: PathId, body: ConsentUpdate, session: SessionDep, user: Writer
) -> ConsentsRead:
    """Record one consent given or withdrawn (audited; a withdrawal applies at once, also
    to messages already queued)."""
    consent.set_consent(session, customer_id=customer_id, consent_in=body, actor=user)
    states, history = consent.read_consents(session, customer_id=customer_id, viewer=user)
    return _read(states, list(history))
