"""Pydantic shapes of the audit log's API (``/api/v1/audit``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditRead(BaseModel):
    """One audit entry as an auditor reads it; ``before`` / ``after`` hold masked values
    only (the services mask personal data before they record it)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    hash: str


class AuditPage(BaseModel):
    """One page of a search, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[AuditRead]
    next_cursor: str | None
