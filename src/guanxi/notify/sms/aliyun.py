"""Alibaba Cloud SMS (Dysmsapi) ``SendSms``, RPC style, API version 2017-05-25.

Request: a form POST of the common parameters (AccessKeyId, Action, Format, RegionId,
SignatureMethod HMAC-SHA1, SignatureNonce, SignatureVersion 1.0, Timestamp, Version) and
the business ones (PhoneNumbers, SignName, TemplateCode, TemplateParam as JSON, OutId),
signed with the documented "POP" signature: the parameters sorted and percent-encoded
(RFC 3986) into a canonical query, ``StringToSign = POST&%2F&percentEncode(query)``, and
``Signature = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))``.

Response: ``{"Code": "OK", "BizId": ..., "RequestId": ...}``, or an error code; the codes
below sort errors into "try again later" and "never".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from guanxi.notify.sms.base import (
    PermanentSmsError,
    SmsRequest,
    SmsResult,
    TransientSmsError,
    scrub,
)

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"

# Codes that a later attempt may get past: flow control, the account's balance, the
# provider's own trouble, and credentials an administrator has yet to fix.
TRANSIENT_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isp.SYSTEM_ERROR",
        "isp.RAM_PERMISSION_DENY",
        "SignatureDoesNotMatch",
        "SignatureNonceUsed",
        "InvalidTimeStamp.Expired",
        "InvalidAccessKeyId.NotFound",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
    }
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the POP signature wants it (space as %20, ``~`` kept)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The parameters sorted by name and percent-encoded, joined with ``&``."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def sign(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """The POP signature of ``params`` (without ``Signature``) for ``method``."""
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def phone_numbers(e164: str) -> str:
    """Aliyun's form of a number: mainland mobiles without +86, others with country code
    and no plus sign."""
    if e164.startswith("+86"):
        return e164[3:]
    return e164.lstrip("+")


class AliyunSms:
    """An SMS gateway that calls Aliyun Dysmsapi ``SendSms``."""

    provider = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        default_sign: str,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = "cn-hangzhou",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.default_sign = default_sign
        self.endpoint = endpoint
        self.region = region
        self._client = client or httpx.Client(timeout=timeout)

    def params_for(self, request: SmsRequest, *, now: datetime | None = None) -> dict[str, str]:
        """The signed form parameters of one ``SendSms`` call."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            "PhoneNumbers": phone_numbers(request.phone),
            "SignName": request.sign,
            "TemplateCode": request.template_code,
            "OutId": request.out_id,
        }
        if request.params:
            params["TemplateParam"] = json.dumps(
                dict(request.params), ensure_ascii=False, separators=(",", ":")
            )
        params["Signature"] = sign(params, self._secret)
        return params

    def send(self, request: SmsRequest) -> SmsResult:
        """Send one text; the provider's errors become Transient / PermanentSmsError."""
        try:
            response = self._client.post(self.endpoint, data=self.params_for(request))
        except httpx.HTTPError as exc:  # timeouts, refused connections, broken lines
            raise TransientSmsError(type(exc).__name__, scrub(str(exc))) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = str(body.get("Code") or f"HTTP {response.status_code}")
        if response.status_code == 200 and code == "OK":
            return SmsResult(provider_id=str(body.get("BizId") or "") or None)
        message = scrub(str(body.get("Message") or ""))
        if response.status_code >= 500 or code in TRANSIENT_CODES:
            raise TransientSmsError(code, message)
        raise PermanentSmsError(code, message)
