"""Sending e-mail over SMTP with the standard library (``smtplib`` + ``EmailMessage``).

The outbox (``notify/outbox.py``) opens one connection per batch through
:meth:`SmtpMailer.connect` and sends each mail on it. Messages are built with the default
SMTP policy in 7-bit form: a Chinese subject is encoded as an RFC 2047 word and a Chinese
body as base64 of UTF-8, so both arrive intact through any relay.
"""

from __future__ import annotations

import email.policy
import hashlib
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Protocol

from guanxi.config import Settings


@dataclass(frozen=True)
class Mail:
    """One message to one recipient; ``key`` is the outbox key (it makes the Message-ID)."""

    key: str
    to: str
    subject: str
    body: str
    date: datetime
    # Extra headers (List-Unsubscribe on marketing mail); names and values on one line.
    headers: tuple[tuple[str, str], ...] = ()


class MailConnection(Protocol):
    """An open connection that sends messages one by one."""

    def send(self, mail: Mail) -> None:
        """Hand one message to the server; raises on refusal or a broken connection."""


class Mailer(Protocol):
    """Something that opens a connection for a batch of mails."""

    def connect(self) -> AbstractContextManager[MailConnection]:
        """Open a connection (closed when the block ends)."""


# Failures of one message that leave the connection usable for the next (smtplib resets
# the transaction itself). Anything else -- a timeout, a dropped line -- ends the batch.
MESSAGE_ERRORS: tuple[type[Exception], ...] = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    ValueError,  # a header the message cannot carry
)


# CRLF line ends and a 7-bit-clean message (base64 / RFC 2047 for non-ASCII text): relays
# without 8BITMIME pass it unchanged, and smtplib announces nothing it does not need.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def build_message(mail: Mail, *, sender: str) -> EmailMessage:
    """The RFC 5322 message for ``mail`` from ``sender`` (``"Name <addr>"`` or an address).

    The Message-ID is derived from the outbox key, so if a crash makes the outbox send a
    mail twice the receiving side can recognise the copy.
    """
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(mail.date)
    domain = _domain_of(sender)
    digest = hashlib.sha256(mail.key.encode("utf-8")).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}.outbox@{domain}>"
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.body)
    return msg


def _domain_of(sender: str) -> str:
    addresses = getaddresses([sender])
    addr = addresses[0][1] if addresses else ""
    _, _, domain = addr.rpartition("@")
    return domain or "localhost"


class _SmtpConnection:
    """One SMTP session (after greeting, TLS and login)."""

    def __init__(self, smtp: smtplib.SMTP, sender: str) -> None:
        self._smtp = smtp
        self._sender = sender

    def send(self, mail: Mail) -> None:
        """Send one message; smtplib raises if the server refuses it."""
        self._smtp.send_message(build_message(mail, sender=self._sender))


@dataclass(frozen=True)
class SmtpMailer:
    """SMTP settings; :meth:`connect` opens one connection for a batch of mails."""

    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    use_ssl: bool = False
    sender: str = "Guanxi <noreply@localhost>"
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer | None:
        """The mailer the settings describe; None when e-mail is off (no ``smtp_host``)."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            use_ssl=settings.smtp_ssl,
            sender=settings.mail_from,
            timeout=settings.smtp_timeout,
        )

    @contextmanager
    def connect(self) -> Iterator[MailConnection]:
        """Connect, greet, secure and log in; QUIT when the block ends."""
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls and not self.use_ssl:
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
            yield _SmtpConnection(smtp, self.sender)
        finally:
            # The line may already be gone (that is often why we are leaving): close quietly.
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()
