"""JSON routes of imports (``/api/v1/imports``): upload a file and see its proposed column
mapping, start an import or a dry run in the background, follow its progress, download its
rejected rows.

Every route needs ``data.import`` (administrators and service supervisors). Jobs are shared
among the holders of that permission: each sees every job, with who started it, so a
supervisor can follow up a colleague's import (``mine=true`` lists one's own). Rejected
values are masked in every report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile

from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.core.web import (
    BodyLimit,
    ParsedForm,
    body_limit,
    file_too_large,
    problem,
    request_language,
)
from guanxi.imports import jobs, service, uploads
from guanxi.imports.enums import ImportKind
from guanxi.imports.export import neutralise
from guanxi.imports.readers import UnreadableFile
from guanxi.imports.schemas import (
    ImportFieldRead,
    ImportJobCreate,
    ImportJobPage,
    ImportJobRead,
    UploadRead,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])

Importer = Annotated[User, require(Permission.data_import)]
UPLOAD_PATH = "/uploads"
UPLOAD_LIMIT = BodyLimit(router.prefix + UPLOAD_PATH, "max_upload_bytes", field="file")
ERROR_CSV_COLUMNS = ["row", "column", "value", "code", "message"]  # as `guanxi import`'s


def uploads_dir(request: Request) -> Path:
    """Where uploads are kept: ``<data dir>/uploads``."""
    return Path(request.app.state.settings.data_dir) / "uploads"


def invalid(
    request: Request, exc: ValidationFailed | UnreadableFile, kind: ImportKind | None = None
) -> JSONResponse:
    """A 422 problem naming each field in the user's language (``file`` for a file that
    cannot be read, with the reader's code)."""
    lang = request_language(request)
    if isinstance(exc, UnreadableFile):
        code, errors = exc.code, [FieldError(("file",), exc.code, exc.message)]
    else:
        code, errors = exc.code, exc.errors
    shown: list[dict[str, Any]] = [
        {
            "field": ".".join(str(p) for p in e.loc),
            "loc": list(e.loc),
            "code": e.code,
            "message": uploads.message_in(lang, e.code, e.message, e.params or None, kind),
        }
        for e in errors
    ]
    detail = str(shown[0]["message"]) if isinstance(exc, UnreadableFile) else None
    return problem(request, 422, code, detail=detail, extra={"errors": shown})


def upload_read(preview: uploads.UploadPreview, lang: str) -> UploadRead:
    """The API shape of a preview, field labels in ``lang``."""
    return UploadRead(
        upload_id=preview.upload.upload_id,
        file_name=preview.upload.file_name,
        size=preview.upload.size,
        kind=preview.kind,
        format=preview.format,
        encoding=preview.encoding,
        headers=preview.headers,
        rows=preview.rows,
        mapping=preview.mapping,
        unknown_columns=preview.unknown_columns,
        missing_required=[list(options) for options in preview.missing_required],
        fields=[
            ImportFieldRead(
                name=f.name,
                label=uploads.field_label(lang, preview.kind, f.name),
                required=f.required,
                many=f.many,
            )
            for f in uploads.import_fields(preview.kind)
        ],
    )


# The upload body is read by read_form after authorisation, so it is described here.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind", "file"],
                    "properties": {
                        "kind": {"type": "string", "enum": [k.value for k in ImportKind]},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV / TSV (UTF-8 or GB18030) or XLSX",
                        },
                    },
                }
            }
        },
    }
}


def upload_fields(form: FormData) -> tuple[ImportKind, StarletteUploadFile]:
    """The kind and the file of an upload form; :class:`ValidationFailed` naming each."""
    errors: list[FieldError] = []
    kind = form.get("kind")
    file = form.get("file")
    if not isinstance(kind, str) or not kind:
        errors.append(FieldError(("kind",), "missing", "Field required"))
    elif kind not in ImportKind._value2member_map_:
        expected = "'customers', 'contacts' or 'shipments'"
        message = f"Must be one of {expected}"
        errors.append(FieldError(("kind",), "enum", message, {"expected": expected}))
    if not isinstance(file, StarletteUploadFile):
        errors.append(FieldError(("file",), "missing", "Field required"))
    if errors or not isinstance(kind, str) or not isinstance(file, StarletteUploadFile):
        raise ValidationFailed(errors)
    return ImportKind(kind), file


@router.post(UPLOAD_PATH, response_model=UploadRead, openapi_extra=_UPLOAD_BODY)
@body_limit(UPLOAD_LIMIT)
def upload(request: Request, user: Importer, form: ParsedForm) -> UploadRead | Response:
    """Store a file (``file``, streamed to disk) read as ``kind`` and preview it: header,
    first 20 rows, the proposed column mapping, what is missing, and the fields a column can
    be mapped to."""
    kind, file = upload_fields(form)
    try:
        preview = uploads.receive_upload(
            file.file,
            file_name=file.filename or "",
            kind=kind,
            directory=uploads_dir(request),
            max_bytes=request.app.state.settings.max_upload_bytes,
        )
    except uploads.UploadTooLarge:
        return file_too_large(request, UPLOAD_LIMIT)
    except UnreadableFile as exc:
        return invalid(request, exc, kind)
    return upload_read(preview, request_language(request))


@router.post("/jobs", response_model=ImportJobRead, status_code=202)
def start_job(
    body: ImportJobCreate, request: Request, session: SessionDep, user: Importer
) -> ImportJobRead | Response:
    """Start importing (``dry_run``: only checking) an upload in the background; answers at
    once with the job, whose progress ``GET /jobs/{id}`` reports. Starting a file whose
    import did not finish resumes that job."""
    try:
        job = jobs.launch(
            session,
            runner=jobs.runner(request.app.state),
            directory=uploads_dir(request),
            upload_id=body.upload_id,
            kind=body.kind,
            actor=user,
            overrides=body.mapping or None,
            dry_run=body.dry_run,
            timezone=request.app.state.settings.timezone,
        )
    except (ValidationFailed, UnreadableFile) as exc:
        return invalid(request, exc, body.kind)
    return jobs.to_read(job, lang=request_language(request))


@router.get("/jobs", response_model=ImportJobPage)
def list_jobs(
    request: Request,
    session: SessionDep,
    user: Importer,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> ImportJobPage:
    """Recent import jobs, newest first (``mine``: only those you started)."""
    lang = request_language(request)
    recent = jobs.list_jobs(session, created_by=user.id if mine else None, limit=limit)
    return ImportJobPage(items=[jobs.to_read(j, lang=lang) for j in recent])


@router.get("/jobs/{job_id}", response_model=ImportJobRead)
def get_job(
    job_id: PathId,
    request: Request,
    session: SessionDep,
    user: Importer,
    errors: Annotated[int, Query(ge=0, le=1000, description="first rejected rows listed")] = 20,
) -> ImportJobRead:
    """A job's status, counts, rows per second, time left and first rejected rows."""
    return jobs.read_job(session, job_id=job_id, lang=request_language(request), errors=errors)


@router.get(
    "/jobs/{job_id}/errors.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def error_csv(job_id: PathId, request: Request, session: SessionDep, user: Importer) -> Response:
    """Every rejected row of a job as CSV (UTF-8 with BOM, for Excel): row, column, masked
    value, code and the message in the user's language."""
    job = jobs.get_job(session, job_id=job_id)
    kind = jobs.kind_of(job.kind)
    lang = request_language(request)
    # Streamed with a session of its own: the request's may be closed before the body is sent.
    sessionmaker = request.app.state.sessionmaker

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        buf.write("\ufeff")
        out = csv.writer(buf)
        out.writerow(ERROR_CSV_COLUMNS)
        with sessionmaker() as own:
            for n, e in enumerate(service.job_errors(own, job_id), start=1):
                out.writerow(
                    [
                        e.row,
                        neutralise(e.column or ""),
                        neutralise(e.value or ""),
                        e.code,
                        uploads.message_in(lang, e.code, e.message, kind=kind),
                    ]
                )
                if n % 1000 == 0:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-errors.csv"'},
    )
