"""Tencent Cloud SMS ``SendSms``, API 3.0, version 2021-01-11, TC3-HMAC-SHA256 signing.

Request: a JSON POST (PhoneNumberSet in E.164, SmsSdkAppId, SignName, TemplateId,
TemplateParamSet in the template's {1}, {2}, ... order, SessionContext) with the headers
X-TC-Action / X-TC-Timestamp / X-TC-Version / X-TC-Region and an ``Authorization`` of
the documented TC3 scheme: a canonical request over content-type, host and x-tc-action and
the payload's SHA-256; a string to sign with the credential scope ``<date>/sms/tc3_request``;
a signing key derived by HMAC-SHA256 chaining from ``"TC3" + SecretKey``.

Response: ``Response.SendStatusSet[0].Code == "Ok"`` with its ``SerialNo``, or
``Response.Error.Code``; the codes below sort errors into "try again later" and "never".
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from guanxi.notify.sms.base import (
    PermanentSmsError,
    SmsRequest,
    SmsResult,
    TransientSmsError,
    scrub,
)

API_VERSION = "2021-01-11"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
SERVICE = "sms"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"

# Codes (of the request or of one number's status) a later attempt may get past.
TRANSIENT_PREFIXES = (
    "LimitExceeded",
    "RequestLimitExceeded",
    "InternalError",
    "AuthFailure",
    "ResourceUnavailable",
    "FailedOperation.InsufficientBalanceInSmsPackage",
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    action: str,
    payload: bytes,
    timestamp: int,
) -> str:
    """The ``Authorization`` header of a TC3-HMAC-SHA256 request (POST to ``/``)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{CONTENT_TYPE}\nhost:{host}\nx-tc-action:{action.lower()}\n"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            canonical_headers,
            SIGNED_HEADERS,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


def _is_transient(code: str) -> bool:
    return code.startswith(TRANSIENT_PREFIXES)


class TencentSms:
    """An SMS gateway that calls Tencent Cloud SMS ``SendSms``."""

    provider = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        app_id: str,
        default_sign: str,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = "ap-guangzhou",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.app_id = app_id
        self.default_sign = default_sign
        self.endpoint = endpoint
        self.region = region
        self._client = client or httpx.Client(timeout=timeout)

    def payload_for(self, request: SmsRequest) -> dict[str, Any]:
        """The JSON body of one ``SendSms`` call."""
        order = request.param_order or tuple(request.params)
        return {
            "PhoneNumberSet": [request.phone],
            "SmsSdkAppId": self.app_id,
            "SignName": request.sign,
            "TemplateId": request.template_code,
            "TemplateParamSet": [str(request.params.get(name, "")) for name in order],
            "SessionContext": request.out_id,
        }

    def headers_for(self, payload: bytes, *, timestamp: int) -> dict[str, str]:
        """The signed headers of a request with body ``payload``."""
        host = urlsplit(self.endpoint).netloc
        return {
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": self.region,
            "Authorization": authorization(
                secret_id=self.secret_id,
                secret_key=self._secret_key,
                host=host,
                action="SendSms",
                payload=payload,
                timestamp=timestamp,
            ),
        }

    def send(self, request: SmsRequest) -> SmsResult:
        """Send one text; the provider's errors become Transient / PermanentSmsError."""
        payload = json.dumps(self.payload_for(request), ensure_ascii=False).encode()
        timestamp = int(datetime.now(UTC).timestamp())
        try:
            response = self._client.post(
                self.endpoint,
                content=payload,
                headers=self.headers_for(payload, timestamp=timestamp),
            )
        except httpx.HTTPError as exc:
            raise TransientSmsError(type(exc).__name__, scrub(str(exc))) from exc
        if response.status_code >= 500:
            raise TransientSmsError(f"HTTP {response.status_code}")
        try:
            body = response.json().get("Response") or {}
        except (ValueError, AttributeError):
            body = {}
        error = body.get("Error")
        if error:
            code = str(error.get("Code") or "Error")
            message = scrub(str(error.get("Message") or ""))
            if _is_transient(code):
                raise TransientSmsError(code, message)
            raise PermanentSmsError(code, message)
        statuses = body.get("SendStatusSet") or []
        if not statuses:
            raise TransientSmsError(f"HTTP {response.status_code}", "no send status")
        status = statuses[0]
        code = str(status.get("Code") or "")
        if code == "Ok":
            return SmsResult(provider_id=str(status.get("SerialNo") or "") or None)
        message = scrub(str(status.get("Message") or ""))
        if _is_transient(code):
            raise TransientSmsError(code, message)
        raise PermanentSmsError(code, message)
