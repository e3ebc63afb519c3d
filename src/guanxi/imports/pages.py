"""HTML pages of imports: upload a file, check the proposed column mapping against a
preview, start a dry run or the import, and follow it (htmx polls the progress)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from guanxi.core import i18n
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import BodyLimit, ParsedForm, body_limit, human_bytes, request_language
from guanxi.imports import jobs, service, uploads
from guanxi.imports.api import uploads_dir
from guanxi.imports.enums import ImportKind
from guanxi.imports.readers import UnreadableFile
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import list_users
from guanxi.web.render import render

router = APIRouter()

Importer = Annotated[User, require(Permission.data_import)]
UPLOAD_LIMIT = BodyLimit(
    "/imports/upload", "max_upload_bytes", field="file", page="imports/too_large.html"
)
FIRST_ERRORS = 50
MAP_PREFIX = "map:"  # a mapping <select> is named after its column: map:<header>

KIND_LABELS = {
    ImportKind.customers: N_("Customers"),
    ImportKind.contacts: N_("Contact persons"),
    ImportKind.shipments: N_("Shipments"),
}
STATUS_LABELS = {
    "running": N_("Importing"),
    "finished": N_("Finished"),
    "failed": N_("Failed"),
    service.DRY_RUNNING: N_("Checking"),
    service.DRY_FINISHED: N_("Checked"),
    service.DRY_FAILED: N_("Check failed"),
}


def _messages(lang: str, errors: list[FieldError], kind: ImportKind | None) -> dict[str, str]:
    """Form errors by field (``mapping.<header>`` for a column), in ``lang``."""
    out: dict[str, str] = {}
    for e in errors:
        key = ".".join(str(p) for p in e.loc)
        text = uploads.message_in(lang, e.code, e.message, e.params or None, kind)
        out[key] = f"{out[key]}; {text}" if key in out else text
    return out


def _index(
    request: Request,
    session: Any,
    *,
    errors: dict[str, str] | None = None,
    kind: str = ImportKind.customers.value,
    status_code: int = 200,
) -> Response:
    recent = jobs.list_jobs(session, limit=20)
    names = {u.id: u.display_name for u in list_users(session)}
    lang = request_language(request)
    return render(
        request,
        "imports/index.html",
        status_code=status_code,
        errors=errors or {},
        kind=kind,
        kind_options=[(k.value, i18n.gettext(lang, label)) for k, label in KIND_LABELS.items()],
        kinds=KIND_LABELS,
        statuses=STATUS_LABELS,
        jobs=[jobs.to_read(j, lang=lang) for j in recent],
        names=names,
        max_size=human_bytes(request.app.state.settings.max_upload_bytes),
    )


def _preview(
    request: Request,
    preview: uploads.UploadPreview,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    lang = request_language(request)
    fields = [
        (f, uploads.field_label(lang, preview.kind, f.name))
        for f in uploads.import_fields(preview.kind)
    ]
    return render(
        request,
        "imports/preview.html",
        status_code=status_code,
        p=preview,
        fields=fields,
        kinds=KIND_LABELS,
        errors=errors or {},
        problems=_missing(lang, preview),
        size=human_bytes(preview.upload.size),
        map_prefix=MAP_PREFIX,
    )


def _missing(lang: str, preview: uploads.UploadPreview) -> list[str]:
    return [
        uploads.message_in(
            lang,
            "mapping_required",
            "",
            {"fields": " / ".join(options)},
            preview.kind,
        )
        for options in preview.missing_required
    ]


def _overrides(values: Any) -> dict[str, str | None]:
    """The mapping <select>s of a submitted form: header -> field, "" meaning "ignore"."""
    return {
        key[len(MAP_PREFIX) :]: (value or None)
        for key, value in values.multi_items()
        if key.startswith(MAP_PREFIX) and isinstance(value, str)
    }


@router.get("/imports", response_class=HTMLResponse)
def imports_home(request: Request, session: SessionDep, user: Importer) -> Response:
    """Choose what to import and the file; the recent jobs below."""
    return _index(request, session)


@router.post(UPLOAD_LIMIT.path, response_class=HTMLResponse)
@body_limit(UPLOAD_LIMIT)
def upload(request: Request, session: SessionDep, user: Importer, form: ParsedForm) -> Response:
    """Store the file and go to its preview; a bad choice or file shows the form again."""
    kind = str(form.get("kind") or "")
    file = form.get("file")
    lang = request_language(request)
    chosen = jobs.kind_of(kind)
    errors: dict[str, str] = {}
    if chosen is None:
        errors["kind"] = i18n.gettext(lang, "Choose what the file holds")
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = uploads.message_in(
            lang, "upload_missing", uploads.MESSAGES["upload_missing"], {}
        )
    if errors or chosen is None or not isinstance(file, UploadFile):
        return _index(request, session, errors=errors, kind=kind, status_code=422)
    try:
        preview = uploads.receive_upload(
            file.file,
            file_name=file.filename or "",
            kind=chosen,
            directory=uploads_dir(request),
            max_bytes=request.app.state.settings.max_upload_bytes,
        )
    except uploads.UploadTooLarge:
        message = i18n.gettext(
            lang,
            "The file is larger than {limit}",
            limit=human_bytes(request.app.state.settings.max_upload_bytes),
        )
        return _index(request, session, errors={"file": message}, kind=kind, status_code=413)
    except UnreadableFile as exc:
        message = uploads.message_in(lang, exc.code, exc.message)
        return _index(request, session, errors={"file": message}, kind=kind, status_code=422)
    return RedirectResponse(
        f"/imports/uploads/{preview.upload.upload_id}?kind={chosen.value}", status_code=303
    )


def _load_preview(
    request: Request, upload_id: str, kind: str, overrides: dict[str, str | None] | None = None
) -> uploads.UploadPreview:
    """The preview of a stored upload; ValidationFailed / UnreadableFile as the service's."""
    chosen = jobs.kind_of(kind)
    if chosen is None:
        raise ValidationFailed([FieldError(("kind",), "enum", "Unknown value")])
    upload = uploads.load_upload(uploads_dir(request), upload_id)
    return uploads.preview_upload(upload, kind=chosen, overrides=overrides)


@router.get("/imports/uploads/{upload_id}", response_class=HTMLResponse)
def upload_preview(
    upload_id: str,
    request: Request,
    session: SessionDep,
    user: Importer,
    kind: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The first rows and a mapping dropdown per column; dry run or import from here."""
    lang = request_language(request)
    try:
        preview = _load_preview(request, upload_id, kind)
    except ValidationFailed as exc:
        # The upload is gone (or the link is broken): ask for the file again.
        shown = {"file": "; ".join(_messages(lang, exc.errors, None).values())}
        return _index(request, session, errors=shown, status_code=404)
    except UnreadableFile as exc:
        message = uploads.message_in(lang, exc.code, exc.message)
        return _index(request, session, errors={"file": message}, status_code=422)
    return _preview(request, preview)


@router.get("/imports/uploads/{upload_id}/check", response_class=HTMLResponse)
def check_mapping(
    upload_id: str,
    request: Request,
    user: Importer,
    kind: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """What the chosen mapping still lacks (htmx asks on every change of a dropdown)."""
    lang = request_language(request)
    chosen = jobs.kind_of(kind)
    problems: list[str] = []
    try:
        preview = _load_preview(request, upload_id, kind, _overrides(request.query_params))
    except ValidationFailed as exc:
        problems = list(_messages(lang, exc.errors, chosen).values())
    except UnreadableFile as exc:
        problems = [uploads.message_in(lang, exc.code, exc.message)]
    else:
        problems = _missing(lang, preview)
    return render(request, "imports/_mapping_status.html", problems=problems)


@router.post("/imports/jobs", response_class=HTMLResponse)
def start_job(request: Request, session: SessionDep, user: Importer, form: ParsedForm) -> Response:
    """Start the dry run or the import and follow it; a mapping that cannot work shows the
    preview again with the reason next to each column."""
    lang = request_language(request)
    upload_id = str(form.get("upload_id") or "")
    kind = str(form.get("kind") or "")
    overrides = _overrides(form)
    chosen = jobs.kind_of(kind)
    try:
        if chosen is None:
            raise ValidationFailed([FieldError(("kind",), "enum", "Unknown value")])
        job = jobs.launch(
            session,
            runner=jobs.runner(request.app.state),
            directory=uploads_dir(request),
            upload_id=upload_id,
            kind=chosen,
            actor=user,
            overrides=overrides or None,
            dry_run=form.get("dry_run") == "1",
            timezone=request.app.state.settings.timezone,
        )
    except (ValidationFailed, UnreadableFile) as exc:
        if isinstance(exc, UnreadableFile):
            errors = {"file": uploads.message_in(lang, exc.code, exc.message)}
        else:
            errors = _messages(lang, exc.errors, chosen)
        try:
            # Shown with the proposal; the columns' messages say what to change.
            preview = _load_preview(request, upload_id, kind)
        except (ValidationFailed, UnreadableFile):
            shown = {"file": "; ".join(errors.values())}
            return _index(request, session, errors=shown, status_code=422)
        return _preview(request, preview, errors=errors, status_code=422)
    return RedirectResponse(f"/imports/jobs/{job.id}", status_code=303)


def _duration(seconds: float) -> str:
    """``3725`` -> ``1:02:05``, ``65`` -> ``1:05``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _job_context(request: Request, session: Any, job_id: int) -> dict[str, Any]:
    lang = request_language(request)
    # Polled every second while the job runs: the job row is read once.
    stored = jobs.get_job(session, job_id=job_id)
    first, total = jobs.first_errors(session, job_id=job_id, limit=FIRST_ERRORS)
    job = jobs.to_read(stored, lang=lang, errors=first, errors_total=total)
    # After a clean dry run, the same file can be imported with the same columns at once.
    again = None
    if job.dry_run and job.state == "finished":
        again = uploads.upload_id_of(stored, uploads_dir(request))
    return {
        "job": job,
        "kinds": KIND_LABELS,
        "statuses": STATUS_LABELS,
        "duration": _duration,
        "upload_id": again,
        "mapping": stored.mapping,
        "map_prefix": MAP_PREFIX,
    }


@router.get("/imports/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: PathId, request: Request, session: SessionDep, user: Importer) -> Response:
    """One job: progress while it runs, then its counts and first rejected rows."""
    return render(request, "imports/job.html", **_job_context(request, session, job_id))


@router.get("/imports/jobs/{job_id}/progress", response_class=HTMLResponse)
def job_progress(job_id: PathId, request: Request, session: SessionDep, user: Importer) -> Response:
    """The progress block alone (polled every second while the job runs)."""
    return render(request, "imports/_progress.html", **_job_context(request, session, job_id))
