"""HTML pages of compensation claims and of attachments.

``/claims``: the claims in tabs (awaiting decision, approved awaiting payout, paid,
rejected); ``/claims/{id}``: one claim with the standard it was judged by and how it was
computed, its evidence files, the signed-in approver's limit, and the approve / reject /
mark-paid forms; ``/claims/new``: file a claim (from a ticket with a waybill). The ticket
page loads its attachments section from ``/tickets/{id}/attachments`` (htmx), which also
takes uploads. Rules stay in ``claims.py`` and ``attachments.py``; refusals are shown
beside the field in the user's language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from guanxi.core import clock, i18n
from guanxi.core.errors import Conflict, DomainError, FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId, QueryId
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.core.web import (
    BodyLimit,
    ParsedForm,
    body_limit,
    field_errors_from_pydantic,
    format_fen,
    human_bytes,
    request_language,
    translate_field_error,
)
from guanxi.customers.models import Customer
from guanxi.customers.validation import InvalidValue
from guanxi.imports.cleaning import parse_fen
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission, list_users
from guanxi.shipments.models import Shipment
from guanxi.tickets import attachments, claims
from guanxi.tickets.attachments_api import uploaded_file
from guanxi.tickets.enums import LABELS, ClaimReason, ClaimStatus
from guanxi.tickets.models import Claim
from guanxi.tickets.schemas import ClaimCreate, ClaimPayout
from guanxi.tickets.service import get_ticket
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.ticket_read)]
Worker = Annotated[User, require(Permission.ticket_write)]
Approver = Annotated[User, require(Permission.claim_approve)]

TABS: tuple[tuple[str, str], ...] = (
    (ClaimStatus.submitted.value, N_("Awaiting decision")),
    (ClaimStatus.approved.value, N_("Approved, awaiting payout")),
    (ClaimStatus.paid.value, N_("Paid")),
    (ClaimStatus.rejected.value, N_("Rejected")),
)
TOO_LARGE_PAGE = "tickets/attachment_too_large.html"
TICKET_UPLOAD = BodyLimit(
    "/tickets/{ticket_id}/attachments", "attachment_max_bytes", "file", TOO_LARGE_PAGE
)
CLAIM_UPLOAD = BodyLimit(
    "/claims/{claim_id}/attachments", "attachment_max_bytes", "file", TOO_LARGE_PAGE
)
ABOVE_LIMIT = N_("Above your approval limit of ¥{limit}")
NO_APPROVAL = N_("Your role may not approve claims")
NO_LIMIT = N_("No limit")
NOT_POSSIBLE = N_("Not possible in the claim's current state")
AGE_DAYS = N_("{n} d")
AGE_HOURS = N_("{n} h")
AGE_MINUTES = N_("{n} min")
LIST_LIMIT = 200


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class ClaimRow:
    """One line of the claims list: the claim with its waybill and customer."""

    id: int
    ticket_id: int | None
    waybill_no: str
    customer_id: int
    customer_name: str
    reason: str
    requested_fen: int
    standard_fen: int
    approved_fen: int | None
    status: str
    created_at: datetime


def claim_rows(session: Session, *, status: str, limit: int = LIST_LIMIT) -> list[ClaimRow]:
    """Claims in ``status`` with waybill and customer in one query: open work (awaiting a
    decision or a payout) oldest first, finished claims newest first."""
    oldest_first = status in (ClaimStatus.submitted.value, ClaimStatus.approved.value)
    stmt = (
        select(
            Claim.id,
            Claim.ticket_id,
            Shipment.waybill_no,
            Claim.customer_id,
            Customer.name,
            Claim.reason,
            Claim.requested_fen,
            Claim.standard_fen,
            Claim.approved_fen,
            Claim.status,
            Claim.created_at,
        )
        .join(Shipment, Shipment.id == Claim.shipment_id)
        .join(Customer, Customer.id == Claim.customer_id)
        .where(Claim.status == status)
        .order_by(Claim.id if oldest_first else Claim.id.desc())
        .limit(limit)
    )
    return [ClaimRow(*row) for row in session.execute(stmt)]


def claim_counts(session: Session) -> dict[str, int]:
    """How many claims are in each status."""
    stmt = select(Claim.status, func.count(Claim.id)).group_by(Claim.status)
    return {status: int(n) for status, n in session.execute(stmt)}


def claims_of_ticket(session: Session, ticket_id: int) -> list[Claim]:
    """The claims filed from one ticket, oldest first."""
    return list(
        session.scalars(select(Claim).where(Claim.ticket_id == ticket_id).order_by(Claim.id))
    )


# --------------------------------------------------------------------------- helpers


def _text(request: Request, message: str, **params: Any) -> str:
    return i18n.gettext(request_language(request), message, **params)


def _age(request: Request, since: datetime, now: datetime) -> str:
    """How long ago, coarsely: days, else hours, else minutes."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes >= 1440:
        return _text(request, AGE_DAYS, n=minutes // 1440)
    if minutes >= 60:
        return _text(request, AGE_HOURS, n=minutes // 60)
    return _text(request, AGE_MINUTES, n=minutes)


def _labeller(request: Request) -> Callable[[str], str]:
    """A coded value's label in the user's language (the code itself when unlabelled)."""

    def tlabel(value: str) -> str:
        return _text(request, LABELS.get(value, value))

    return tlabel


def approval_limit(user: User) -> int | None | bool:
    """The user's approval limit in fen (None: no limit; False: may not approve)."""
    if not has_permission(user, Permission.claim_approve):
        return False
    return claims.RULES.limit_for(user.role)


def _limit_text(request: Request, limit: int | None | bool) -> str:
    if limit is False:
        return _text(request, NO_APPROVAL)
    if limit is None:
        return _text(request, NO_LIMIT)
    return "¥" + format_fen(int(limit))


def _message(request: Request, error: FieldError, user: User) -> str:
    """A field error in the user's language; above the limit names the limit."""
    if error.code == "claim_above_limit":
        return _text(request, ABOVE_LIMIT, limit=format_fen(int(approval_limit(user) or 0)))
    return translate_field_error(error, request_language(request))


def _conflict_text(request: Request, exc: DomainError) -> str:
    template = ERROR_MESSAGES.get(exc.message)
    if template is None:
        return _text(request, NOT_POSSIBLE)
    params = {
        k: i18n.gettext(request_language(request), LABELS.get(str(v), str(v)))
        for k, v in exc.params.items()
        if k != "field"
    }
    return _text(request, template, **params)


def _yuan(raw: str, field: str, errors: dict[str, str], request: Request) -> int | None:
    """An amount typed in yuan as fen; None when left empty; an error recorded otherwise."""
    if not raw.strip():
        return None
    try:
        return parse_fen(raw)
    except InvalidValue as exc:
        errors[field] = _text(request, ERROR_MESSAGES.get(exc.code, exc.message))
        return None


def _form_text(form: FormData, key: str, limit: int) -> str:
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _uploaders(session: Session) -> dict[int, str]:
    return {u.id: u.display_name for u in list_users(session)}


def _upload_context(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "max_size": human_bytes(settings.attachment_max_bytes),
        "accept": ",".join("." + ext for ext in attachments.ALLOWED_TYPES),
        "allowed": attachments.allowed_extensions(),
        "max_files": attachments.MAX_PER_TARGET,
        "human_bytes": human_bytes,
    }


# --------------------------------------------------------------------------- claims


@router.get("/claims", response_class=HTMLResponse)
def claims_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    tab: Annotated[str, Query(pattern="^(submitted|approved|paid|rejected)$")] = "submitted",
) -> Response:
    """The claims of one tab with waybill, customer, reason, amounts and age."""
    now = clock.now()
    rows = claim_rows(session, status=tab)
    return render(
        request,
        "tickets/claims.html",
        rows=rows,
        tab=tab,
        tabs=TABS,
        counts=claim_counts(session),
        age=lambda since: _age(request, since, now),
        tlabel=_labeller(request),
        limit_text=_limit_text(request, approval_limit(user)),
    )


def _claim_page(
    request: Request,
    session: Session,
    user: User,
    claim_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    banner: str | None = None,
    status_code: int = 200,
) -> Response:
    claim = claims.get_claim(session, claim_id)
    shipment = session.get(Shipment, claim.shipment_id)
    customer = session.get(Customer, claim.customer_id)
    limit = approval_limit(user)
    rules = claims.RULES
    return render(
        request,
        "tickets/claim.html",
        status_code=status_code,
        c=claim,
        shipment=shipment,
        customer=customer,
        rules=rules,
        ceiling=rules.uninsured_ceiling(claim.fee_fen),
        limit=limit,
        limit_text=_limit_text(request, limit),
        over_limit=limit is not None and limit is not False and claim.standard_fen > int(limit),
        files=attachments.list_for(session, claim_id=claim.id),
        users=_uploaders(session),
        may_decide=claim.status == ClaimStatus.submitted.value and limit is not False,
        may_pay=claim.status == ClaimStatus.approved.value
        and has_permission(user, Permission.claim_approve),
        may_upload=has_permission(user, Permission.ticket_write),
        errors=errors or {},
        values=values or {},
        banner=banner,
        tlabel=_labeller(request),
        **_upload_context(request),
    )


def _reasons(request: Request) -> list[tuple[str, str]]:
    return [(r.value, _text(request, LABELS[r.value])) for r in ClaimReason]


def _claim_form(
    request: Request,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "tickets/claim_form.html",
        status_code=status_code,
        values=values,
        errors=errors,
        reasons=_reasons(request),
    )


@router.get("/claims/new", response_class=HTMLResponse)
def new_claim(
    request: Request,
    session: SessionDep,
    user: Worker,
    ticket_id: QueryId = None,
) -> Response:
    """The file-a-claim form, prefilled with the ticket's waybill."""
    values: dict[str, Any] = {"reason": ClaimReason.damage.value}
    if ticket_id is not None:
        ticket = get_ticket(session, ticket_id, user)
        values |= {"ticket_id": ticket.id, "waybill_no": ticket.waybill_no or ""}
    return _claim_form(request, values, {})


@router.post("/claims", response_class=HTMLResponse)
def create_claim(request: Request, session: SessionDep, user: Worker, form: ParsedForm) -> Response:
    """File the claim; invalid fields are shown beside the field."""
    values = {
        "waybill_no": _form_text(form, "waybill_no", 40),
        "reason": _form_text(form, "reason", 20),
        "requested": _form_text(form, "requested", 30),
        "evidence": _form_text(form, "evidence", 5000),
        "ticket_id": _form_text(form, "ticket_id", 20),
    }
    errors: dict[str, str] = {}
    requested = _yuan(values["requested"], "requested", errors, request)
    data: dict[str, Any] = {
        "waybill_no": values["waybill_no"],
        "reason": values["reason"],
        "requested_fen": requested if requested is not None else 0,
        "ticket_id": values["ticket_id"] or None,
        "evidence": values["evidence"] or None,
    }
    fields = {"requested_fen": "requested"}
    lang = request_language(request)
    try:
        claim_in = ClaimCreate(**data)
    except ValidationError as exc:
        for e in field_errors_from_pydantic(list(exc.errors())):
            key = fields.get(str(e.loc[0]), str(e.loc[0])) if e.loc else "waybill_no"
            errors.setdefault(key, translate_field_error(e, lang))
        return _claim_form(request, values, errors, 422)
    if errors:
        return _claim_form(request, values, errors, 422)
    try:
        claim = claims.file_claim(
            session,
            waybill_no=claim_in.waybill_no,
            reason=claim_in.reason,
            requested_fen=claim_in.requested_fen,
            actor=user,
            ticket_id=claim_in.ticket_id,
            evidence=claim_in.evidence,
        )
    except ValidationFailed as exc:
        for e in exc.errors:
            errors.setdefault(
                fields.get(str(e.loc[0]), str(e.loc[0])), translate_field_error(e, lang)
            )
        return _claim_form(request, values, errors, 422)
    return RedirectResponse(f"/claims/{claim.id}", status_code=303)


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
def claim_page(claim_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """One claim: the standard and its basis, evidence, the approver's limit, actions."""
    return _claim_page(request, session, user, claim_id)


@router.post("/claims/{claim_id}/decision", response_class=HTMLResponse)
def decide(
    claim_id: PathId, request: Request, session: SessionDep, user: Approver, form: ParsedForm
) -> Response:
    """Approve (an amount in yuan, the standard when empty) or reject, with a note; a
    refusal (above the standard or the approver's limit) is shown beside the amount."""
    decision = _form_text(form, "decision", 10)
    values = {"amount": _form_text(form, "amount", 30), "note": _form_text(form, "note", 2000)}
    errors: dict[str, str] = {}
    amount = _yuan(values["amount"], "amount", errors, request) if decision == "approve" else None
    if decision not in ("approve", "reject"):
        errors["decision"] = _text(request, ERROR_MESSAGES["ticket_action_unknown"])
    if errors:
        return _claim_page(
            request, session, user, claim_id, errors=errors, values=values, status_code=422
        )
    try:
        claims.decide(
            session,
            claim_id=claim_id,
            approve=decision == "approve",
            actor=user,
            amount_fen=amount,
            note=values["note"] or None,
        )
    except ValidationFailed as exc:
        errors = {"amount": _message(request, exc.errors[0], user)}
        return _claim_page(
            request, session, user, claim_id, errors=errors, values=values, status_code=422
        )
    except Conflict as exc:
        banner = _conflict_text(request, exc)
        return _claim_page(request, session, user, claim_id, banner=banner, status_code=409)
    return RedirectResponse(f"/claims/{claim_id}", status_code=303)


@router.post("/claims/{claim_id}/payout", response_class=HTMLResponse)
def payout(
    claim_id: PathId, request: Request, session: SessionDep, user: Approver, form: ParsedForm
) -> Response:
    """Record the payout of an approved claim with its bank or wallet reference."""
    values = {"payout_ref": _form_text(form, "payout_ref", 100)}
    try:
        body = ClaimPayout(payout_ref=values["payout_ref"])
        claims.mark_paid(session, claim_id=claim_id, payout_ref=body.payout_ref, actor=user)
    except ValidationError as exc:
        lang = request_language(request)
        first = field_errors_from_pydantic(list(exc.errors()))[0]
        errors = {"payout_ref": translate_field_error(first, lang)}
        return _claim_page(
            request, session, user, claim_id, errors=errors, values=values, status_code=422
        )
    except Conflict as exc:
        banner = _conflict_text(request, exc)
        return _claim_page(request, session, user, claim_id, banner=banner, status_code=409)
    return RedirectResponse(f"/claims/{claim_id}", status_code=303)


@router.post(CLAIM_UPLOAD.path, response_class=HTMLResponse)
@body_limit(CLAIM_UPLOAD)
def upload_evidence(
    claim_id: PathId, request: Request, session: SessionDep, user: Worker, form: ParsedForm
) -> Response:
    """Attach an evidence file to the claim; a refused file is named beside the field."""
    try:
        file = uploaded_file(form)
        attachments.store(
            session,
            claim_id=claim_id,
            filename=file.filename or "",
            declared_type=file.content_type,
            stream=file.file,
            actor=user,
            settings=request.app.state.settings,
        )
    except ValidationFailed as exc:
        code = 413 if isinstance(exc, attachments.AttachmentTooLarge) else 422
        errors = {"file": translate_field_error(exc.errors[0], request_language(request))}
        return _claim_page(request, session, user, claim_id, errors=errors, status_code=code)
    return RedirectResponse(f"/claims/{claim_id}#evidence", status_code=303)


# --------------------------------------------------------------------------- ticket files


@router.get(TICKET_UPLOAD.path, response_class=HTMLResponse)
def ticket_attachments(
    ticket_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """The ticket's files and claims with the upload form: the section htmx loads into the
    ticket page, or a page of its own without JavaScript."""
    ticket = get_ticket(session, ticket_id, user)
    template = (
        "tickets/_attachment_list.html"
        if request.headers.get("HX-Request")
        else "tickets/ticket_attachments.html"
    )
    return render(
        request,
        template,
        t=ticket,
        files=attachments.list_for(session, ticket_id=ticket.id),
        ticket_claims=claims_of_ticket(session, ticket.id),
        users=_uploaders(session),
        may_upload=has_permission(user, Permission.ticket_write),
        tlabel=_labeller(request),
        **_upload_context(request),
    )


@router.post(TICKET_UPLOAD.path, response_class=HTMLResponse)
@body_limit(TICKET_UPLOAD)
def upload_to_ticket(
    ticket_id: PathId, request: Request, session: SessionDep, user: Worker, form: ParsedForm
) -> Response:
    """Attach a file to the ticket and go back to it; a refusal is shown on the ticket page
    (it travels as its code, like the ticket page's other refusals)."""
    try:
        file = uploaded_file(form)
        attachments.store(
            session,
            ticket_id=ticket_id,
            filename=file.filename or "",
            declared_type=file.content_type,
            stream=file.file,
            actor=user,
            settings=request.app.state.settings,
        )
    except ValidationFailed as exc:
        error = exc.errors[0]
        query = urlencode({"error": error.code, **{k: str(v) for k, v in error.params.items()}})
        return RedirectResponse(f"/tickets/{ticket_id}?{query}#attachments", status_code=303)
    return RedirectResponse(f"/tickets/{ticket_id}#attachments", status_code=303)
