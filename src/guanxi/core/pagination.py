"""Opaque cursors for keyset pagination: stable under inserts, cheap at any depth."""

from __future__ import annotations

import base64
import json
from typing import Any

from guanxi.core.errors import FieldError, ValidationFailed


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort key of the last row of a page."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; a tampered one is a 422 on ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            [FieldError(("query", "cursor"), "cursor_invalid", "Invalid cursor")]
        ) from exc
    if not isinstance(values, list):
        raise ValidationFailed(
            [FieldError(("query", "cursor"), "cursor_invalid", "Invalid cursor")]
        )
    return values


def decode_id_cursor(cursor: str) -> int:
    """The row id of a cursor made by ``encode_cursor([row.id])``, for lists paged by id
    alone; a tampered one is a 422 on ``cursor``."""
    try:
        return int(decode_cursor(cursor)[0])
    except (ValueError, IndexError, TypeError) as exc:
        raise ValidationFailed(
            [FieldError(("query", "cursor"), "cursor_invalid", "Invalid cursor")]
        ) from exc
