"""Users, password checks, API tokens and browser sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.orm.util import identity_key

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import HotSelect, write_transaction
from guanxi.core.errors import Conflict, NotAuthenticated, NotFound
from guanxi.security.masking import mask_email
from guanxi.security.models import User, UserToken
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.security.schemas import UserCreate, UserUpdate

_hasher = PasswordHash.recommended()
# Verifying against this when the user does not exist keeps timing equal for both cases.
_DUMMY_HASH = _hasher.hash("guanxi-dummy-password")


def actor_of(user: User) -> Actor:
    """The audit actor for a user."""
    return Actor(user.id, user.username)


def has_permission(user: User, permission: Permission) -> bool:
    """Whether the user's role holds ``permission`` (inactive users hold nothing)."""
    return user.is_active and role_has(user.role, permission)


def permissions_of(user: User) -> list[str]:
    """Every permission the user holds, sorted (for the UI and ``/me``)."""
    return sorted(p.value for p in Permission if has_permission(user, p))


def create_user(session: Session, *, user_in: UserCreate, actor: Actor) -> User:
    """Create a user with an argon2 password hash; a taken username is a conflict."""
    with write_transaction(session):
        if session.scalar(select(User.id).where(User.username == user_in.username)):
            raise Conflict("username already exists", field="username")
        user = User(
            username=user_in.username,
            display_name=user_in.display_name,
            role=Role(user_in.role).value,
            password_hash=_hasher.hash(user_in.password),
            language=user_in.language,
            email=user_in.email,
        )
        session.add(user)
        session.flush()
        after: dict[str, Any] = {"username": user.username, "role": user.role}
        if user.email:
            after["email"] = mask_email(user.email)
        record(
            session,
            actor=actor,
            action="user.created",
            target_type="user",
            target_id=user.id,
            after=after,
        )
    return user


def update_user(session: Session, *, user_id: int, user_in: UserUpdate, actor: Actor) -> User:
    """Change a user's display name, language or e-mail (only the fields sent; a null
    e-mail removes it, and the user is then told in the app only)."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user not found", user_id=user_id)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in ("display_name", "language", "email"):
            if name not in user_in.model_fields_set:
                continue
            old, new = getattr(user, name), getattr(user_in, name)
            if old == new:
                continue
            setattr(user, name, new)
            # The audit log is read by auditors: addresses appear masked.
            shown = mask_email if name == "email" else (lambda v: v)
            before[name] = shown(old) if old else old
            after[name] = shown(new) if new else new
        if after:
            record(
                session,
                actor=actor,
                action="user.updated",
                target_type="user",
                target_id=user.id,
                before=before,
                after=after,
            )
    return user


def authenticate(session: Session, *, username: str, password: str) -> User:
    """Check a password; the same error for an unknown user and a wrong password."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        _hasher.verify(password, _DUMMY_HASH)
        raise NotAuthenticated("invalid username or password")
    if not _hasher.verify(password, user.password_hash):
        raise NotAuthenticated("invalid username or password")
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, user: User, kind: str, hours: int) -> tuple[str, UserToken]:
    """Create an API token or a web session; returns the secret (shown once) and the row."""
    secret = secrets.token_urlsafe(32)
    with write_transaction(session):
        row = UserToken(
            user_id=user.id,
            kind=kind,
            token_hash=_hash_token(secret),
            csrf_token=secrets.token_urlsafe(24) if kind == "web" else None,
            expires_at=clock.now() + timedelta(hours=hours),
        )
        session.add(row)
        db_user = session.get(User, user.id)
        if db_user is not None:
            db_user.last_login_at = clock.now()
        record(
            session,
            actor=actor_of(user),
            action="user.login" if kind == "web" else "user.token_issued",
            target_type="user",
            target_id=user.id,
        )
    return secret, row


@dataclass(frozen=True)
class LiveToken:
    """A resolved session or API token: its user (attached to the session) and CSRF secret."""

    user: User
    csrf_token: str | None


_USER_COLUMNS = [c.key for c in User.__table__.columns]
_USER_MANAGER = manager_of_class(User)
# Every request runs this lookup: one statement, compiled once, on the driver's cursor.
_TOKEN = HotSelect(
    select(
        UserToken.expires_at.label("token_expires_at"),
        UserToken.revoked_at.label("token_revoked_at"),
        UserToken.csrf_token.label("token_csrf"),
        *User.__table__.columns,
    )
    .join(User, User.id == UserToken.user_id)
    .where(UserToken.token_hash == bindparam("token_hash"), UserToken.kind == bindparam("kind"))
)


def resolve_token(session: Session, *, secret: str, kind: str) -> LiveToken | None:
    """The live token for a secret, or None if unknown, expired, revoked or its user inactive."""
    row = _TOKEN.first(session, {"token_hash": _hash_token(secret), "kind": kind})
    if row is None or row.token_revoked_at is not None or row.token_expires_at <= clock.now():
        return None
    if not row.is_active:
        return None
    user = session.identity_map.get(identity_key(User, row.id))
    if user is None:
        # Built from the row just read and attached as if loaded: no second query. Filled
        # the way the ORM's loader fills an instance (no constructor, no change events:
        # a fifth of this lookup's cost), then marked persistent and unchanged.
        user = _USER_MANAGER.new_instance()
        user.__dict__.update({k: getattr(row, k) for k in _USER_COLUMNS})
        make_transient_to_detached(user)
        session.add(user)
    return LiveToken(user=user, csrf_token=row.token_csrf)


def revoke_token(session: Session, *, secret: str, actor: Actor) -> None:
    """End a session or token (logout)."""
    with write_transaction(session):
        row = session.scalar(select(UserToken).where(UserToken.token_hash == _hash_token(secret)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = clock.now()
            record(
                session,
                actor=actor,
                action="user.logout",
                target_type="user",
                target_id=row.user_id,
            )


def list_users(session: Session) -> list[User]:
    """All users, by username."""
    return list(session.scalars(select(User).order_by(User.username)))
