"""Which SMS gateway the settings give, the refusal of a gateway without keys, and the
console gateway's masked log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from guanxi.config import Environment, Settings
from guanxi.notify.sms import SmsRequest, gateway_from_settings
from guanxi.notify.sms.aliyun import AliyunSms
from guanxi.notify.sms.local import ConsoleSms, FileSms
from guanxi.notify.sms.tencent import TencentSms


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(
        env=Environment.test,
        data_dir=tmp_path,
        secret_key="s",
        field_keys={"k": "a2trazJrazJrazJrazJrazJrazJrazJrazJrazJrazI="},
        active_field_key="k",
        blind_index_key="YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=",
        **kw,  # type: ignore[arg-type]
    )


def test_the_settings_choose_the_gateway(tmp_path: Path) -> None:
    default = gateway_from_settings(_settings(tmp_path))
    assert isinstance(default, FileSms)
    assert default.path == tmp_path / "sms" / "outbox.jsonl"
    assert default.default_sign == "关系客服"
    assert isinstance(
        gateway_from_settings(_settings(tmp_path, sms_provider="console")), ConsoleSms
    )
    aliyun = gateway_from_settings(
        _settings(tmp_path, sms_provider="aliyun", sms_key_id="id", sms_key_secret="sec")
    )
    assert isinstance(aliyun, AliyunSms)
    assert (aliyun.endpoint, aliyun.region) == ("https://dysmsapi.aliyuncs.com/", "cn-hangzhou")
    tencent = gateway_from_settings(
        _settings(
            tmp_path,
            sms_provider="tencent",
            sms_key_id="id",
            sms_key_secret="sec",
            sms_app_id="1400",
            sms_endpoint="http://127.0.0.1:9/",
            sms_sign_name="顺达快递",
        )
    )
    assert isinstance(tencent, TencentSms)
    assert (tencent.endpoint, tencent.app_id, tencent.default_sign) == (
        "http://127.0.0.1:9/",
        "1400",
        "顺达快递",
    )


def test_a_gateway_without_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GUANXI_SMS_KEY_ID, GUANXI_SMS_KEY_SECRET"):
        _settings(tmp_path, sms_provider="aliyun")
    with pytest.raises(ValueError, match="GUANXI_SMS_APP_ID"):
        _settings(tmp_path, sms_provider="tencent", sms_key_id="i", sms_key_secret="s")


def test_the_console_gateway_logs_the_masked_number(caplog: pytest.LogCaptureFixture) -> None:
    gateway = ConsoleSms(default_sign="关系")
    with caplog.at_level(logging.INFO, logger="guanxi.notify.sms"):
        result = gateway.send(
            SmsRequest(
                phone="+8613912345678",
                sign="关系",
                template_code="care_thanks",
                params={},
                out_id="k",
                text="感谢您的支持",
            )
        )
    assert result.provider_id is not None
    assert result.provider_id.startswith("console-")
    assert "13912345678" not in caplog.text
    assert f"sms {result.provider_id} to 139****5678: 【关系】感谢您的支持" in caplog.text
