"""Domain errors, raised by services and mapped to RFC 9457 problem responses at the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DomainError(Exception):
    """Base class of errors a user can act on; ``status`` is the HTTP status it maps to."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class NotFound(DomainError):
    """The thing does not exist, or the user may not see it (both look the same)."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The write collides with existing data (duplicate key, stale version)."""

    status = 409
    code = "conflict"


class PermissionDenied(DomainError):
    """The user is known but lacks the permission."""

    status = 403
    code = "forbidden"


class NotAuthenticated(DomainError):
    """No valid session or token."""

    status = 401
    code = "not_authenticated"


@dataclass
class FieldError:
    """One invalid input field: a dotted location, a machine code, and English text."""

    loc: tuple[str | int, ...]
    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


class ValidationFailed(DomainError):
    """Input that parsed but breaks a rule; carries one entry per offending field."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.message}" for e in errors))
        self.errors = errors
