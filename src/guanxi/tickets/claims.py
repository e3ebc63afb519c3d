"""Compensation claims (理赔) per waybill: the published standard, approval by role and
amount, payout.

The standard follows the express-market rules (快递市场管理办法): an insured shipment is paid
its actual loss up to the declared value; an uninsured one its actual loss up to a multiple
of the fee paid (three by default), optionally capped. Amounts are integer fen. Who may
approve how much is a table by role; a claim above the approver's limit is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.models import Shipment
from guanxi.tickets.enums import ClaimReason, ClaimStatus
from guanxi.tickets.models import Claim, Ticket


@dataclass(frozen=True)
class ClaimRules:
    """The published standard (configurable per company)."""

    uninsured_fee_multiple: int = 3
    # Upper bound for uninsured shipments in fen; None: only the fee multiple applies.
    uninsured_cap_fen: int | None = None
    # Largest amount each role may approve, in fen; roles not listed may not approve.
    approval_limits: tuple[tuple[str, int | None], ...] = (
        ("agent", 20_000),  # 200 元: a front-line goodwill payment
        ("manager", 500_000),  # 5,000 元
        ("admin", None),  # no limit
    )

    def limit_for(self, role: str) -> int | None | bool:
        """The role's approval limit in fen, None for unlimited, False if it may not."""
        for name, limit in self.approval_limits:
            if name == role:
                return limit
        return False

    def uninsured_ceiling(self, fee_fen: int) -> int:
        """The most an uninsured shipment of this fee is paid: the fee multiple, capped."""
        ceiling = fee_fen * self.uninsured_fee_multiple
        if self.uninsured_cap_fen is not None:
            ceiling = min(ceiling, self.uninsured_cap_fen)
        return ceiling


RULES = ClaimRules()


def standard_amount(shipment: Shipment, requested_fen: int, rules: ClaimRules = RULES) -> int:
    """What the published standard pays for a loss of ``requested_fen`` on ``shipment``."""
    if shipment.insured_value_fen > 0:
        return min(requested_fen, shipment.insured_value_fen)
    return min(requested_fen, rules.uninsured_ceiling(shipment.fee_fen))


def _invalid(field: str, code: str, message: str, **params: object) -> ValidationFailed:
    return ValidationFailed([FieldError((field,), code, message, dict(params))])


def file_claim(
    session: Session,
    *,
    waybill_no: str,
    reason: ClaimReason,
    requested_fen: int,
    actor: User,
    ticket_id: int | None = None,
    evidence: str | None = None,
    rules: ClaimRules = RULES,
) -> Claim:
    """Record a claim for a waybill; its standard amount is computed now, from the
    shipment's declared value or fee."""
    if requested_fen <= 0:
        raise _invalid("requested_fen", "amount_positive", "The amount must be more than zero")
    with write_transaction(session):
        shipment = session.scalar(select(Shipment).where(Shipment.waybill_no == waybill_no.upper()))
        if shipment is None:
            raise _invalid("waybill_no", "waybill_unknown", "No shipment has this waybill")
        if ticket_id is not None and session.get(Ticket, ticket_id) is None:
            raise _invalid("ticket_id", "ticket_unknown", "No such ticket")
        claim = Claim(
            ticket_id=ticket_id,
            shipment_id=shipment.id,
            customer_id=shipment.customer_id,
            reason=reason.value,
            insured=shipment.insured_value_fen > 0,
            declared_value_fen=shipment.insured_value_fen,
            fee_fen=shipment.fee_fen,
            requested_fen=requested_fen,
            standard_fen=standard_amount(shipment, requested_fen, rules),
            status=ClaimStatus.submitted.value,
            evidence=evidence,
            created_by=actor.id,
            created_at=clock.now(),
            version=1,
        )
        session.add(claim)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="claim.submitted",
            target_type="claim",
            target_id=claim.id,
            after={
                "waybill_no": shipment.waybill_no,
                "requested_fen": requested_fen,
                "standard_fen": claim.standard_fen,
            },
        )
    return claim


def get_claim(session: Session, claim_id: int) -> Claim:
    """One claim, or NotFound."""
    claim = session.get(Claim, claim_id, populate_existing=True)
    if claim is None:
        raise NotFound("claim not found", claim_id=claim_id)
    return claim


def decide(
    session: Session,
    *,
    claim_id: int,
    approve: bool,
    actor: User,
    amount_fen: int | None = None,
    note: str | None = None,
    rules: ClaimRules = RULES,
) -> Claim:
    """Approve (the standard amount, or less) or reject a submitted claim. An approver may
    not approve above their role's limit, nor above the standard."""
    with write_transaction(session):
        claim = get_claim(session, claim_id)
        if claim.status != ClaimStatus.submitted.value:
            raise Conflict("claim_decided", field="claim_id", status=claim.status)
        limit = rules.limit_for(actor.role)
        if limit is False:
            raise PermissionDenied("this role may not decide claims")
        if approve:
            amount = claim.standard_fen if amount_fen is None else amount_fen
            if amount <= 0:
                raise _invalid("amount_fen", "amount_positive", "The amount must be more than zero")
            if amount > claim.standard_fen:
                raise _invalid(
                    "amount_fen", "claim_above_standard", "More than the published standard allows"
                )
            if limit is not None and amount > int(limit):
                raise _invalid(
                    "amount_fen",
                    "claim_above_limit",
                    "Above your approval limit",
                    limit=f"¥{int(limit) / 100:,.2f}",
                )
            claim.approved_fen = amount
            claim.status = ClaimStatus.approved.value
        else:
            claim.status = ClaimStatus.rejected.value
        claim.decided_by = actor.id
        claim.decided_at = clock.now()
        claim.decision_note = note
        claim.version += 1
        record(
            session,
            actor=actor_of(actor),
            action="claim.approved" if approve else "claim.rejected",
            target_type="claim",
            target_id=claim.id,
            after={
                "approved_fen": claim.approved_fen,
                "note": seal_about_customer(session, claim.customer_id, note),
            },
        )
    return claim


def mark_paid(session: Session, *, claim_id: int, payout_ref: str, actor: User) -> Claim:
    """Record the payout of an approved claim (bank or wallet reference)."""
    with write_transaction(session):
        claim = get_claim(session, claim_id)
        if claim.status != ClaimStatus.approved.value:
            raise Conflict("claim_not_approved", field="claim_id", status=claim.status)
        claim.status = ClaimStatus.paid.value
        claim.payout_ref = payout_ref
        claim.paid_at = clock.now()
        claim.version += 1
        record(
            session,
            actor=actor_of(actor),
            action="claim.paid",
            target_type="claim",
            target_id=claim.id,
            after={"approved_fen": claim.approved_fen, "payout_ref": payout_ref},
        )
    return claim


@dataclass(frozen=True)
class ClaimCost:
    """Claims of one reason in a period: how many, and the money asked, approved, paid."""

    reason: str
    claims: int
    requested_fen: int
    approved_fen: int
    paid_fen: int


def cost_by_reason(session: Session, *, since: datetime, until: datetime) -> list[ClaimCost]:
    """Compensation cost of the claims filed in [since, until), by reason: the figure the
    complaint summaries and root-cause reports take (one grouped query)."""
    approved = case((Claim.status.in_(["approved", "paid"]), Claim.approved_fen), else_=0)
    paid = case((Claim.status == "paid", Claim.approved_fen), else_=0)
    rows = session.execute(
        select(
            Claim.reason,
            func.count(),
            func.coalesce(func.sum(Claim.requested_fen), 0),
            func.coalesce(func.sum(approved), 0),
            func.coalesce(func.sum(paid), 0),
        )
        .where(Claim.created_at >= since, Claim.created_at < until)
        .group_by(Claim.reason)
        .order_by(Claim.reason)
    )
    return [ClaimCost(r, int(n), int(req), int(app), int(pay)) for r, n, req, app, pay in rows]
