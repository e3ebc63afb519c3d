"""The manifest of a backup: what it holds and the figures a restore is checked against.

A backup is one directory::

    guanxi-20261126T101500Z/
        manifest.json            this file's model, written last
        database.sqlite3         SQLite: a page-for-page copy (online backup API)
        database.pgdump          PostgreSQL: pg_dump's custom format
        files/attachments/...    the record files under the data directory

Every file but the manifest is listed with its size and SHA-256, so one changed byte or a
missing file is found before anything is restored.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

FORMAT = 1
MANIFEST = "manifest.json"
FILES = "files"
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
_CHUNK = 1 << 20


class FileEntry(BaseModel):
    """One file of the backup: its size and SHA-256."""

    model_config = ConfigDict(extra="forbid")

    size: int
    sha256: str


class AuditHead(BaseModel):
    """The last entry of the audit chain in the backup: restored chains must end on it."""

    model_config = ConfigDict(extra="forbid")

    id: int
    hash: str


class Manifest(BaseModel):
    """Everything a backup holds and the figures its restore is checked against."""

    model_config = ConfigDict(extra="forbid")

    format: int
    created_at: datetime
    guanxi_version: str
    alembic_revision: str | None
    dialect: Literal["sqlite", "postgresql"]
    database_file: str
    # Rows per table, counted in the very snapshot the database copy was taken from.
    tables: dict[str, int]
    audit_head: AuditHead | None
    # Field-encryption key ids at backup time with a fingerprint (SHA-256 of the key): the
    # keys are kept apart from the backup, and a restore refuses keys that do not match.
    active_field_key: str
    field_key_fingerprints: dict[str, str]
    # Path relative to the backup directory (POSIX separators) -> size and SHA-256.
    files: dict[str, FileEntry]


class ManifestError(Exception):
    """The manifest is missing or unreadable; the message says which."""


def sha256_of(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically (a temporary name, then rename), owner-only."""
    tmp = directory / (MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(manifest.model_dump_json(indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the backup in ``directory``, or :class:`ManifestError`."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ManifestError(f"{directory}: not a backup directory")
    if not path.is_file():
        raise ManifestError(f"{MANIFEST} missing: not a complete backup")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        raise ManifestError(f"{MANIFEST} unreadable: {exc}") from None
    if manifest.format != FORMAT:
        raise ManifestError(f"backup format {manifest.format} is not supported (need {FORMAT})")
    return manifest
