"""JSON routes of data-subject requests (``/api/v1/privacy/...``).

Registering a request needs ``privacy.request`` (agents on the phone, supervisors, the
privacy officer); reading requests ``privacy.read``; working them — taking on, correcting,
exporting, completing, rejecting — and the request policy ``privacy.manage``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from guanxi.core.ids import PathId, QueryId
from guanxi.privacy import service
from guanxi.privacy.enums import RequestKind, RequestStatus
from guanxi.privacy.schemas import (
    RequestComplete,
    RequestCorrection,
    RequestCreate,
    RequestPage,
    RequestPolicy,
    RequestRead,
    RequestReject,
    RequestStart,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["privacy"])

Registrar = Annotated[User, require(Permission.privacy_request)]
Reader = Annotated[User, require(Permission.privacy_read)]
Officer = Annotated[User, require(Permission.privacy_manage)]

EXPORT_TYPES = {"json": "application/json", "csv": "application/zip"}


def _read(session: SessionDep, row: object) -> RequestRead:
    return service.to_reads(session, [row])[0]  # type: ignore[list-item]


@router.get("/privacy/requests", response_model=RequestPage)
def list_requests(
    session: SessionDep,
    user: Reader,
    status: RequestStatus | None = None,
    kind: RequestKind | None = None,
    customer_id: QueryId = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RequestPage:
    """Data-subject requests, open ones first and the earliest due first."""
    rows, total = service.list_requests(
        session,
        status=status,
        kind=kind,
        customer_id=customer_id,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    return RequestPage(items=service.to_reads(session, rows), total=total)


@router.post("/privacy/requests", response_model=RequestRead, status_code=201)
def create_request(body: RequestCreate, session: SessionDep, user: Registrar) -> RequestRead:
    """Register a request for a customer you can see, with how the requester's identity
    was verified; due after the policy's working days."""
    return _read(session, service.create_request(session, request_in=body, actor=user))


@router.get("/privacy/requests/{request_id}", response_model=RequestRead)
def get_request(request_id: PathId, session: SessionDep, user: Reader) -> RequestRead:
    """One request."""
    return _read(session, service.get_request(session, request_id=request_id))


@router.post("/privacy/requests/{request_id}/start", response_model=RequestRead)
def start_request(
    request_id: PathId, body: RequestStart, session: SessionDep, user: Officer
) -> RequestRead:
    """Take a received request on."""
    row = service.start_request(session, request_id=request_id, version=body.version, actor=user)
    return _read(session, row)


@router.post("/privacy/requests/{request_id}/correction", response_model=RequestRead)
def correct(
    request_id: PathId, body: RequestCorrection, session: SessionDep, user: Officer
) -> RequestRead:
    """Apply a correction request's changes to the customer record."""
    row = service.correct_customer(session, request_id=request_id, correction_in=body, actor=user)
    return _read(session, row)


@router.post("/privacy/requests/{request_id}/complete", response_model=RequestRead)
def complete_request(
    request: Request,
    request_id: PathId,
    body: RequestComplete,
    session: SessionDep,
    user: Officer,
) -> RequestRead:
    """Answer the request; a deletion request anonymises the customer."""
    row = service.complete_request(
        session,
        request_id=request_id,
        complete_in=body,
        actor=user,
        settings=request.app.state.settings,
    )
    return _read(session, row)


@router.post("/privacy/requests/{request_id}/reject", response_model=RequestRead)
def reject_request(
    request_id: PathId, body: RequestReject, session: SessionDep, user: Officer
) -> RequestRead:
    """Reject the request with its reason."""
    row = service.reject_request(session, request_id=request_id, reject_in=body, actor=user)
    return _read(session, row)


@router.get(
    "/privacy/requests/{request_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "application/zip": {}}}},
)
def export_request(
    request_id: PathId,
    session: SessionDep,
    user: Officer,
    format: Literal["json", "csv"] = "json",  # noqa: A002 - the query parameter's name
) -> Response:
    """Everything held about the request's customer, decrypted (audited as a reveal):
    JSON, or a zip of one CSV per table."""
    row, data = service.export_for_request(session, request_id=request_id, fmt=format, actor=user)
    ext = "json" if format == "json" else "zip"
    filename = f"customer-{row.customer_id}-request-{row.id}.{ext}"
    return Response(
        data,
        media_type=EXPORT_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/privacy/policy", response_model=RequestPolicy)
def get_policy(session: SessionDep, user: Reader) -> RequestPolicy:
    """The request policy: working days to answer and days of warning."""
    return service.load_policy(session)


@router.put("/privacy/policy", response_model=RequestPolicy)
def put_policy(body: RequestPolicy, session: SessionDep, user: Officer) -> RequestPolicy:
    """Replace the request policy (requests already registered keep their due date)."""
    return service.save_policy(session, policy_in=body, actor=user)
