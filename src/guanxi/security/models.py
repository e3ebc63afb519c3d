"""Tables of users and their credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from guanxi.core import clock
from guanxi.core.db import Base
from guanxi.core.types import UTCDateTime


class User(Base):
    """A person who signs in to Guanxi; one role decides what they may do."""

    __tablename__ = "app_user"
    # token_scopes below is a plain attribute, not a column.
    __allow_unmapped__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(String(10))
    # Work address for notifications by e-mail (None: in-app only).
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Wrong passwords since the last good one; kept here so every app process agrees.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Lockouts since the last good sign-in: each one doubles the next lock's length.
    lockouts: Mapped[int] = mapped_column(default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # TOTP secret, encrypted with the field cipher; confirmed once totp_enabled_at is set.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last accepted code: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column()

    # Set per request when the user acts through an API token narrowed to some
    # permissions (security/service.py resolve_token); never stored. None: the whole role.
    token_scopes: frozenset[str] | None = None


class UserToken(Base):
    """A bearer API token or a browser session; only the SHA-256 of the secret is stored."""

    __tablename__ = "user_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    # "api", "web", or a pending sign-in waiting for its second factor: "mfa" (enter a
    # code) or "enrol" (an administrator must first enrol one).
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most once a minute (security/sessions.py), so requests do not each write.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Already masked when stored (203.0.113.* / 2001:db8:1:*): enough to recognise a place.
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    # API tokens created on /account carry a name and may narrow the role's permissions to
    # these (space-separated permission names); None: all of the role's.
    name: Mapped[str | None] = mapped_column(String(100))
    scopes: Mapped[str | None] = mapped_column(String(2000))

    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(Base):
    """A one-use code that stands in for a TOTP code when the phone is lost; only its
    SHA-256 is kept (the codes are random, 50 bits, so a slow hash adds nothing)."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """A failed sign-in from a client address, for the per-address limit (in the database
    so every app process counts the same). The address is kept only as a keyed hash."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_address_at", "address_hash", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


# --------------------------------------------------------------------------- row-level scope


class UserScope(Base):
    """One limit on what a user sees (optional; a user without rows sees what the role
    allows): a customer region (matched as a prefix of ``customer.region``, so 广东 covers
    广东省深圳市) or a service-desk team (``team.id`` as text). Rules in security/scope.py."""

    __tablename__ = "user_scope"
    __table_args__ = (UniqueConstraint("user_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    # "region" or "team" (security/scope.py ScopeKind).
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(50))


# Whether the user has scope rows, kept beside the user so the token lookup (one SELECT of
# app_user's columns, security/service.py) carries it: unscoped users, nearly all, cost no
# extra query per request; the rows themselves are read only for scoped users.
User.scoped = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
