"""Field encryption (AES-GCM) with key ids, and a keyed blind index for exact lookup.

Every stored value reads ``<key id>$<base64(nonce || ciphertext+tag)>``; the field name is
bound in as associated data so a value copied into another column fails to decrypt. The blind
index is an HMAC of the normalised value, so equal values can be found without decrypting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guanxi.config import Settings


class FieldCipher:
    """Encrypts and decrypts personal fields; holds every known key, uses the active one."""

    def __init__(self, keys: dict[str, bytes], active: str, blind_key: bytes) -> None:
        if active not in keys:
            raise ValueError(f"active field key {active!r} is not among the configured keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"field key {kid!r} must be 32 bytes (AES-256)")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active
        # The keyed hash state after the key: copied per value instead of re-keying, which
        # halves the cost of a blind index (imports compute millions).
        self._blind = hmac.new(blind_key, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldCipher:
        """Build the cipher from ``GUANXI_FIELD_KEYS`` / ``GUANXI_BLIND_INDEX_KEY``."""
        keys = {kid: base64.b64decode(v) for kid, v in settings.field_keys.items()}
        return cls(keys, settings.active_field_key, base64.b64decode(settings.blind_index_key))

    def encrypt(self, field: str, value: str) -> str:
        """Encrypt ``value`` for column ``field`` with the active key."""
        nonce = os.urandom(12)
        ct = self._aead[self._active].encrypt(nonce, value.encode("utf-8"), field.encode())
        return f"{self._active}${base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, field: str, stored: str) -> str:
        """Decrypt a value written by :meth:`encrypt` (any configured key id)."""
        kid, _, payload = stored.partition("$")
        raw = base64.b64decode(payload)
        return self._aead[kid].decrypt(raw[:12], raw[12:], field.encode()).decode("utf-8")

    def blind_index(self, field: str, normalised: str) -> str:
        """Keyed hash of a normalised value, for equality lookup (32 hex chars)."""
        mac = self._blind.copy()
        mac.update(f"{field}:{normalised}".encode())
        return mac.hexdigest()[:32]

    def key_id_of(self, stored: str) -> str:
        """The key id a stored value was encrypted with (for rotation reports)."""
        return stored.partition("$")[0]


_cipher: FieldCipher | None = None


def configure(settings: Settings) -> FieldCipher:
    """Install the process-wide cipher from settings (called by the app factory and CLI)."""
    global _cipher
    _cipher = FieldCipher.from_settings(settings)
    return _cipher


def cipher() -> FieldCipher:
    """The process-wide cipher; configured lazily from the environment if nobody did."""
    global _cipher
    if _cipher is None:
        from guanxi.config import get_settings

        _cipher = FieldCipher.from_settings(get_settings())
    return _cipher
