"""Crypto-shredding of personal values in the audit log.

The audit chain is append-only and hash-chained (:mod:`guanxi.audit.service`): an entry is
never rewritten, so a personal value written into it in clear would outlive the
anonymisation of its subject. Personal values are therefore *sealed* before they are
recorded: encrypted (AES-GCM) under a data key of their own subject (a customer), stored in
``audit_subject_key`` encrypted in turn with the field cipher (so ``guanxi keys rotate``
re-encrypts it like any ``*_enc`` column). Anonymising the subject deletes its data key
(:func:`shred`): the sealed texts stay in the chain — the hashes cover them, ``audit verify``
still passes — but nobody can read them any more.

A sealed value reads ``sealed:v1:<subject type>:<subject id>:<base64(nonce || ct+tag)>``.
Sealing is deterministic per subject (the nonce is a keyed hash of the value): a record's
snapshots taken before and after a change seal an unchanged value to the same text, so
diffs of snapshots keep working. It only tells that two of the same subject's sealed values
are equal, which the plaintext log told anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditSubjectKey
from guanxi.core import clock, i18n
from guanxi.core.db import serialize_writers
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_name, shorten_address

PREFIX = "sealed:v1:"
# The field name bound into the data keys' ciphertexts (the column minus ``_enc``).
KEY_FIELD = "audit_subject_key"
# Serialises the creation of a subject's first key (two writers sealing for a customer
# that has none yet); only taken when the key is missing.
_KEY_LOCK = 0x6775_6B79
_CACHE = "guanxi.audit.subject_keys"

_ERASED = i18n.N_("(erased)")


def _cache(session: Session) -> dict[tuple[str, str], bytes | None]:
    cache: dict[tuple[str, str], bytes | None] = session.info.setdefault(_CACHE, {})
    return cache


def _forget(session: Session, *_args: Any) -> None:
    # The cache lives for one transaction: a key inserted by a transaction that rolled
    # back does not exist, and another process may shred a key between transactions.
    session.info.pop(_CACHE, None)


for _name in ("after_commit", "after_rollback", "after_soft_rollback"):
    event.listen(Session, _name, _forget)


def _load_key(session: Session, subject_type: str, subject_id: str) -> bytes | None:
    cache = _cache(session)
    ref = (subject_type, subject_id)
    if ref in cache:
        return cache[ref]
    stored = session.scalar(
        select(AuditSubjectKey.audit_subject_key_enc).where(
            AuditSubjectKey.subject_type == subject_type,
            AuditSubjectKey.subject_id == subject_id,
        )
    )
    key = base64.b64decode(cipher().decrypt(KEY_FIELD, stored)) if stored else None
    cache[ref] = key
    return key


def _key_for_writing(session: Session, subject_type: str, subject_id: str) -> bytes:
    key = _load_key(session, subject_type, subject_id)
    if key is not None:
        return key
    serialize_writers(session, _KEY_LOCK)
    _cache(session).pop((subject_type, subject_id), None)
    key = _load_key(session, subject_type, subject_id)
    if key is not None:
        return key
    key = os.urandom(32)
    session.add(
        AuditSubjectKey(
            subject_type=subject_type,
            subject_id=subject_id,
            audit_subject_key_enc=cipher().encrypt(KEY_FIELD, base64.b64encode(key).decode()),
            created_at=clock.now(),
        )
    )
    session.flush()
    _cache(session)[(subject_type, subject_id)] = key
    return key


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, purpose, hashlib.sha256).digest()


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a sealed text written by :func:`seal`."""
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(session: Session, subject_type: str, subject_id: str | int, value: str) -> str:
    """Seal ``value`` under the data key of its subject (created on first use, inside the
    caller's transaction). The same value of the same subject always seals to the same
    text while the key lives."""
    sid = str(subject_id)
    if ":" in subject_type:
        raise ValueError("a subject type may not contain ':'")
    key = _key_for_writing(session, subject_type, sid)
    data = value.encode("utf-8")
    nonce = _derive(_derive(key, b"nonce"), data)[:12]
    aad = f"{subject_type}:{sid}".encode()
    ct = AESGCM(_derive(key, b"encrypt")).encrypt(nonce, data, aad)
    return f"{PREFIX}{subject_type}:{sid}:{base64.b64encode(nonce + ct).decode()}"


def seal_optional(
    session: Session, subject_type: str, subject_id: str | int, value: str | None
) -> str | None:
    """:func:`seal` for a value that may be absent (None and "" stay as they are)."""
    return seal(session, subject_type, subject_id, value) if value else value


def seal_about_customer(session: Session, customer_id: int | None, value: str | None) -> str | None:
    """A free text about a customer as the audit log keeps it: sealed under the customer's
    key; left as it is without a customer (nobody to anonymise) or without a text."""
    if customer_id is None or not value:
        return value
    return seal(session, "customer", customer_id, value)


def subject_of(value: str) -> tuple[str, str] | None:
    """The (subject type, subject id) a sealed value belongs to; None for other texts."""
    if not is_sealed(value):
        return None
    parts = value[len(PREFIX) :].split(":", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else None


def unseal(session: Session, value: str) -> str | None:
    """The plaintext of a sealed value; None when its subject's key was shredded (or the
    text is not a well-formed sealed value). A text that is not sealed is returned as is."""
    if not is_sealed(value):
        return value
    parts = value[len(PREFIX) :].split(":", 2)
    if len(parts) != 3:
        return None
    subject_type, sid, payload = parts
    key = _load_key(session, subject_type, sid)
    if key is None:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
        aad = f"{subject_type}:{sid}".encode()
        data = AESGCM(_derive(key, b"encrypt")).decrypt(raw[:12], raw[12:], aad)
    except (InvalidTag, ValueError):
        return None
    return data.decode("utf-8")


def shred(session: Session, subject_type: str, subject_ids: Iterable[str | int]) -> int:
    """Delete the data keys of these subjects inside the caller's transaction: every
    value sealed for them becomes unreadable for good. Returns how many keys were deleted."""
    ids = sorted({str(i) for i in subject_ids})
    deleted = 0
    cache = _cache(session)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        result = session.execute(
            delete(AuditSubjectKey).where(
                AuditSubjectKey.subject_type == subject_type,
                AuditSubjectKey.subject_id.in_(chunk),
            )
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
        for sid in chunk:
            cache[(subject_type, sid)] = None
    return deleted


def erased_text(lang: str) -> str:
    """What a sealed value whose key was shredded shows: "(erased)" / "（已删除）"."""
    return i18n.gettext(lang, _ERASED)


# Fields whose sealed texts are names (a person's or a company's, a contact line that
# starts with one): shown like names on waybills; every other sealed text (addresses,
# notes, reasons) shows its first characters only.
NAME_FIELDS = frozenset({"name", "contacts", "contact", "participants"})


def _masked(text: str, field: str | None) -> str:
    return mask_name(text) if field in NAME_FIELDS else shorten_address(text)


def display_value(
    session: Session,
    value: object,
    *,
    reveal: bool,
    lang: str = "en",
    field: str | None = None,
) -> str:
    """How an audit before/after value is shown: a sealed value masked (in clear with
    ``reveal``, which the caller audits), "(erased)" in ``lang`` once its subject was
    anonymised (its key shredded); any other value as text. ``field``: the before/after
    key it is under, which picks the masking (names keep their first character)."""
    if not is_sealed(value):
        return "" if value is None else str(value)
    plain = unseal(session, str(value))
    if plain is None:
        return erased_text(lang)
    return plain if reveal else _masked(plain, field)


def display_data(
    session: Session, data: Any, *, reveal: bool, lang: str = "en", field: str | None = None
) -> Any:
    """:func:`display_value` applied to every sealed text inside a before/after mapping
    (lists and nested mappings included, a list's items masked as its key says); other
    values unchanged."""
    if isinstance(data, dict):
        return {
            k: display_data(session, v, reveal=reveal, lang=lang, field=str(k))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [display_data(session, v, reveal=reveal, lang=lang, field=field) for v in data]
    if is_sealed(data):
        return display_value(session, data, reveal=reveal, lang=lang, field=field)
    return data


def readable(session: Session, entries: Iterable[Any], *, lang: str) -> list[Any]:
    """Audit entries as the auditor's viewer and its API show them: ``before`` / ``after``
    through :func:`display_data` (sealed personal values masked, "(erased)" after
    anonymisation), never the sealed text itself."""
    from guanxi.audit.schemas import AuditRead

    return [
        AuditRead.model_validate(e).model_copy(
            update={
                "before": display_data(session, e.before, reveal=False, lang=lang),
                "after": display_data(session, e.after, reveal=False, lang=lang),
            }
        )
        for e in entries
    ]
