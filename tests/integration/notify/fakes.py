"""Local stand-ins for what leaves the machine: an Aliyun Dysmsapi endpoint, a Tencent
Cloud SMS endpoint and a webhook receiver, each a real HTTP server on 127.0.0.1.

Each checks the request the way the real service does -- the POP HMAC-SHA1 signature over
the canonical query, the TC3-HMAC-SHA256 signature over the canonical request, our
X-Guanxi-Signature -- written here from the providers' documents, independently of the
code under test. They record what they accepted and answer with scripted errors on demand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote

ALIYUN_KEY_ID = "testId"
ALIYUN_SECRET = "testSecret"  # noqa: S105 - the fake's own key
TENCENT_ID = "AKIDtestsecretid"
TENCENT_KEY = "tencent-test-key"
TENCENT_APP = "1400000001"


@dataclass
class Recorder:
    """What a fake accepted, and the answers it is told to give next."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected_signatures: int = 0
    # Scripted answers, used first-in first-out: (HTTP status, JSON body).
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Slow answers (seconds) so concurrent senders overlap.
    delay: float = 0.0

    def next_scripted(self) -> tuple[int, dict[str, Any]] | None:
        with self.lock:
            return self.script.pop(0) if self.script else None


def _pop_encode(value: str) -> str:
    return quote(value, safe="~")


def aliyun_expected_signature(params: dict[str, str], method: str) -> str:
    """Alibaba Cloud RPC signature version 1.0 (HMAC-SHA1)."""
    query = "&".join(
        f"{_pop_encode(k)}={_pop_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method}&{_pop_encode('/')}&{_pop_encode(query)}"
    mac = hmac.new(f"{ALIYUN_SECRET}&".encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def tencent_expected_authorization(headers: Any, body: bytes) -> str:
    """Tencent Cloud API 3.0 TC3-HMAC-SHA256 over content-type;host;x-tc-action."""
    timestamp = int(headers["X-TC-Timestamp"])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        "POST\n/\n\n"
        f"content-type:{headers['Content-Type']}\n"
        f"host:{headers['Host']}\n"
        f"x-tc-action:{headers['X-TC-Action'].lower()}\n\n"
        "content-type;host;x-tc-action\n" + hashlib.sha256(body).hexdigest()
    )
    scope = f"{date}/sms/tc3_request"
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    )

    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = h(h(h(("TC3" + TENCENT_KEY).encode(), date), "sms"), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={TENCENT_ID}/{scope}, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}"
    )


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder
    kind: str
    webhook_secret: str = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.recorder.delay:
            time.sleep(self.recorder.delay)
        getattr(self, f"_{self.kind}")(body)

    def _aliyun(self, body: bytes) -> None:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if params.get("AccessKeyId") != ALIYUN_KEY_ID or params.get(
            "Signature"
        ) != aliyun_expected_signature(params, "POST"):
            with self.recorder.lock:
                self.recorder.rejected_signatures += 1
            self._answer(400, {"Code": "SignatureDoesNotMatch", "Message": "bad signature"})
            return
        assert params["Action"] == "SendSms"
        assert params["Version"] == "2017-05-25"
        scripted = self.recorder.next_scripted()
        if scripted is not None:
            self._answer(*scripted)
            return
        biz = f"biz-{len(self.recorder.accepted) + 1:04d}"
        with self.recorder.lock:
            self.recorder.accepted.append(
                {
                    "phone": params["PhoneNumbers"],
                    "sign": params["SignName"],
                    "template": params["TemplateCode"],
                    "params": json.loads(params.get("TemplateParam") or "{}"),
                    "out_id": params.get("OutId"),
                    "biz_id": biz,
                }
            )
        self._answer(200, {"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r1"})

    def _tencent(self, body: bytes) -> None:
        if self.headers.get("Authorization") != tencent_expected_authorization(self.headers, body):
            with self.recorder.lock:
                self.recorder.rejected_signatures += 1
            self._answer(
                200,
                {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "x"}}},
            )
            return
        assert self.headers["X-TC-Version"] == "2021-01-11"
        payload = json.loads(body)
        scripted = self.recorder.next_scripted()
        if scripted is not None:
            self._answer(*scripted)
            return
        serial = f"serial-{len(self.recorder.accepted) + 1:04d}"
        with self.recorder.lock:
            self.recorder.accepted.append(
                {
                    "phone": payload["PhoneNumberSet"][0],
                    "app": payload["SmsSdkAppId"],
                    "sign": payload["SignName"],
                    "template": payload["TemplateId"],
                    "params": payload["TemplateParamSet"],
                    "out_id": payload["SessionContext"],
                    "serial": serial,
                }
            )
        status = {"SerialNo": serial, "PhoneNumber": payload["PhoneNumberSet"][0], "Code": "Ok"}
        self._answer(200, {"Response": {"SendStatusSet": [status], "RequestId": "r1"}})

    def _webhook(self, body: bytes) -> None:
        header = self.headers.get("X-Guanxi-Signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        signed = parts.get("t", "").encode() + b"." + body
        expected = hmac.new(self.webhook_secret.encode(), signed, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts.get("t") or 0)) <= 300
        if not (fresh and hmac.compare_digest(expected, parts.get("v1", ""))):
            with self.recorder.lock:
                self.recorder.rejected_signatures += 1
            self._answer(401, {"error": "bad signature"})
            return
        scripted = self.recorder.next_scripted()
        if scripted is not None:
            self._answer(*scripted)
            return
        with self.recorder.lock:
            self.recorder.accepted.append(
                {
                    "event": self.headers["X-Guanxi-Event"],
                    "delivery": self.headers["X-Guanxi-Delivery"],
                    "body": json.loads(body),
                }
            )
        self._answer(200, {"ok": True})


@dataclass
class FakeServer:
    """A running fake: its URL and its recorder."""

    url: str
    recorder: Recorder
    handler: type[_Handler]

    def set_webhook_secret(self, secret: str) -> None:
        """The secret the receiver checks signatures with."""
        self.handler.webhook_secret = secret


@contextmanager
def serve(kind: str) -> Iterator[FakeServer]:
    """Run a fake of ``kind`` (aliyun / tencent / webhook) on a free port."""
    recorder = Recorder()
    handler = type(f"{kind}Handler", (_Handler,), {"recorder": recorder, "kind": kind})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{server.server_address[1]}/", recorder, handler)
    finally:
        server.shutdown()
        server.server_close()
