"""JSON routes of compensation claims (``/api/v1/claims``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import select

from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets import claims
from guanxi.tickets.enums import ClaimStatus
from guanxi.tickets.models import Claim
from guanxi.tickets.schemas import ClaimCreate, ClaimDecision, ClaimPayout, ClaimRead

router = APIRouter(prefix="/api/v1/claims", tags=["claims"])

Reader = Annotated[User, require(Permission.ticket_read)]
Worker = Annotated[User, require(Permission.ticket_write)]
Approver = Annotated[User, require(Permission.claim_approve)]


@router.post("", response_model=ClaimRead, status_code=201)
def file_claim(body: ClaimCreate, session: SessionDep, user: Worker) -> ClaimRead:
    """File a claim; the standard amount is computed from the shipment."""
    claim = claims.file_claim(
        session,
        waybill_no=body.waybill_no,
        reason=body.reason,
        requested_fen=body.requested_fen,
        actor=user,
        ticket_id=body.ticket_id,
        evidence=body.evidence,
    )
    return ClaimRead.model_validate(claim)


@router.get("", response_model=list[ClaimRead])
def list_claims(
    session: SessionDep,
    user: Reader,
    status: ClaimStatus | None = ClaimStatus.submitted,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ClaimRead]:
    """Claims in one status (waiting for approval by default), oldest first."""
    stmt = select(Claim).order_by(Claim.id).limit(limit)
    if status is not None:
        stmt = stmt.where(Claim.status == status.value)
    return [ClaimRead.model_validate(c) for c in session.scalars(stmt)]


class ClaimCostRead(BaseModel):
    """Claims of one reason in the period, amounts in fen."""

    model_config = ConfigDict(from_attributes=True)

    reason: str
    claims: int
    requested_fen: int
    approved_fen: int
    paid_fen: int


@router.get("/cost", response_model=list[ClaimCostRead])
def claim_cost(
    session: SessionDep, user: Reader, since: AwareDatetime, until: AwareDatetime
) -> list[ClaimCostRead]:
    """Compensation cost by reason of the claims filed in [since, until)."""
    if until <= since:
        raise ValidationFailed(
            [FieldError(("until",), "period_order", "The end must be after the start")]
        )
    return [
        ClaimCostRead.model_validate(c)
        for c in claims.cost_by_reason(session, since=since, until=until)
    ]


@router.get("/{claim_id}", response_model=ClaimRead)
def get_claim(claim_id: PathId, session: SessionDep, user: Reader) -> ClaimRead:
    """One claim."""
    return ClaimRead.model_validate(claims.get_claim(session, claim_id))


@router.post("/{claim_id}/decision", response_model=ClaimRead)
def decide(claim_id: PathId, body: ClaimDecision, session: SessionDep, user: Approver) -> ClaimRead:
    """Approve (up to the standard and the approver's limit) or reject."""
    claim = claims.decide(
        session,
        claim_id=claim_id,
        approve=body.approve,
        actor=user,
        amount_fen=body.amount_fen,
        note=body.note,
    )
    return ClaimRead.model_validate(claim)


@router.post("/{claim_id}/payout", response_model=ClaimRead)
def payout(claim_id: PathId, body: ClaimPayout, session: SessionDep, user: Approver) -> ClaimRead:
    """Record the payout of an approved claim."""
    claim = claims.mark_paid(session, claim_id=claim_id, payout_ref=body.payout_ref, actor=user)
    return ClaimRead.model_validate(claim)
