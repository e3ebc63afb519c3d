"""Import files uploaded through the web page or the API: stored under the data directory
(by content hash, streamed to disk, readable by the owner only), previewed with a proposed
column mapping, and removed once imported or a week after upload. Also the labels and
translated messages the page and the API show for import fields and row errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from itertools import islice
from pathlib import Path, PureWindowsPath
from typing import Any, BinaryIO

from guanxi.core import i18n
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.imports.enums import ImportKind
from guanxi.imports.mapping import FIELDS, ColumnMap, build_map, header_key
from guanxi.imports.models import ImportJob
from guanxi.imports.readers import UnreadableFile, open_table
from guanxi.imports.rows import CSV_ERROR
from guanxi.imports.schemas import UPLOAD_ID_PATTERN
from guanxi.imports.service import missing_required, required_fields

PREVIEW_ROWS = 20
PREVIEW_CELL = 200  # characters of a cell shown in a preview
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods")
# Uploads hold personal data in clear: an import that finishes removes its file, and any
# left over (dry runs, abandoned previews) is removed this long after its upload.
UPLOAD_KEEP_SECONDS = 7 * 86400
_CHUNK = 1 << 20


# English source texts of the codes this section raises (translated at the edges).
MESSAGES: dict[str, str] = {
    "upload_missing": N_("Choose a file to upload"),
    "upload_unknown": N_("This upload is no longer available; upload the file again"),
    "mapping_column_unknown": N_("The file has no column named {column}"),
    "mapping_field_unknown": N_("No such field: {field}"),
    "mapping_duplicate": N_("{field} is chosen for more than one column"),
    "mapping_required": N_("No column is mapped to {fields}"),
    "job_failed": N_("The import stopped with an error ({error}); start it again to resume"),
}

FIELD_LABELS: dict[str, str] = {
    "guanxi_id": N_("Guanxi ID"),
    "external_id": N_("Customer number"),
    "name": N_("Name"),
    "kind": N_("Kind"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "id_number": N_("Resident ID number"),
    "credit_code": N_("Unified social credit code"),
    "address": N_("Address"),
    "province": N_("Province"),
    "city": N_("City"),
    "district": N_("District"),
    "address_detail": N_("Street address"),
    "source": N_("Source"),
    "industry": N_("Industry"),
    "region": N_("Region"),
    "owner": N_("Account manager"),
    "tags": N_("Tags"),
    "birthday": N_("Birthday"),
    "lifecycle_stage": N_("Lifecycle stage"),
    "credit_rating": N_("Credit rating"),
    "notes": N_("Notes"),
    "customer_external_id": N_("Customer: customer number"),
    "customer_credit_code": N_("Customer: credit code"),
    "customer_name": N_("Customer: name"),
    "customer_phone": N_("Customer: phone"),
    "title": N_("Title"),
    "is_primary": N_("Primary contact"),
    "waybill_no": N_("Waybill number"),
    "service_type": N_("Service"),
    "status": N_("Status"),
    "receiver_name": N_("Receiver name"),
    "receiver_phone": N_("Receiver phone"),
    "origin_province": N_("Origin province"),
    "origin_city": N_("Origin city"),
    "dest_province": N_("Destination province"),
    "dest_city": N_("Destination city"),
    "dest_district": N_("Destination district"),
    "weight_g": N_("Weight"),
    "fee_fen": N_("Fee"),
    "insured_value_fen": N_("Insured value"),
    "cod_amount_fen": N_("Cash on delivery"),
    "door_delivery": N_("Door delivery"),
    "signed_receipt_return": N_("Signed-receipt return"),
    "created_at": N_("Created at"),
    "promised_at": N_("Promised"),
    "delivered_at": N_("Delivered at"),
    "is_damaged": N_("Damaged"),
    "is_lost": N_("Lost"),
    "destination": N_("Travel destination"),
    "departure_date": N_("Departure date"),
    "return_date": N_("Return date"),
    "party_size": N_("Party size"),
    "product_name": N_("Product"),
    "quantity": N_("Quantity"),
}
# Where one field name means something else in one kind of file.
_KIND_FIELD_LABELS: dict[tuple[ImportKind, str], str] = {
    (ImportKind.shipments, "kind"): N_("Document type"),
    (ImportKind.contacts, "name"): N_("Contact name"),
}


def field_label(lang: str, kind: ImportKind | None, name: str) -> str:
    """A field's name for people, in ``lang`` (the code itself when it has no label)."""
    text = (kind is not None and _KIND_FIELD_LABELS.get((kind, name))) or FIELD_LABELS.get(name)
    return i18n.gettext(lang, text) if text else name


@cache
def _message_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(template)), re.DOTALL)


def message_in(
    lang: str,
    code: str,
    message: str,
    params: dict[str, Any] | None = None,
    kind: ImportKind | None = None,
) -> str:
    """An import message in ``lang``: the English text of a stored row error or of a
    :class:`FieldError` raised here, translated by its code.

    A stored message carries its values only inside the English text; they are read back
    with the code's template. Field names (``field`` / ``fields``) are shown by their labels.
    """
    template = ERROR_MESSAGES.get(code) or MESSAGES.get(code)
    if template is None or (lang == "en" and params is None):
        return message if lang == "en" or template is None else i18n.gettext(lang, template)
    if params is None:
        if "{" not in template:
            return i18n.gettext(lang, template)
        match = _message_pattern(template).fullmatch(message)
        if match is None:
            return message
        params = match.groupdict()
    shown = dict(params)
    for key in ("field", "fields"):
        if key in shown:
            names = str(shown[key]).split(" / ")
            shown[key] = " / ".join(field_label(lang, kind, n) for n in names)
    try:
        return i18n.gettext(lang, template, **shown)
    except (KeyError, IndexError, ValueError):
        return message


def _field_error(loc: tuple[str, ...], code: str, **params: Any) -> FieldError:
    return FieldError(loc, code, MESSAGES[code].format(**params), params)


class UploadTooLarge(Exception):
    """The uploaded file is over the configured limit (nothing of it is kept)."""


@dataclass(frozen=True)
class StoredUpload:
    """An uploaded file under the data directory, named by its SHA-256 and suffix."""

    upload_id: str
    path: Path
    file_name: str
    size: int

    @property
    def sha256(self) -> str:
        """The content hash (the start of the id)."""
        return self.upload_id[:64]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_upload(
    source: BinaryIO, *, file_name: str, directory: Path, max_bytes: int
) -> StoredUpload:
    """Copy ``source`` into ``directory`` chunk by chunk (never whole in memory), hashing it.

    Raises :class:`UploadTooLarge` past ``max_bytes``. A file is named by its content, so
    the same file uploaded twice is stored once, and importing it again resumes the
    unfinished job of the same file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    _purge_uploads(directory)
    name = PureWindowsPath(file_name).name[:255]  # browsers may send a full Windows path
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in UPLOAD_SUFFIXES else ""
    digest = hashlib.sha256()
    size = 0
    # mkstemp creates the file readable by its owner only: it holds personal data.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".part-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge
                digest.update(chunk)
                out.write(chunk)
        upload_id = digest.hexdigest() + suffix
        path = directory / upload_id
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    name = name or upload_id
    _sidecar(path).write_text(json.dumps({"file_name": name, "size": size}), encoding="utf-8")
    return StoredUpload(upload_id, path, name, size)


def load_upload(directory: Path, upload_id: str) -> StoredUpload:
    """The stored upload ``upload_id``; :class:`ValidationFailed` naming ``upload_id`` when
    the id is malformed or the file is gone (imported, or removed after a week)."""
    path = directory / upload_id
    if re.fullmatch(UPLOAD_ID_PATTERN, upload_id) and path.is_file():
        try:
            meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
            size = path.stat().st_size
        except (OSError, ValueError):
            meta, size = {}, 0
        name = meta.get("file_name") if isinstance(meta, dict) else None
        return StoredUpload(upload_id, path, str(name or upload_id), size)
    raise ValidationFailed([_field_error(("upload_id",), "upload_unknown")])


def discard_upload(upload: StoredUpload) -> None:
    """Remove an upload and its description."""
    upload.path.unlink(missing_ok=True)
    _sidecar(upload.path).unlink(missing_ok=True)


def _purge_uploads(directory: Path) -> None:
    cutoff = time.time() - UPLOAD_KEEP_SECONDS
    for entry in directory.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            continue  # removed meanwhile by another request or process


@dataclass(frozen=True)
class ImportField:
    """A field a column can be mapped to, for the mapping dropdown."""

    name: str
    required: bool
    many: bool


def import_fields(kind: ImportKind) -> list[ImportField]:
    """The fields of ``kind`` in the order the import knows them."""
    required = required_fields(kind)
    return [ImportField(f.name, f.name in required, f.many) for f in FIELDS[kind]]


@dataclass
class UploadPreview:
    """An upload read as one kind: header, first rows, the mapping and what it lacks."""

    upload: StoredUpload
    kind: ImportKind
    format: str
    encoding: str | None
    headers: list[str]
    rows: list[list[str]]
    columns: list[str | None]  # the field of each column, by position
    mapping: dict[str, str | None]
    unknown_columns: list[str]
    missing_required: list[tuple[str, ...]]


def _column_map(
    kind: ImportKind, headers: list[str], overrides: dict[str, str | None] | None
) -> ColumnMap:
    """:func:`build_map`, refusing overrides that name no column or no field, or give a
    field to two columns (the mapping would otherwise drop one silently)."""
    overrides = {k: (v or None) for k, v in (overrides or {}).items()}
    specs = {f.name: f for f in FIELDS[kind]}
    present = {header_key(h) for h in headers if h}
    errors = [
        _field_error(("mapping", header), "mapping_column_unknown", column=header)
        if header_key(header) not in present
        else _field_error(("mapping", header), "mapping_field_unknown", field=target)
        for header, target in overrides.items()
        if header_key(header) not in present or (target is not None and target not in specs)
    ]
    if errors:
        raise ValidationFailed(errors)
    cmap = build_map(kind, headers, overrides)
    unknown = set(cmap.unknown)
    errors = [
        _field_error(("mapping", header), "mapping_duplicate", field=target)
        for header, target in overrides.items()
        if target is not None and header in unknown
    ]
    if errors:
        raise ValidationFailed(errors)
    return cmap


def preview_upload(
    upload: StoredUpload, *, kind: ImportKind, overrides: dict[str, str | None] | None = None
) -> UploadPreview:
    """Read an upload's header and first rows and propose (or check) its column mapping.

    Raises :class:`UnreadableFile` for a file that cannot be read, :class:`ValidationFailed`
    for overrides that cannot apply.
    """
    table = open_table(upload.path)
    try:
        cmap = _column_map(kind, table.headers, overrides)
        width = len(table.headers)
        rows = [
            [c[:PREVIEW_CELL] for c in (cells + [""] * width)[:width]]
            if cells != [CSV_ERROR]
            else [""] * width
            for _, cells in islice(table.rows(), PREVIEW_ROWS)
        ]
    finally:
        table.close()
    return UploadPreview(
        upload=upload,
        kind=kind,
        format=table.format,
        encoding=table.encoding,
        headers=table.headers,
        rows=rows,
        columns=[cmap.fields[i].name if i in cmap.fields else None for i in range(width)],
        mapping=cmap.as_json(),
        unknown_columns=cmap.unknown,
        missing_required=missing_required(kind, cmap),
    )


def receive_upload(
    source: BinaryIO, *, file_name: str, kind: ImportKind, directory: Path, max_bytes: int
) -> UploadPreview:
    """Store an uploaded file (:func:`save_upload`) and preview it as ``kind``.

    Raises :class:`UploadTooLarge`, or :class:`UnreadableFile` — a file that cannot be read
    is not kept.
    """
    upload = save_upload(source, file_name=file_name, directory=directory, max_bytes=max_bytes)
    try:
        return preview_upload(upload, kind=kind)
    except UnreadableFile:
        discard_upload(upload)
        raise


def upload_id_of(job: ImportJob, directory: Path) -> str | None:
    """The upload a job's file is still stored as (to import it after a dry run), if any."""
    suffix = Path(job.file_name).suffix.lower()
    upload_id = job.file_sha256 + (suffix if suffix in UPLOAD_SUFFIXES else "")
    return upload_id if (directory / upload_id).is_file() else None
