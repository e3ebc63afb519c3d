"""Password policy: a minimum length, not the user name, not a known breached password.

The breached list ships in the package (``data/breached-passwords.txt.gz``: the 96,518
most frequent passwords of public leaks, see its ``.LICENSE``); nothing is fetched at run
time. It is read once, on the first check, into a set of lower-cased entries (about 7 MB).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

import guanxi.security.messages  # noqa: F401 - registers the error texts
from guanxi.core.errors import FieldError, ValidationFailed


@cache
def breached_passwords() -> frozenset[str]:
    """The shipped list of breached passwords, lower-cased."""
    data = resources.files("guanxi.security").joinpath("data/breached-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n") for line in lines if line.strip())


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy (``GUANXI_PASSWORD_MIN_LENGTH``)."""

    min_length: int = 10

    def problems(
        self, password: str, *, username: str, field: str = "password"
    ) -> list[FieldError]:
        """Every rule ``password`` breaks, as field errors on ``field`` (empty: acceptable)."""
        errors: list[FieldError] = []
        if len(password) < self.min_length:
            errors.append(
                FieldError(
                    (field,),
                    "password_too_short",
                    f"The password needs at least {self.min_length} characters",
                    {"min_length": self.min_length},
                )
            )
        name = username.strip().lower()
        if len(name) >= 3 and name in password.lower():
            errors.append(
                FieldError(
                    (field,), "password_has_username", "The password must not contain the user name"
                )
            )
        if password.lower() in breached_passwords():
            errors.append(
                FieldError(
                    (field,),
                    "password_breached",
                    "This password appears in lists of leaked passwords; choose another",
                )
            )
        return errors

    def check(self, password: str, *, username: str, field: str = "password") -> None:
        """Raise :class:`ValidationFailed` naming ``field`` if ``password`` breaks a rule."""
        errors = self.problems(password, username=username, field=field)
        if errors:
            raise ValidationFailed(errors)
