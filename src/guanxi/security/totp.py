"""TOTP second factor (RFC 6238 through pyotp) and one-use recovery codes.

The secret is stored encrypted with the field cipher (``app_user.totp_secret``); it is
active once a first code confirmed it (``totp_enabled_at``). A code is accepted for the
current 30-second step and one step either side (clock drift), and never twice: the step
of the last accepted code is kept and only later steps pass.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, NotFound
from guanxi.security.crypto import cipher
from guanxi.security.models import RecoveryCode, User

ISSUER = "Guanxi"
STEP = 30
RECOVERY_CODES = 10
_FIELD = "app_user.totp_secret"
# Recovery codes avoid letters that read alike (0/O, 1/l/I).
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def is_enrolled(user: User) -> bool:
    """Whether the user has a confirmed second factor."""
    return user.totp_enabled_at is not None


def _secret_of(user: User) -> str | None:
    return cipher().decrypt(_FIELD, user.totp_secret) if user.totp_secret else None


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG markup (no script, no external image)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True)
    return out.getvalue().decode("utf-8")


def begin_enrolment(session: Session, *, user_id: int) -> str:
    """A new, not yet confirmed secret for the user (replacing an unconfirmed one); the
    plain secret is returned for the QR code and the manual key."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user not found", user_id=user_id)
        if is_enrolled(user):
            raise Conflict("second factor already enrolled", field="code")
        secret = pyotp.random_base32()
        user.totp_secret = cipher().encrypt(_FIELD, secret)
        user.totp_last_step = None
    return secret


def pending_secret(session: Session, *, user_id: int) -> str | None:
    """The unconfirmed secret of an enrolment under way (None: none started)."""
    user = session.get(User, user_id)
    if user is None or is_enrolled(user):
        return None
    return _secret_of(user)


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side), if later than
    ``last_step``; None otherwise."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    now = int(clock.now().timestamp()) // STEP
    for step in (now - 1, now, now + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(raw)))
    return codes


def confirm_enrolment(
    session: Session, *, user_id: int, code: str, actor: Actor
) -> list[str] | None:
    """Activate the pending secret if ``code`` is right: returns the new recovery codes
    (shown once), or None for a wrong code (nothing changes)."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user not found", user_id=user_id)
        secret = None if is_enrolled(user) else _secret_of(user)
        if secret is None:
            return None
        step = _matching_step(secret, code, None)
        if step is None:
            return None
        user.totp_enabled_at = clock.now()
        user.totp_last_step = step
        codes = _new_recovery_codes(session, user)
        record(
            session,
            actor=actor,
            action="user.second_factor_enrolled",
            target_type="user",
            target_id=user.id,
        )
    return codes


def check_code(session: Session, *, user: User, code: str) -> str | None:
    """Inside the caller's transaction: accept a TOTP code (recording its step) or an
    unused recovery code (marking it used). Returns "totp", "recovery" or None."""
    secret = _secret_of(user) if is_enrolled(user) else None
    if secret is None:
        return None
    step = _matching_step(secret, code, user.totp_last_step)
    if step is not None:
        user.totp_last_step = step
        return "totp"
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash_code(code),
            RecoveryCode.used_at.is_(None),
        )
    )
    if row is None:
        return None
    row.used_at = clock.now()
    record(
        session,
        actor=Actor(user.id, user.username),
        action="user.recovery_code_used",
        target_type="user",
        target_id=user.id,
    )
    return "recovery"


def regenerate_recovery_codes(session: Session, *, user_id: int, actor: Actor) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working)."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None or not is_enrolled(user):
            raise NotFound("no second factor", user_id=user_id)
        codes = _new_recovery_codes(session, user)
        record(
            session,
            actor=actor,
            action="user.recovery_codes_renewed",
            target_type="user",
            target_id=user.id,
        )
    return codes


def remaining_recovery_codes(session: Session, *, user_id: int) -> int:
    """How many unused recovery codes the user has left."""
    return len(
        session.scalars(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        ).all()
    )


def clear(session: Session, user: User) -> None:
    """Remove the second factor and its recovery codes (inside the caller's transaction)."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
