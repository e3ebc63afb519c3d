"""The providers' request signatures: Aliyun's documented SendSms example, the TC3
scheme's structure, and the shape of the requests."""

from __future__ import annotations

import json

from guanxi.notify.sms.aliyun import AliyunSms, canonical_query, percent_encode, phone_numbers, sign
from guanxi.notify.sms.base import SmsRequest
from guanxi.notify.sms.tencent import TencentSms, authorization

# The example of Alibaba Cloud's "SendSms signature" document (GET, key testId / testSecret).
DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_aliyun_signature_matches_the_documented_example() -> None:
    assert sign(DOC_PARAMS, "testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert canonical_query(DOC_PARAMS).startswith(
        "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
        "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91"
    )
    # RFC 3986: space as %20, ~ kept, * and + encoded.
    assert percent_encode("a b~*+") == "a%20b~%2A%2B"


def test_aliyun_request_parameters() -> None:
    gateway = AliyunSms(access_key_id="k", access_key_secret="s", default_sign="关系客服")
    request = SmsRequest(
        phone="+8613912345678",
        sign="关系客服",
        template_code="SMS_1",
        params={"name": "张先生", "link": "https://x.cn/s/1"},
        out_id="survey:7",
    )
    params = gateway.params_for(request)
    assert params["PhoneNumbers"] == "13912345678"
    assert json.loads(params["TemplateParam"]) == {"name": "张先生", "link": "https://x.cn/s/1"}
    assert (params["OutId"], params["Version"], params["SignatureMethod"]) == (
        "survey:7",
        "2017-05-25",
        "HMAC-SHA1",
    )
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    assert params["Signature"] == sign(unsigned, "s")
    assert phone_numbers("+85261234567") == "85261234567"


def test_tencent_payload_keeps_the_template_order() -> None:
    gateway = TencentSms(secret_id="id", secret_key="k", app_id="1400", default_sign="关系")
    request = SmsRequest(
        phone="+8613912345678",
        sign="关系",
        template_code="123",
        params={"link": "L", "name": "N"},
        out_id="k1",
        param_order=("name", "link"),
    )
    payload = gateway.payload_for(request)
    assert payload == {
        "PhoneNumberSet": ["+8613912345678"],
        "SmsSdkAppId": "1400",
        "SignName": "关系",
        "TemplateId": "123",
        "TemplateParamSet": ["N", "L"],
        "SessionContext": "k1",
    }
    header = authorization(
        secret_id="id", secret_key="k", host="sms.tencentcloudapi.com", action="SendSms",
        payload=b"{}", timestamp=1551113065,
    )  # fmt: skip
    assert header.startswith(
        "TC3-HMAC-SHA256 Credential=id/2019-02-25/sms/tc3_request, "
        "SignedHeaders=content-type;host;x-tc-action, Signature="
    )
    assert len(header.rsplit("=", 1)[1]) == 64
