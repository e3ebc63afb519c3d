"""The SMS gateway interface: one request, one provider message id, or an error that says
whether trying again can help."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Digit runs that may be phone numbers: providers like to quote the number back.
_NUMBER = re.compile(r"\+?\d[\d\- ]{5,}\d")


def scrub(text: str) -> str:
    """An error text without phone numbers (for ``last_error`` and logs)."""
    return _NUMBER.sub("<number>", text)


@dataclass(frozen=True)
class SmsRequest:
    """One text to one phone.

    ``template_code`` is the provider's template id (the registry maps our codes onto it);
    ``params`` fill its placeholders (Tencent takes them in ``param_order``); ``out_id`` is
    the outbox key, the idempotency token the provider echoes in delivery reports; ``text``
    is the rendered message, for the gateways that only show it (file, console).
    """

    phone: str  # E.164
    sign: str
    template_code: str
    params: Mapping[str, str]
    out_id: str
    param_order: tuple[str, ...] = ()
    text: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmsResult:
    """The provider's id of the accepted message (Aliyun BizId, Tencent SerialNo)."""

    provider_id: str | None


class SmsError(Exception):
    """The gateway did not accept the message; ``code`` is the provider's error code."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class TransientSmsError(SmsError):
    """Worth trying again later: throttling, timeouts, the provider's 5xx, a balance that
    ran out, a configuration error an administrator will fix."""


class PermanentSmsError(SmsError):
    """Trying again cannot help: an invalid number, a missing or unapproved template, a
    number on the carrier's block list."""


class SmsGateway(Protocol):
    """Something that hands one text to a provider."""

    #: Which template id of the registry to use: "aliyun", "tencent", or "local".
    provider: str
    #: The signature (签名) used when a template names none.
    default_sign: str

    def send(self, request: SmsRequest) -> SmsResult:
        """Send one text; raises TransientSmsError or PermanentSmsError."""
