"""JSON routes of attachments: upload to a ticket or a claim, list them, download one.

Uploads are multipart (``file``), up to ``attachment_max_bytes``; their paths are marked
with :func:`guanxi.core.web.body_limit` so the body-size middleware lets them through (and
refuses anything larger before reading it). Downloads are always sent as attachments with
the type recorded at upload and ``nosniff``: a browser saves them, never renders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import FormData, UploadFile

from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.core.messages import ERROR_MESSAGES
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
from guanxi.tickets.models import Attachment

router = APIRouter(tags=["attachments"])

Reader = Annotated[User, require(Permission.ticket_read)]
Worker = Annotated[User, require(Permission.ticket_write)]

TICKET_UPLOAD = BodyLimit(
    "/api/v1/tickets/{ticket_id}/attachments", "attachment_max_bytes", field="file"
)
CLAIM_UPLOAD = BodyLimit("/api/v1/claims/{claim_id}/attachments", "attachment_max_bytes", "file")


class AttachmentRead(BaseModel):
    """A stored file as the API shows it (the storage key stays inside)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int | None
    claim_id: int | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    from_customer: bool
    uploaded_by: int | None
    uploaded_at: datetime
    download_url: str

    @classmethod
    def of(cls, row: Attachment) -> AttachmentRead:
        """The API shape of a row, with its download address."""
        return cls.model_validate(
            {
                **{k: getattr(row, k) for k in cls.model_fields if k != "download_url"},
                "download_url": f"/api/v1/attachments/{row.id}",
            }
        )


# The body is read by read_form, so it is described here for the OpenAPI schema.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "One of: " + attachments.allowed_extensions(),
                        }
                    },
                }
            }
        },
    }
}


def uploaded_file(form: FormData) -> UploadFile:
    """The form's ``file`` part; ValidationFailed naming ``file`` when there is none."""
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        code = "attachment_missing"
        raise ValidationFailed([FieldError(("file",), code, ERROR_MESSAGES[code])])
    return file


def _store(
    request: Request,
    session: SessionDep,
    user: User,
    form: FormData,
    limit: BodyLimit,
    *,
    ticket_id: int | None = None,
    claim_id: int | None = None,
) -> AttachmentRead | Response:
    file = uploaded_file(form)
    try:
        row = attachments.store(
            session,
            filename=file.filename or "",
            declared_type=file.content_type,
            stream=file.file,
            actor=user,
            settings=request.app.state.settings,
            ticket_id=ticket_id,
            claim_id=claim_id,
        )
    except attachments.AttachmentTooLarge:
        return file_too_large(request, limit)
    return AttachmentRead.of(row)


@router.post(
    "/api/v1/tickets/{ticket_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
)
@body_limit(TICKET_UPLOAD)
def upload_to_ticket(
    ticket_id: PathId, request: Request, session: SessionDep, user: Worker, form: ParsedForm
) -> AttachmentRead | Response:
    """Attach a file (``file``) to a ticket: an allowed type by name and content, at most
    ``attachment_max_bytes`` (413 above), at most 20 per ticket."""
    return _store(request, session, user, form, TICKET_UPLOAD, ticket_id=ticket_id)


@router.get("/api/v1/tickets/{ticket_id}/attachments", response_model=list[AttachmentRead])
def ticket_attachments(
    ticket_id: PathId, session: SessionDep, user: Reader
) -> list[AttachmentRead]:
    """The files of a ticket, oldest first."""
    return [
        AttachmentRead.of(a)
        for a in attachments.list_for(session, ticket_id=ticket_id, viewer=user)
    ]


@router.post(
    "/api/v1/claims/{claim_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
)
@body_limit(CLAIM_UPLOAD)
def upload_to_claim(
    claim_id: PathId, request: Request, session: SessionDep, user: Worker, form: ParsedForm
) -> AttachmentRead | Response:
    """Attach evidence (``file``) to a claim; the same rules as for tickets."""
    return _store(request, session, user, form, CLAIM_UPLOAD, claim_id=claim_id)


@router.get("/api/v1/claims/{claim_id}/attachments", response_model=list[AttachmentRead])
def claim_attachments(claim_id: PathId, session: SessionDep, user: Reader) -> list[AttachmentRead]:
    """The evidence of a claim, oldest first."""
    return [
        AttachmentRead.of(a) for a in attachments.list_for(session, claim_id=claim_id, viewer=user)
    ]


@router.get(
    "/api/v1/attachments/{attachment_id}",
    response_class=FileResponse,
    responses={200: {"content": attachments.DOWNLOAD_CONTENT}},
)
def download(
    attachment_id: PathId, request: Request, session: SessionDep, user: Reader
) -> FileResponse:
    """The file, as a download: ``Content-Disposition: attachment``, the type recorded at
    upload, ``nosniff`` and a sandboxing content policy, so nothing in it is ever run."""
    found = attachments.open_for_download(
        session, attachment_id=attachment_id, settings=request.app.state.settings, viewer=user
    )
    return stored_file_response(
        found.path, content_type=found.attachment.content_type, filename=found.attachment.filename
    )
