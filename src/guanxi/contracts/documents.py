"""Documents attached to contracts (the signed PDF, scans, price annexes): uploaded through
the same checks as the tickets' attachments (:func:`guanxi.tickets.attachments.receive`:
type by name and content, size limit while streaming, clean names, no macros) and kept
beside them under ``data_dir/attachments``. Downloads are for whoever can see the
contract; uploads for whoever may write it. Documents are evidence: none is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.config import Settings
from guanxi.contracts.models import Contract, ContractDocument
from guanxi.contracts.schemas import DocumentRead
from guanxi.contracts.service import get_contract, get_for_write
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.tickets import attachments

# As many files as a ticket may carry.
MAX_PER_CONTRACT = attachments.MAX_PER_TARGET


def to_read(row: ContractDocument) -> DocumentRead:
    """The API shape of a document, with its download address."""
    return DocumentRead(
        id=row.id,
        contract_id=row.contract_id,
        filename=row.filename,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        download_url=f"/api/v1/contracts/documents/{row.id}",
    )


def add_document(
    session: Session,
    *,
    contract_id: int,
    filename: str,
    declared_type: str | None,
    stream: BinaryIO,
    actor: User,
    settings: Settings | None = None,
) -> ContractDocument:
    """Attach a file to a contract the actor may write. Refusals (type, content, size, the
    count) are :class:`ValidationFailed` naming ``file`` and leave no row and no file."""
    # Who may write is settled before a byte is read.
    get_for_write(session, contract_id, actor)
    received = attachments.receive(
        filename=filename, declared_type=declared_type, stream=stream, settings=settings
    )
    try:
        with write_transaction(session):
            # The contract row is locked so two uploads cannot both pass the count.
            session.scalar(select(Contract.id).where(Contract.id == contract_id).with_for_update())
            count = session.scalar(
                select(func.count(ContractDocument.id)).where(
                    ContractDocument.contract_id == contract_id
                )
            )
            if (count or 0) >= MAX_PER_CONTRACT:
                code, limit = "attachment_count", MAX_PER_CONTRACT
                message = ERROR_MESSAGES[code].format(limit=limit)
                raise ValidationFailed([FieldError(("file",), code, message, {"limit": limit})])
            row = ContractDocument(
                contract_id=contract_id,
                filename=received.filename,
                content_type=received.content_type,
                size_bytes=received.size_bytes,
                sha256=received.sha256,
                storage_key=received.storage_key,
                uploaded_by=actor.id,
                uploaded_at=clock.now(),
            )
            session.add(row)
            session.flush()
            record(
                session,
                actor=actor_of(actor),
                action="contract.document_added",
                target_type="contract",
                target_id=contract_id,
                # As for tickets, the file's name stays out of the log (names of people).
                after={
                    "document_id": row.id,
                    "content_type": received.content_type,
                    "size_bytes": received.size_bytes,
                    "sha256": received.sha256,
                },
            )
    except BaseException:
        # Whatever failed (the count, the database), the file must not outlive it.
        received.path.unlink(missing_ok=True)
        raise
    return row


def list_documents(session: Session, *, contract_id: int) -> list[ContractDocument]:
    """A contract's documents, oldest first."""
    return list(
        session.scalars(
            select(ContractDocument)
            .where(ContractDocument.contract_id == contract_id)
            .order_by(ContractDocument.id)
        )
    )


@dataclass(frozen=True)
class Download:
    """A document ready to send: its row (name, type) and where its bytes are."""

    document: ContractDocument
    path: Path


def open_document(
    session: Session, *, document_id: int, viewer: User, settings: Settings | None = None
) -> Download:
    """The document and the path of its bytes, for a viewer who can see the contract;
    NotFound otherwise (or when the bytes are missing)."""
    row = session.get(ContractDocument, document_id)
    if row is None:
        raise NotFound("attachment not found", document_id=document_id)
    get_contract(session, contract_id=row.contract_id, viewer=viewer)
    path = attachments.stored_path(row.storage_key, settings)
    if path is None:
        raise NotFound("attachment not found", document_id=document_id)
    return Download(row, path)
