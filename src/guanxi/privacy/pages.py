"""HTML pages of the privacy domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
