"""JSON routes of contracts (``/api/v1/contracts/...``).

Reading needs ``customer.read`` and shows the contracts of the customers the caller can
see; writing needs ``sales.pipeline`` (and ``sales.manage`` for another person's contract,
checked by the service); the policy is a sales manager's.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from guanxi.contracts import documents, service, volume
from guanxi.contracts.enums import ContractStatus
from guanxi.contracts.schemas import (
    AmendmentRead,
    ContractActivate,
    ContractCreate,
    ContractPage,
    ContractPolicy,
    ContractRead,
    ContractRenew,
    ContractTerminate,
    ContractUpdate,
    DocumentRead,
    VolumeRead,
)
from guanxi.core import clock
from guanxi.core.ids import PathId, QueryId
from guanxi.core.web import (
    BodyLimit,
    ParsedForm,
    body_limit,
    file_too_large,
    stored_file_response,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets import attachments
from guanxi.tickets.attachments_api import UPLOAD_BODY, uploaded_file

router = APIRouter(prefix="/api/v1/contracts", tags=["contracts"])

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]

DOCUMENT_UPLOAD = BodyLimit(
    "/api/v1/contracts/{contract_id}/documents", "attachment_max_bytes", "file"
)
Month = Annotated[str | None, Query(max_length=7, description="YYYY-MM; default this month")]


def _read(session: SessionDep, contract: Any) -> ContractRead:
    return service.to_reads(session, [contract])[0]


def _today(request: Request) -> date:
    return clock.now().astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


def _month_report(
    request: Request, session: SessionDep, user: User, month: str | None
) -> tuple[date, list[VolumeRead]]:
    """The first day of ``month`` (default this month) and its report rows."""
    today = _today(request)
    first = volume.parse_month(month) if month else today.replace(day=1)
    rows = volume.month_report(
        session,
        viewer=user,
        month=first,
        today=today,
        timezone=request.app.state.settings.timezone,
    )
    return first, rows


@router.get("", response_model=ContractPage)
def list_contracts(
    session: SessionDep,
    user: Reader,
    status: ContractStatus | None = None,
    customer_id: QueryId = None,
    owner_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ContractPage:
    """Contracts of the customers you can see, newest first."""
    rows, total = service.list_contracts(
        session,
        viewer=user,
        status=status,
        customer_id=customer_id,
        owner_id=owner_id,
        limit=limit,
        offset=offset,
    )
    return ContractPage(items=service.to_reads(session, rows), total=total)


@router.post("", response_model=ContractRead, status_code=201)
def create_contract(body: ContractCreate, session: SessionDep, user: Writer) -> ContractRead:
    """A new draft contract for an enterprise or public-body customer you can see."""
    return _read(session, service.create_contract(session, contract_in=body, actor=user))


@router.get("/report", response_model=list[VolumeRead])
def report(request: Request, session: SessionDep, user: Reader, month: Month = None) -> Any:
    """Every contract in force in ``month`` with its volume against the commitment, below
    commitment first."""
    return _month_report(request, session, user, month)[1]


@router.get("/report.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def report_csv(
    request: Request, session: SessionDep, user: Reader, month: Month = None
) -> StreamingResponse:
    """The month's report as CSV (money in yuan)."""
    first, rows = _month_report(request, session, user, month)
    return StreamingResponse(
        volume.export_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="contracts-{first:%Y-%m}.csv"'},
    )


@router.get("/policy", response_model=ContractPolicy)
def get_policy(session: SessionDep, user: Reader) -> ContractPolicy:
    """The contract policy (default reminder days)."""
    return service.load_policy(session)


@router.put("/policy", response_model=ContractPolicy)
def put_policy(body: ContractPolicy, session: SessionDep, user: Manager) -> ContractPolicy:
    """Replace the contract policy (audited)."""
    return service.save_policy(session, policy_in=body, actor=user)


@router.get(
    "/documents/{document_id}",
    response_class=FileResponse,
    responses={200: {"content": attachments.DOWNLOAD_CONTENT}},
)
def download_document(
    document_id: PathId, request: Request, session: SessionDep, user: Reader
) -> FileResponse:
    """A contract's document, as a download (as the tickets' attachments: the type recorded
    at upload, ``nosniff`` and a sandboxing policy, so nothing in it is ever run)."""
    found = documents.open_document(
        session, document_id=document_id, viewer=user, settings=request.app.state.settings
    )
    return stored_file_response(
        found.path, content_type=found.document.content_type, filename=found.document.filename
    )


@router.get("/{contract_id}", response_model=ContractRead)
def get_contract(contract_id: PathId, session: SessionDep, user: Reader) -> ContractRead:
    """One contract."""
    return _read(session, service.get_contract(session, contract_id=contract_id, viewer=user))


@router.put("/{contract_id}", response_model=ContractRead)
def update_contract(
    contract_id: PathId, body: ContractUpdate, session: SessionDep, user: Writer
) -> ContractRead:
    """Change a draft, or amend an active contract (``reason`` required; kept in the
    history). Name the version you read."""
    contract = service.update_contract(
        session, contract_id=contract_id, contract_in=body, actor=user
    )
    return _read(session, contract)


@router.post("/{contract_id}/activate", response_model=ContractRead)
def activate(
    contract_id: PathId, body: ContractActivate, session: SessionDep, user: Writer
) -> ContractRead:
    """Put a signed draft in force."""
    contract = service.activate_contract(
        session, contract_id=contract_id, version=body.version, actor=user
    )
    return _read(session, contract)


@router.post("/{contract_id}/terminate", response_model=ContractRead)
def terminate(
    contract_id: PathId, body: ContractTerminate, session: SessionDep, user: Writer
) -> ContractRead:
    """End an active contract early (effective day and reason kept in the history)."""
    contract = service.terminate_contract(
        session, contract_id=contract_id, terminate_in=body, actor=user
    )
    return _read(session, contract)


@router.post("/{contract_id}/renew", response_model=ContractRead, status_code=201)
def renew(
    contract_id: PathId, body: ContractRenew, session: SessionDep, user: Writer
) -> ContractRead:
    """Draft the renewal of an active or expired contract (the same terms, the next
    period); activate it once signed."""
    contract = service.renew_contract(session, contract_id=contract_id, renew_in=body, actor=user)
    return _read(session, contract)


@router.get("/{contract_id}/amendments", response_model=list[AmendmentRead])
def amendments(contract_id: PathId, session: SessionDep, user: Reader) -> list[AmendmentRead]:
    """The contract's change history since activation, oldest first."""
    service.get_contract(session, contract_id=contract_id, viewer=user)
    return service.amendments(session, contract_id=contract_id)


@router.get("/{contract_id}/volume", response_model=list[VolumeRead])
def contract_volume(
    contract_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    months: Annotated[int, Query(ge=1, le=36)] = 6,
) -> list[VolumeRead]:
    """The contract's last months in force: volume against the commitment, newest first."""
    contract = service.get_contract(session, contract_id=contract_id, viewer=user)
    return volume.contract_months(
        session,
        contract,
        today=_today(request),
        timezone=request.app.state.settings.timezone,
        months=months,
    )


@router.get("/{contract_id}/documents", response_model=list[DocumentRead])
def list_documents(contract_id: PathId, session: SessionDep, user: Reader) -> list[DocumentRead]:
    """The contract's documents, oldest first."""
    service.get_contract(session, contract_id=contract_id, viewer=user)
    return [
        documents.to_read(d) for d in documents.list_documents(session, contract_id=contract_id)
    ]


@router.post(
    "/{contract_id}/documents",
    response_model=DocumentRead,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
)
@body_limit(DOCUMENT_UPLOAD)
def upload_document(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer, form: ParsedForm
) -> DocumentRead | Response:
    """Attach a file (``file``): the types and size limit of the tickets' attachments
    (413 above it), at most 20 per contract."""
    file = uploaded_file(form)
    try:
        row = documents.add_document(
            session,
            contract_id=contract_id,
            filename=file.filename or "",
            declared_type=file.content_type,
            stream=file.file,
            actor=user,
            settings=request.app.state.settings,
        )
    except attachments.AttachmentTooLarge:
        return file_too_large(request, DOCUMENT_UPLOAD)
    return documents.to_read(row)
