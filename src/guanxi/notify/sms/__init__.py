"""SMS gateways behind one interface (``SmsGateway.send(SmsRequest) -> SmsResult``):
Aliyun Dysmsapi, Tencent Cloud SMS, and the local file / console gateways."""

from __future__ import annotations

from guanxi.config import Settings
from guanxi.notify.sms.base import (
    PermanentSmsError,
    SmsError,
    SmsGateway,
    SmsRequest,
    SmsResult,
    TransientSmsError,
)

__all__ = [
    "PermanentSmsError",
    "SmsError",
    "SmsGateway",
    "SmsRequest",
    "SmsResult",
    "TransientSmsError",
    "gateway_from_settings",
]


def gateway_from_settings(settings: Settings) -> SmsGateway:
    """The gateway ``GUANXI_SMS_PROVIDER`` names, configured from the settings."""
    sign = settings.sms_sign_name
    if settings.sms_provider == "aliyun":
        from guanxi.notify.sms.aliyun import DEFAULT_ENDPOINT, AliyunSms

        return AliyunSms(
            access_key_id=settings.sms_key_id,
            access_key_secret=settings.sms_key_secret,
            default_sign=sign,
            endpoint=settings.sms_endpoint or DEFAULT_ENDPOINT,
            region=settings.sms_region or "cn-hangzhou",
            timeout=settings.sms_timeout,
        )
    if settings.sms_provider == "tencent":
        from guanxi.notify.sms.tencent import DEFAULT_ENDPOINT as TC_ENDPOINT
        from guanxi.notify.sms.tencent import TencentSms

        return TencentSms(
            secret_id=settings.sms_key_id,
            secret_key=settings.sms_key_secret,
            app_id=settings.sms_app_id,
            default_sign=sign,
            endpoint=settings.sms_endpoint or TC_ENDPOINT,
            region=settings.sms_region or "ap-guangzhou",
            timeout=settings.sms_timeout,
        )
    from guanxi.notify.sms.local import ConsoleSms, FileSms

    if settings.sms_provider == "console":
        return ConsoleSms(default_sign=sign)
    return FileSms(
        settings.data_dir / "sms" / "outbox.jsonl",
        default_sign=sign,
        clear_numbers=settings.sms_file_clear_numbers,
    )
