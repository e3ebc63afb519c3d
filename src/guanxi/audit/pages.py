"""HTML pages of the audit log (the auditor's viewer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
