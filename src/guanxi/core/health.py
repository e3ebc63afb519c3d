"""Liveness check: the database answers."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def database_ok(session: Session) -> bool:
    """Run ``SELECT 1``; True when the database answered."""
    return session.execute(text("SELECT 1")).scalar() == 1
