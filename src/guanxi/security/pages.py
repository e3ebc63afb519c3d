"""HTML pages of account security and user administration."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
