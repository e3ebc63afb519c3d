"""Users, password checks, API tokens and browser sessions; the administrators' changes
to users (role, disable, password reset, unlock, second-factor reset) and a user's own
password change. Throttling lives in ``lockout.py``, the second factor in ``totp.py``,
session listing and revoking in ``sessions.py``, the password rules in ``passwords.py``."""

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

import guanxi.security.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import HotSelect, write_transaction
from guanxi.core.errors import (
    Conflict,
    FieldError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from guanxi.security import lockout, sessions, totp
from guanxi.security.lockout import LoginPolicy
from guanxi.security.masking import mask_email
from guanxi.security.models import User, UserToken
from guanxi.security.passwords import PasswordPolicy
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.security.schemas import UserCreate, UserUpdate

BAD_LOGIN = "invalid username or password"

_hasher = PasswordHash.recommended()
# Verifying against this when the user does not exist keeps timing equal for both cases.
_DUMMY_HASH = _hasher.hash("guanxi-dummy-password")


def actor_of(user: User) -> Actor:
    """The audit actor for a user."""
    return Actor(user.id, user.username)


def has_permission(user: User, permission: Permission) -> bool:
    """Whether the user's role holds ``permission`` (inactive users hold nothing); through
    an API token with scopes, only the permissions both the role and the token hold."""
    if not (user.is_active and role_has(user.role, permission)):
        return False
    return user.token_scopes is None or permission.value in user.token_scopes


def permissions_of(user: User) -> list[str]:
    """Every permission the user holds, sorted (for the UI and ``/me``)."""
    return sorted(p.value for p in Permission if has_permission(user, p))


def create_user(
    session: Session,
    *,
    user_in: UserCreate,
    actor: Actor,
    policy: PasswordPolicy = PasswordPolicy(),  # noqa: B008 - frozen, shared safely
) -> User:
    """Create a user with an argon2 password hash; a taken username is a conflict, a
    password against the policy a validation error on ``password``."""
    policy.check(user_in.password, username=user_in.username)
    with write_transaction(session):
        if session.scalar(select(User.id).where(User.username == user_in.username)):
            raise Conflict("username already exists", field="username")
        user = User(
            username=user_in.username,
            display_name=user_in.display_name,
            role=Role(user_in.role).value,
            password_hash=_hasher.hash(user_in.password),
            password_changed_at=clock.now(),
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
    e-mail removes it, and the user is then told in the app only), role or active flag
    (either ends the user's sessions and tokens; see :func:`change_role`, :func:`set_active`)."""
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
        if user_in.role is not None:
            _apply_role(session, user, user_in.role, actor)
        if user_in.is_active is not None:
            _apply_active(session, user, user_in.is_active, actor)
    return user


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    address: str | None = None,
    policy: LoginPolicy = LoginPolicy(),  # noqa: B008 - frozen, shared safely
) -> User:
    """Check a password. The same error for an unknown user, a wrong password, a locked
    or disabled account and a throttled address (no user enumeration); failures count
    towards the account's lockout and the address's limit (see ``lockout.py``)."""
    if lockout.address_blocked(session, address=address, policy=policy):
        _hasher.verify(password, _DUMMY_HASH)
        raise NotAuthenticated(BAD_LOGIN)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active or lockout.is_locked(user):
        _hasher.verify(password, user.password_hash if user else _DUMMY_HASH)
        with write_transaction(session):
            lockout.note_address_failure(session, address=address, policy=policy)
        raise NotAuthenticated(BAD_LOGIN)
    if not _hasher.verify(password, user.password_hash):
        with write_transaction(session):
            db_user = session.get(User, user.id, populate_existing=True)
            assert db_user is not None  # noqa: S101 - read just above, in the same session
            lockout.note_user_failure(session, user=db_user, policy=policy)
            lockout.note_address_failure(session, address=address, policy=policy)
        raise NotAuthenticated(BAD_LOGIN)
    # With a second factor the counters clear only after the code (otherwise re-entering
    # the password would buy fresh guesses at six digits).
    if not totp.is_enrolled(user) and (user.failed_logins or user.lockouts or user.locked_until):
        with write_transaction(session):
            lockout.note_success(user)
    return user


def check_second_factor(
    session: Session,
    *,
    user_id: int,
    code: str,
    address: str | None = None,
    policy: LoginPolicy = LoginPolicy(),  # noqa: B008 - frozen, shared safely
) -> User:
    """The second step of a sign-in: a TOTP or recovery code. A wrong code counts like a
    wrong password (six digits must not be guessed); a locked account fails whatever the
    code. Raises :class:`NotAuthenticated`."""
    failed = False
    with write_transaction(session):
        user = session.get(User, user_id, populate_existing=True)
        if user is None or not user.is_active or lockout.is_locked(user):
            raise NotAuthenticated(BAD_LOGIN)
        if totp.check_code(session, user=user, code=code) is None:
            lockout.note_user_failure(session, user=user, policy=policy)
            lockout.note_address_failure(session, address=address, policy=policy)
            failed = True
        else:
            lockout.note_success(user)
    if failed:
        raise NotAuthenticated("wrong or used second-factor code", field="code")
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    *,
    user: User,
    kind: str,
    hours: float,
    address: str | None = None,
    agent: str | None = None,
    name: str | None = None,
    scopes: list[str] | None = None,
) -> tuple[str, UserToken]:
    """Create an API token, a web session or a pending sign-in ("mfa"/"enrol"); returns
    the secret (shown once) and the row. ``scopes`` (API tokens) must be permissions the
    user holds; None keeps the whole role."""
    if scopes is not None:
        held = {p.value for p in Permission if role_has(user.role, p)}
        unknown = sorted(set(scopes) - held)
        if unknown or not scopes:
            raise ValidationFailed(
                [
                    FieldError(
                        ("scopes",),
                        "token_scopes",
                        "Choose permissions your role holds",
                        {"scopes": unknown},
                    )
                ]
            )
    secret = secrets.token_urlsafe(32)
    with write_transaction(session):
        row = UserToken(
            user_id=user.id,
            kind=kind,
            token_hash=_hash_token(secret),
            # Browser kinds (a session, a pending second-factor step) carry a form secret.
            csrf_token=secrets.token_urlsafe(24) if kind in ("web", "mfa", "enrol") else None,
            expires_at=clock.now() + timedelta(hours=hours),
            client_address=sessions.mask_address(address),
            user_agent=sessions.summarise_agent(agent),
            name=name,
            scopes=" ".join(sorted(set(scopes))) if scopes is not None else None,
        )
        session.add(row)
        if kind in ("mfa", "enrol"):
            # Half a sign-in: nothing to audit until the second factor is done.
            return secret, row
        db_user = session.get(User, user.id)
        if db_user is not None and name is None:
            db_user.last_login_at = clock.now()
        after: dict[str, Any] | None = None
        if name is not None:
            after = {"name": name, "scopes": row.scopes, "expires_at": row.expires_at.isoformat()}
        record(
            session,
            actor=actor_of(user),
            action="user.login" if kind == "web" else "user.token_issued",
            target_type="user",
            target_id=user.id,
            after=after,
        )
    return secret, row


@dataclass(frozen=True)
class LiveToken:
    """A resolved session or API token: its user (attached to the session), CSRF secret,
    row id, and whether its last-seen time is due to be written again."""

    user: User
    csrf_token: str | None
    token_id: int = 0
    stale: bool = False


_USER_COLUMNS = [c.key for c in User.__table__.columns]
_USER_MANAGER = manager_of_class(User)
# Every request runs this lookup: one statement, compiled once, on the driver's cursor.
_TOKEN = HotSelect(
    select(
        UserToken.expires_at.label("token_expires_at"),
        UserToken.revoked_at.label("token_revoked_at"),
        UserToken.csrf_token.label("token_csrf"),
        UserToken.id.label("token_id"),
        UserToken.created_at.label("token_created_at"),
        UserToken.last_seen_at.label("token_last_seen_at"),
        UserToken.scopes.label("token_scopes"),
        *User.__table__.columns,
    )
    .join(User, User.id == UserToken.user_id)
    .where(UserToken.token_hash == bindparam("token_hash"), UserToken.kind == bindparam("kind"))
)


def resolve_token(
    session: Session, *, secret: str, kind: str, idle: timedelta | None = None
) -> LiveToken | None:
    """The live token for a secret, or None if unknown, expired, revoked, unused for
    longer than ``idle``, or its user inactive. One statement: every request runs it."""
    row = _TOKEN.first(session, {"token_hash": _hash_token(secret), "kind": kind})
    now = clock.now()
    if row is None or row.token_revoked_at is not None or row.token_expires_at <= now:
        return None
    if not row.is_active:
        return None
    if idle is not None and now - (row.token_last_seen_at or row.token_created_at) >= idle:
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
    user.token_scopes = frozenset(row.token_scopes.split()) if row.token_scopes else None
    return LiveToken(
        user=user,
        csrf_token=row.token_csrf,
        token_id=row.token_id,
        stale=sessions.is_stale(row.token_last_seen_at, row.token_created_at, now),
    )


def revoke_token(session: Session, *, secret: str, actor: Actor, quiet: bool = False) -> None:
    """End a session or token (logout); ``quiet``: a finished pending sign-in, not worth
    an audit entry."""
    with write_transaction(session):
        row = session.scalar(select(UserToken).where(UserToken.token_hash == _hash_token(secret)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = clock.now()
            if not quiet:
                record(
                    session,
                    actor=actor,
                    action="user.logout",
                    target_type="user",
                    target_id=row.user_id,
                )


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", user_id=user_id)
    return user


def get_user(session: Session, *, user_id: int) -> User:
    """One user by id (NotFound if none)."""
    return _get_user(session, user_id)


def list_users(session: Session) -> list[User]:
    """All users, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


# --------------------------------------------------------------------------- administration


def _set_password(user: User, password: str) -> None:
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = clock.now()


def _audit_change(
    session: Session,
    user: User,
    *,
    actor: Actor,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    end_sessions: bool = True,
) -> None:
    """Record ``action`` on ``user`` inside the caller's transaction; with
    ``end_sessions`` first end every session and token of theirs (a new password, role,
    second factor or a disabled account must not leave old credentials working) and add
    how many were live to ``after`` as ``sessions_ended``."""
    if end_sessions:
        after = {**(after or {}), "sessions_ended": sessions.revoke_all(session, user_id=user.id)}
    record(
        session,
        actor=actor,
        action=action,
        target_type="user",
        target_id=user.id,
        before=before,
        after=after,
    )


def change_own_password(
    session: Session,
    *,
    user_id: int,
    current_password: str,
    new_password: str,
    policy: PasswordPolicy = PasswordPolicy(),  # noqa: B008 - frozen, shared safely
) -> User:
    """A user changes their password (the current one proves it is them); every session
    and token of theirs ends, this browser's too."""
    user = _get_user(session, user_id)
    if not _hasher.verify(current_password, user.password_hash):
        raise ValidationFailed(
            [FieldError(("current_password",), "password_wrong", "The current password is wrong")]
        )
    policy.check(new_password, username=user.username, field="new_password")
    with write_transaction(session):
        user = _get_user(session, user_id)
        _set_password(user, new_password)
        _audit_change(session, user, actor=actor_of(user), action="user.password_changed")
    return user


def reset_password(
    session: Session,
    *,
    user_id: int,
    password: str,
    actor: Actor,
    policy: PasswordPolicy = PasswordPolicy(),  # noqa: B008 - frozen, shared safely
) -> User:
    """An administrator sets a new password for a user; their sessions and tokens end and
    a lockout is lifted."""
    user = _get_user(session, user_id)
    policy.check(password, username=user.username)
    with write_transaction(session):
        user = _get_user(session, user_id)
        _set_password(user, password)
        lockout.note_success(user)
        _audit_change(session, user, actor=actor, action="user.password_reset")
    return user


def _apply_active(session: Session, user: User, active: bool, actor: Actor) -> None:
    if not active and user.id == actor.id:
        raise Conflict("you cannot disable your own account", field="is_active")
    if user.is_active == active:
        return
    user.is_active = active
    _audit_change(
        session,
        user,
        actor=actor,
        action="user.enabled" if active else "user.disabled",
        before={"is_active": not active},
        after={"is_active": active},
        end_sessions=not active,
    )


def _apply_role(session: Session, user: User, role: Role, actor: Actor) -> None:
    if user.role == role.value:
        return
    if user.id == actor.id:
        raise Conflict("you cannot change your own role", field="role")
    before = user.role
    user.role = role.value
    _audit_change(
        session,
        user,
        actor=actor,
        action="user.role_changed",
        before={"role": before},
        after={"role": role.value},
    )


def set_active(session: Session, *, user_id: int, active: bool, actor: Actor) -> User:
    """Disable or enable an account; disabling ends every session and token. An
    administrator cannot disable themselves (someone must be left to undo it)."""
    with write_transaction(session):
        user = _get_user(session, user_id)
        _apply_active(session, user, active, actor)
    return user


def change_role(session: Session, *, user_id: int, role: Role, actor: Actor) -> User:
    """Give a user another role; their sessions and tokens end, so nothing keeps acting
    with the old role's scopes (and a new administrator meets the second-factor rule)."""
    with write_transaction(session):
        user = _get_user(session, user_id)
        _apply_role(session, user, role, actor)
    return user


def unlock(session: Session, *, user_id: int, actor: Actor) -> User:
    """Lift a lockout and clear the failure counters."""
    with write_transaction(session):
        user = _get_user(session, user_id)
        was = user.locked_until
        lockout.note_success(user)
        record(
            session,
            actor=actor,
            action="user.unlocked",
            target_type="user",
            target_id=user.id,
            before={"locked_until": was.isoformat() if was else None},
        )
    return user


def reset_second_factor(session: Session, *, user_id: int, actor: Actor) -> User:
    """Remove a user's second factor (a lost phone): they enrol again at the next
    sign-in (administrators must); their sessions and tokens end."""
    with write_transaction(session):
        user = _get_user(session, user_id)
        totp.clear(session, user)
        _audit_change(session, user, actor=actor, action="user.second_factor_reset")
    return user


def must_enrol(user: User, *, required_for_admins: bool) -> bool:
    """Whether the user may not act before enrolling a second factor."""
    return required_for_admins and user.role == Role.admin.value and not totp.is_enrolled(user)


def require_api_second_factor(
    session: Session,
    *,
    user: User,
    otp: str | None,
    required_for_admins: bool,
    policy: LoginPolicy,
    address: str | None = None,
) -> None:
    """For ``POST /auth/token``: an enrolled user sends a code; an administrator without a
    second factor is refused until they enrol on the web."""
    if must_enrol(user, required_for_admins=required_for_admins):
        raise PermissionDenied("enrol a second factor on the web first", field="otp")
    if totp.is_enrolled(user):
        if not otp:
            raise ValidationFailed(
                [FieldError(("otp",), "otp_required", "Enter the code from your authenticator app")]
            )
        check_second_factor(session, user_id=user.id, code=otp, address=address, policy=policy)


def read_scopes(user: User) -> list[str]:
    """The read-only subset of the user's role: its ``*.read`` / ``*.read_*`` permissions."""
    return sorted(
        p.value
        for p in Permission
        if role_has(user.role, p) and p.value.partition(".")[2].startswith("read")
    )


def create_api_token(
    session: Session,
    *,
    user: User,
    name: str,
    expires_days: int,
    scopes: list[str] | None,
    read_only: bool = False,
) -> tuple[str, UserToken]:
    """A named API token of the user's, optionally narrowed (``scopes``, or the role's
    read permissions with ``read_only``); the secret is returned once."""
    if read_only:
        scopes = sorted(set(scopes or read_scopes(user)) & set(read_scopes(user))) or read_scopes(
            user
        )
    return issue_token(
        session, user=user, kind="api", hours=expires_days * 24, name=name, scopes=scopes
    )


def current_token_id(session: Session, *, bearer: str, cookie: str | None) -> int | None:
    """The id of the token or session the request came with (to mark it in lists)."""
    secret = bearer[7:].strip() if bearer.lower().startswith("bearer ") else cookie
    if not secret:
        return None
    return session.scalar(select(UserToken.id).where(UserToken.token_hash == _hash_token(secret)))
