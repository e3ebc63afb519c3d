"""API shapes of imports started from the web page or the API: an upload's preview
(``UploadRead``), the request to start a job (``ImportJobCreate``) and a job's progress and
report (``ImportJobRead``, ``ImportJobPage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.imports.enums import ImportKind

# An upload is named by its content's SHA-256 and the suffix the file readers go by.
UPLOAD_ID_PATTERN = r"^[0-9a-f]{64}(\.(csv|tsv|txt|xlsx|xlsm|xls|ods))?$"

UploadId = Annotated[str, StringConstraints(pattern=UPLOAD_ID_PATTERN)]
Header = Annotated[str, StringConstraints(max_length=200)]
FieldName = Annotated[str, StringConstraints(max_length=50)]


class ImportFieldRead(BaseModel):
    """A field a column can be mapped to (the mapping dropdown's options)."""

    name: str
    label: str
    required: bool  # some column must feed it (or one of its alternatives)
    many: bool  # several columns may feed it (phones)


class UploadRead(BaseModel):
    """A stored upload read as ``kind``: its header, first rows and proposed mapping."""

    upload_id: str
    file_name: str
    size: int
    kind: ImportKind
    format: str
    encoding: str | None
    headers: list[str]
    rows: list[list[str]]
    mapping: dict[str, str | None]  # header -> field, None: not imported
    unknown_columns: list[str]
    missing_required: list[list[str]]  # each entry: a column for any one of these fields
    fields: list[ImportFieldRead]


class ImportJobCreate(BaseModel):
    """Start importing (or, ``dry_run``, checking) an upload.

    ``mapping`` overrides the proposal column by column: header -> field, or None to leave
    the column out; columns not named keep the proposal.
    """

    model_config = ConfigDict(extra="forbid")

    upload_id: UploadId
    kind: ImportKind
    mapping: Annotated[dict[Header, FieldName | None], Field(max_length=500)] = Field(
        default_factory=dict
    )
    dry_run: bool = False


class RowErrorRead(BaseModel):
    """One reason a row was rejected; personal values are masked, the message translated."""

    row: int
    column: str | None
    value: str | None
    code: str
    message: str


class ImportJobRead(BaseModel):
    """An import job: progress while it runs, the counts and first errors when done.

    ``rows_done`` counts data rows of committed batches; ``rows_total`` is estimated from the
    file's line count (None for spreadsheets). ``status`` is the stored value (``running``,
    ``finished``, ``failed``; a dry run's ``validating``, ``validated``, ``dry_failed``);
    ``state`` is the same without the dry-run distinction.
    """

    id: int
    kind: str
    file_name: str
    status: str
    state: Literal["running", "finished", "failed"]
    dry_run: bool
    rows_total: int | None
    rows_done: int
    imported: int
    updated: int
    unchanged: int
    rejected: int
    errors_total: int | None = None
    message: str | None
    created_by: int | None
    started_at: datetime
    finished_at: datetime | None
    seconds: float
    progress: float | None  # 0..1
    rate: float | None  # rows per second
    eta_seconds: int | None
    errors: list[RowErrorRead] = Field(default_factory=list)


class ImportJobPage(BaseModel):
    """Recent import jobs, newest first."""

    items: list[ImportJobRead]
