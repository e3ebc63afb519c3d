"""Sign-in throttling: failures per account (in ``app_user``) and per client address (in
``login_failure``), both in the database so every app process counts the same.

An account is locked for ``login_lockout_minutes`` after ``login_max_failures`` wrong
passwords or second-factor codes in a row, doubled for each further lockout before a good
sign-in (at most a day). An address is refused after ``login_address_failures`` failures
within the same number of minutes, whatever user names it tried. The person at the
keyboard always reads the same message; the audit log records each lockout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.security.crypto import cipher
from guanxi.security.models import LoginFailure, User

MAX_LOCK = timedelta(days=1)


@dataclass(frozen=True)
class LoginPolicy:
    """The throttling settings (``GUANXI_LOGIN_*``)."""

    max_failures: int = 5
    lockout_minutes: int = 15
    address_failures: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> LoginPolicy:
        """The policy of the running app's settings."""
        return cls(
            max_failures=settings.login_max_failures,
            lockout_minutes=settings.login_lockout_minutes,
            address_failures=settings.login_address_failures,
        )

    @property
    def window(self) -> timedelta:
        """How far back failures of an address count."""
        return timedelta(minutes=self.lockout_minutes)

    def lock_length(self, lockouts: int) -> timedelta:
        """How long the ``lockouts``-th lockout lasts (1: the base length, then doubling)."""
        factor: int = 2 ** max(lockouts - 1, 0)
        return min(self.window * factor, MAX_LOCK)


def address_key(address: str) -> str:
    """The keyed hash under which an address's failures are counted (no address stored)."""
    return cipher().blind_index("login_address", address)


def address_blocked(session: Session, *, address: str | None, policy: LoginPolicy) -> bool:
    """Whether the client address has used up its failures in the current window."""
    if not address:
        return False
    since = clock.now() - policy.window
    count = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.address_hash == address_key(address), LoginFailure.at > since)
    )
    return bool(count and count >= policy.address_failures)


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Whether the account is locked at ``now``."""
    return user.locked_until is not None and user.locked_until > (now or clock.now())


def note_address_failure(session: Session, *, address: str | None, policy: LoginPolicy) -> None:
    """Count a failure against the address (inside the caller's transaction); rows older
    than the window are dropped on the way, so the table stays small."""
    if not address:
        return
    key = address_key(address)
    now = clock.now()
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.address_hash == key, LoginFailure.at <= now - policy.window
        )
    )
    session.add(LoginFailure(address_hash=key, at=now))


def note_user_failure(session: Session, *, user: User, policy: LoginPolicy) -> None:
    """Count a wrong password or code against the account (inside the caller's
    transaction); at the limit, lock it and record the lockout in the audit log."""
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins < policy.max_failures:
        return
    user.lockouts = (user.lockouts or 0) + 1
    user.locked_until = clock.now() + policy.lock_length(user.lockouts)
    failures, user.failed_logins = user.failed_logins, 0
    record(
        session,
        actor=Actor.system("login"),
        action="user.locked",
        target_type="user",
        target_id=user.id,
        after={
            "failures": failures,
            "lockouts": user.lockouts,
            "locked_until": user.locked_until.isoformat(),
        },
    )


def note_success(user: User) -> None:
    """A good sign-in clears the counters (inside the caller's transaction)."""
    if user.failed_logins or user.lockouts or user.locked_until:
        user.failed_logins = 0
        user.lockouts = 0
        user.locked_until = None
