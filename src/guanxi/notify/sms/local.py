"""Gateways that keep texts on this machine: the embedded default (a file of JSON lines
under the data directory) and the console (the log). Nothing leaves the machine, so a
laptop install and the demo work without an SMS contract."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from guanxi.notify.sms.base import SmsRequest, SmsResult
from guanxi.security.masking import mask_phone

log = logging.getLogger("guanxi.notify.sms")


class FileSms:
    """Appends one JSON line per text to ``path`` (``<data dir>/sms/outbox.jsonl``).

    The phone is masked unless ``clear_numbers`` (a test bench that must see where texts
    went); the line holds the signature, template, parameters and the rendered text.
    """

    provider = "local"

    def __init__(self, path: Path, *, default_sign: str, clear_numbers: bool = False) -> None:
        self.path = path
        self.default_sign = default_sign
        self.clear_numbers = clear_numbers
        self._lock = threading.Lock()

    def send(self, request: SmsRequest) -> SmsResult:
        """Append the text's line; the provider id is a fresh random id."""
        provider_id = f"file-{uuid.uuid4().hex[:20]}"
        line = json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "id": provider_id,
                "out_id": request.out_id,
                "phone": request.phone if self.clear_numbers else mask_phone(request.phone),
                "sign": request.sign,
                "template": request.template_code,
                "params": dict(request.params),
                "text": f"【{request.sign}】{request.text}" if request.sign else request.text,
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of a whole line with O_APPEND: lines of several workers never interleave.
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        return SmsResult(provider_id=provider_id)


class ConsoleSms:
    """Logs each text with the phone masked (development)."""

    provider = "local"

    def __init__(self, *, default_sign: str) -> None:
        self.default_sign = default_sign

    def send(self, request: SmsRequest) -> SmsResult:
        """Log the text; the provider id is a fresh random id."""
        provider_id = f"console-{uuid.uuid4().hex[:20]}"
        log.info(
            "sms %s to %s: 【%s】%s",
            provider_id,
            mask_phone(request.phone),
            request.sign,
            request.text,
        )
        return SmsResult(provider_id=provider_id)
