"""Attachments of tickets and claims (photos of damage, letters, call recordings): kept as
files under ``data_dir/attachments``, described by an :class:`Attachment` row.

A file is accepted only when its name's extension is on the allow-list *and* its content,
sniffed with the ``filetype`` library (text by our own check), is of that type: a program
renamed ``.jpg`` is refused, and so are scripts, web pages, SVG and macro documents
whatever they are called. Bytes are streamed to disk in chunks, the size limit enforced
while reading, the SHA-256 computed on the way; the file is readable by the service's user
only and never executable. Its row and audit entry are written in one transaction; when
that fails the file is removed again, so no file is left without its row.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
import zipfile
from codecs import getincrementaldecoder
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

import filetype
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.config import Settings, get_settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.core.web import human_bytes
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.tickets.models import Attachment, Claim, Ticket

log = logging.getLogger("guanxi.attachments")

# Most files one ticket or one claim may carry: enough for a case's photos and letters,
# few enough that a runaway client cannot fill the disk through one ticket.
MAX_PER_TARGET = 20
FILENAME_MAX = 200  # the column's width
_CHUNK = 64 * 1024
# Bytes looked at to recognise a type (filetype reads at most this many).
_HEAD = 8192
_FOLDER = "attachments"
_KEY = re.compile(r"^[0-9a-f]{32}$")

_TEXT = "text"
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class AllowedType:
    """An extension that may be attached: the type it is served as, and the types the
    content may be recognised as (``_TEXT``: plain text by our own check)."""

    content_type: str
    sniffed: frozenset[str]


def _allowed(content_type: str, *sniffed: str) -> AllowedType:
    return AllowedType(content_type, frozenset(sniffed or (content_type,)))


# The allow-list, by lower-case extension. Call recordings come as mp3, m4a or amr (the
# format of many phone systems); an m4a recorded by some phones is recognised as mp4.
ALLOWED_TYPES: dict[str, AllowedType] = {
    "jpg": _allowed("image/jpeg"),
    "jpeg": _allowed("image/jpeg"),
    "png": _allowed("image/png"),
    "gif": _allowed("image/gif"),
    "webp": _allowed("image/webp"),
    "heic": _allowed("image/heic"),
    "pdf": _allowed("application/pdf"),
    "txt": _allowed("text/plain", _TEXT),
    "csv": _allowed("text/csv", _TEXT),
    "docx": _allowed(_DOCX),
    "xlsx": _allowed(_XLSX),
    "mp3": _allowed("audio/mpeg"),
    "m4a": _allowed("audio/mp4", "audio/mp4", "video/mp4"),
    "amr": _allowed("audio/amr"),
    "mp4": _allowed("video/mp4"),
}

# What a download can be served as (documented in the OpenAPI of the download routes).
DOWNLOAD_CONTENT: dict[str, dict[str, object]] = {
    "application/octet-stream": {},
    **{allowed.content_type: {} for allowed in ALLOWED_TYPES.values()},
}

# Declared types that are refused whatever the name and content say: a browser or client
# that calls a file one of these means it to be run or rendered.
_REFUSED_DECLARED = re.compile(
    r"^(text/html|application/xhtml|image/svg|text/javascript|application/(x-)?javascript|"
    r"application/x-(sh|csh|msdownload|msdos-program|dosexec|executable|elf|bat|msi|httpd-php)|"
    r"application/vnd\.microsoft\.portable-executable|application/java-archive)",
    re.IGNORECASE,
)
# Text that a browser or shell would treat as markup or a program.
_MARKUP = re.compile(
    r"<\s*(script|html|svg|iframe|body|object|embed|meta|!doctype)\b|<\?php|<%", re.IGNORECASE
)


def _file_error(code: str, **params: Any) -> FieldError:
    return FieldError(("file",), code, ERROR_MESSAGES[code].format(**params), params)


class AttachmentTooLarge(ValidationFailed):
    """The file is over ``attachment_max_bytes``; nothing of it was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__([_file_error("file_too_large", limit=human_bytes(limit))])
        self.limit = limit


def allowed_extensions() -> str:
    """The extensions that may be attached, for messages and the upload form."""
    return ", ".join(ALLOWED_TYPES)


def clean_filename(name: str) -> str:
    """A file name safe to keep and show: no folders (Windows or POSIX), no control or
    format characters, no quotes; NFC; at most 200 characters with the extension kept."""
    base = PurePosixPath(PureWindowsPath(name or "").name).name
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        "_" if unicodedata.category(ch)[0] == "C" or ch in '"\\/:*?<>|' else ch for ch in base
    )
    base = base.strip().strip(".").strip()
    if len(base) > FILENAME_MAX:
        stem, dot, ext = base.rpartition(".")
        keep = f".{ext}" if dot and len(ext) <= 10 else ""
        base = (stem if keep else base)[: FILENAME_MAX - len(keep)] + keep
    return base


def _extension(name: str) -> str:
    _stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def _text_charset(head: bytes, complete: bool) -> str | None:
    """The charset plain text ``head`` is in (UTF-8 strictly, else GB18030), or None when
    it is not text (NUL bytes, undecodable, markup or a script)."""
    if b"\x00" in head:
        return None
    for charset in ("utf-8", "gb18030"):
        try:
            # An unfinished multi-byte character at the end of the head is not an error.
            text = getincrementaldecoder(charset)().decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        start = text.lstrip("\ufeff \t\r\n")
        if start.startswith(("#!", "<")) or _MARKUP.search(text):
            return None
        return charset
    return None


def sniff(head: bytes, ext: str, *, complete: bool) -> str:
    """The content type to store for a file named ``*.ext`` whose first bytes are
    ``head`` (``complete``: the whole file); :class:`ValidationFailed` naming ``file``
    when the extension is not allowed or the content is not of that type."""
    allowed = ALLOWED_TYPES.get(ext)
    if allowed is None:
        raise ValidationFailed([_file_error("attachment_type", allowed=allowed_extensions())])
    if _TEXT in allowed.sniffed:
        if filetype.guess(head) is None:
            charset = _text_charset(head, complete)
            if charset is not None:
                return f"{allowed.content_type}; charset={charset}"
        raise ValidationFailed([_file_error("attachment_refused")])
    kind = filetype.guess(head)
    if kind is None or kind.mime not in allowed.sniffed:
        raise ValidationFailed([_file_error("attachment_content", ext=ext)])
    return allowed.content_type


def _has_macros(path: Path) -> bool:
    """Whether an Office Open XML file carries a VBA project (or is no zip at all)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.lower().endswith("vbaproject.bin") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return True


def storage_root(settings: Settings) -> Path:
    """Where attachment files live: ``<data_dir>/attachments``."""
    return Path(settings.data_dir) / _FOLDER


def _path_of(root: Path, key: str) -> Path:
    # Two levels of 256 folders keep directories small at millions of files.
    return root / key[:2] / key[2:4] / key


def _read_head(stream: BinaryIO) -> bytes:
    """The first bytes of ``stream`` (a read may return fewer than asked)."""
    head = b""
    while len(head) < _HEAD:
        chunk = stream.read(_HEAD - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _write(stream: BinaryIO, head: bytes, path: Path, max_bytes: int) -> tuple[int, str]:
    """Write ``head`` and the rest of ``stream`` to ``path`` (owner read/write only),
    stopping past ``max_bytes``; (size, SHA-256). The caller removes the file on error."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    # O_EXCL: a key that somehow exists is never overwritten; O_NOFOLLOW: no symlink games.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        # The mode is set again explicitly: the umask can only remove bits, never add the
        # execute bit, but the stored file must be 0600 whatever the process umask is.
        os.fchmod(out.fileno(), 0o600)
        chunk = head
        while chunk:
            size += len(chunk)
            if size > max_bytes:
                raise AttachmentTooLarge(max_bytes)
            digest.update(chunk)
            out.write(chunk)
            chunk = stream.read(_CHUNK)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


@dataclass(frozen=True)
class Received:
    """A checked file kept under the storage root: what its row records, and where the
    bytes are (the caller removes them when its own transaction fails)."""

    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_key: str
    path: Path


def receive(
    *, filename: str, declared_type: str | None, stream: BinaryIO, settings: Settings | None = None
) -> Received:
    """Check an uploaded file and keep its bytes under ``data_dir/attachments`` by a random
    key; the rules of every upload (tickets, claims, contracts' documents).

    Checks, in order: the name's extension is allowed and the declared type is not a
    program or page; the content is of the extension's type; the size stays within
    ``settings.attachment_max_bytes`` (enforced while streaming); an Office file carries
    no macros. A refusal is a :class:`ValidationFailed` naming ``file``
    (:class:`AttachmentTooLarge` for the size) and leaves no file behind.
    """
    settings = settings or get_settings()
    name = clean_filename(filename)
    ext = _extension(name)
    if not name:
        raise ValidationFailed([_file_error("attachment_missing")])
    if ext not in ALLOWED_TYPES:
        raise ValidationFailed([_file_error("attachment_type", allowed=allowed_extensions())])
    if declared_type and _REFUSED_DECLARED.match(declared_type.strip()):
        raise ValidationFailed([_file_error("attachment_refused")])
    head = _read_head(stream)
    if not head:
        raise ValidationFailed([_file_error("attachment_empty")])
    content_type = sniff(head, ext, complete=len(head) < _HEAD)

    key = secrets.token_hex(16)
    path = _path_of(storage_root(settings), key)
    try:
        size, sha256 = _write(stream, head, path, settings.attachment_max_bytes)
        if content_type in (_DOCX, _XLSX) and _has_macros(path):
            raise ValidationFailed([_file_error("attachment_refused")])
    except BaseException:
        # Whatever failed (size, content), the file must not outlive it.
        path.unlink(missing_ok=True)
        raise
    return Received(name, content_type, size, sha256, key, path)


def stored_path(storage_key: str, settings: Settings | None = None) -> Path | None:
    """Where the bytes of a received file are; None when the key is malformed or the file
    is missing (a restore without ``data_dir/attachments``? logged)."""
    if not _KEY.fullmatch(storage_key):
        return None
    path = _path_of(storage_root(settings or get_settings()), storage_key)
    if not path.is_file():
        log.error("stored file %s...: missing under the data directory", storage_key[:8])
        return None
    return path


def _visible_to(
    session: Session, viewer: User | None, ticket_id: int | None, claim_id: int | None
) -> bool:
    """Whether ``viewer`` may see the ticket or claim (a claim through its ticket) under
    their row-level scope (tickets.service.can_see_ticket); None: the system. A scoped
    viewer sees a claim without a ticket only if unscoped, as scopes list what is allowed."""
    # Imported here: the ticket service imports half the domains, which import this module.
    from guanxi.security.scope import scope_of
    from guanxi.tickets.service import can_see_ticket

    if viewer is None or scope_of(viewer) is None:
        return True
    if claim_id is not None:
        claim = session.get(Claim, claim_id)
        ticket_id = claim.ticket_id if claim is not None else None
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    return ticket is not None and can_see_ticket(session, viewer, ticket)


def _lock_target(session: Session, ticket_id: int | None, claim_id: int | None) -> None:
    """Lock the ticket or claim the file goes on (so two uploads cannot both pass the
    count check), or NotFound."""
    model: type[Ticket] | type[Claim] = Ticket if ticket_id is not None else Claim
    target_id = ticket_id if ticket_id is not None else claim_id
    found = session.scalar(select(model.id).where(model.id == target_id).with_for_update())
    if found is None:
        raise NotFound(f"{model.__tablename__} not found", id=target_id)


def store(
    session: Session,
    *,
    ticket_id: int | None = None,
    claim_id: int | None = None,
    filename: str,
    declared_type: str | None,
    stream: BinaryIO,
    actor: User | None = None,
    from_customer: bool = False,
    settings: Settings | None = None,
) -> Attachment:
    """Keep an uploaded file on a ticket or a claim and return its row.

    Checks, in order: the name's extension is allowed and the declared type is not a
    program or page; the content is of the extension's type; the size stays within
    ``settings.attachment_max_bytes`` (enforced while streaming); the target exists and
    has fewer than :data:`MAX_PER_TARGET` files. Any refusal is a :class:`ValidationFailed`
    naming ``file`` (:class:`AttachmentTooLarge` for the size), or :class:`NotFound` for
    the target, and leaves no row and no file behind.
    """
    if (ticket_id is None) == (claim_id is None):
        raise ValueError("an attachment belongs to exactly one ticket or claim")
    if not _visible_to(session, actor, ticket_id, claim_id):
        target = "ticket" if ticket_id is not None else "claim"
        raise NotFound(f"{target} not found", id=ticket_id or claim_id)
    received = receive(
        filename=filename, declared_type=declared_type, stream=stream, settings=settings
    )
    name, content_type = received.filename, received.content_type
    size, sha256, key = received.size_bytes, received.sha256, received.storage_key
    try:
        with write_transaction(session):
            _lock_target(session, ticket_id, claim_id)
            owner = Attachment.ticket_id if ticket_id is not None else Attachment.claim_id
            count = session.scalar(
                select(func.count(Attachment.id)).where(owner == (ticket_id or claim_id))
            )
            if (count or 0) >= MAX_PER_TARGET:
                raise ValidationFailed([_file_error("attachment_count", limit=MAX_PER_TARGET)])
            row = Attachment(
                ticket_id=ticket_id,
                claim_id=claim_id,
                filename=name,
                content_type=content_type,
                size_bytes=size,
                sha256=sha256,
                storage_key=key,
                from_customer=from_customer,
                uploaded_by=actor.id if actor is not None else None,
                uploaded_at=clock.now(),
            )
            session.add(row)
            session.flush()
            target = "ticket" if ticket_id is not None else "claim"
            record(
                session,
                actor=actor_of(actor) if actor is not None else Actor.system("customer"),
                action=f"{target}.attachment_added",
                target_type=target,
                target_id=ticket_id or claim_id or 0,
                # The file's name stays out of the log: people name files after
                # customers ("张三身份证.jpg"), and the log holds no clear personal data.
                after={
                    "attachment_id": row.id,
                    "content_type": content_type,
                    "size_bytes": size,
                    "sha256": sha256,
                    "from_customer": from_customer,
                },
            )
    except BaseException:
        # Whatever failed (the count, the database), the file must not outlive it.
        received.path.unlink(missing_ok=True)
        raise
    return row


def list_for(
    session: Session,
    *,
    ticket_id: int | None = None,
    claim_id: int | None = None,
    viewer: User | None = None,
) -> list[Attachment]:
    """The files of a ticket or a claim, oldest first; NotFound when ``viewer`` may not
    see the ticket (out of scope)."""
    if not _visible_to(session, viewer, ticket_id, claim_id):
        kind = "ticket" if ticket_id is not None else "claim"
        raise NotFound(f"{kind} not found", id=ticket_id or claim_id)
    owner = Attachment.ticket_id if ticket_id is not None else Attachment.claim_id
    target = ticket_id if ticket_id is not None else claim_id
    stmt = select(Attachment).where(owner == target).order_by(Attachment.id)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Download:
    """A stored file ready to send: its row (name, type) and where its bytes are."""

    attachment: Attachment
    path: Path


def open_for_download(
    session: Session,
    *,
    attachment_id: int,
    settings: Settings | None = None,
    viewer: User | None = None,
) -> Download:
    """The attachment and the path of its bytes; NotFound when either is missing or
    ``viewer`` may not see its ticket (out of scope looks the same as missing)."""
    row = session.get(Attachment, attachment_id)
    if row is not None and not _visible_to(session, viewer, row.ticket_id, row.claim_id):
        row = None
    # A row that outlived its file is answered as any missing file (stored_path logs it).
    path = stored_path(row.storage_key, settings) if row is not None else None
    if row is None or path is None:
        raise NotFound("attachment not found", attachment_id=attachment_id)
    return Download(row, path)
