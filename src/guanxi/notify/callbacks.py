"""What SMS providers tell us after sending: delivery reports and customers' replies.

Aliyun pushes ``SmsReport`` (a JSON array of ``phone_number, success, biz_id, out_id,
err_code, err_msg, report_time ...``) and ``SmsUp`` (``phone_number, content, sign_name,
send_time ...``); Tencent pushes status reports (an array of ``mobile, report_status
SUCCESS/FAIL, sid, errmsg, user_receive_time ...``) and replies (``mobile, nationcode,
text, sign, time``). Reports set a message's delivery state, found by the provider's id
(BizId / sid) or by our key (OutId); a stop-word reply withdraws consents
(``notify/unsubscribe.py``). Times in the reports are China time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.notify.models import OutboxMessage
from guanxi.notify.outbox import Channel, Delivery
from guanxi.notify.sms.base import scrub
from guanxi.notify.unsubscribe import stop_by_reply

log = logging.getLogger("guanxi.notify.callbacks")
CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class DeliveryReport:
    """One report: which message (provider id and / or our key), whether it arrived."""

    provider_id: str | None
    out_id: str | None
    delivered: bool
    at: datetime | None
    error: str | None


@dataclass(frozen=True)
class Reply:
    """A text a customer sent back: the phone (as the provider wrote it) and the text."""

    phone: str
    text: str


@dataclass(frozen=True)
class CallbackOutcome:
    """What a callback changed."""

    matched: int = 0
    unmatched: int = 0
    withdrawn: int = 0


def _china_time(value: Any) -> datetime | None:
    """``2026-11-26 08:03:04`` (China time) or a unix time, as UTC; None if unreadable."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float) or str(value).isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        return (
            datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).astimezone(UTC)
        )
    except (ValueError, OverflowError, OSError):
        return None


def _items(payload: Any) -> list[Mapping[str, Any]]:
    if isinstance(payload, Mapping):
        return [payload]
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Mapping)]
    return []


def aliyun_reports(payload: Any) -> list[DeliveryReport]:
    """Aliyun SmsReport items."""
    out = []
    for item in _items(payload):
        success = item.get("success")
        delivered = success is True or str(success).lower() == "true"
        out.append(
            DeliveryReport(
                provider_id=str(item.get("biz_id") or "") or None,
                out_id=str(item.get("out_id") or "") or None,
                delivered=delivered,
                at=_china_time(item.get("report_time")),
                error=None if delivered else str(item.get("err_code") or "FAILED"),
            )
        )
    return out


def tencent_reports(payload: Any) -> list[DeliveryReport]:
    """Tencent status-report items."""
    out = []
    for item in _items(payload):
        delivered = str(item.get("report_status") or "").upper() == "SUCCESS"
        out.append(
            DeliveryReport(
                provider_id=str(item.get("sid") or "") or None,
                out_id=None,
                delivered=delivered,
                at=_china_time(item.get("user_receive_time")),
                error=None if delivered else str(item.get("errmsg") or "FAIL"),
            )
        )
    return out


def aliyun_replies(payload: Any) -> list[Reply]:
    """Aliyun SmsUp items."""
    return [
        Reply(str(item.get("phone_number") or ""), str(item.get("content") or ""))
        for item in _items(payload)
    ]


def tencent_replies(payload: Any) -> list[Reply]:
    """Tencent reply items (one object, or several)."""
    out = []
    for item in _items(payload):
        mobile = str(item.get("mobile") or "")
        code = str(item.get("nationcode") or "86")
        out.append(
            Reply(
                mobile if mobile.startswith("+") else f"+{code}{mobile}",
                str(item.get("text") or ""),
            )
        )
    return out


def apply_reports(session: Session, reports: Iterable[DeliveryReport]) -> CallbackOutcome:
    """Set the delivery state of the reported SMS (one transaction); reports that match
    no message are counted and otherwise ignored (the provider retries unacknowledged
    callbacks, so the answer is success either way)."""
    matched = unmatched = 0
    with write_transaction(session):
        for report in reports:
            keys = []
            if report.provider_id:
                keys.append(OutboxMessage.provider_id == report.provider_id[:64])
            if report.out_id:
                keys.append(OutboxMessage.key == report.out_id[:120])
            if not keys:
                unmatched += 1
                continue
            values: dict[str, Any] = {
                "delivery": (
                    Delivery.delivered if report.delivered else Delivery.undelivered
                ).value,
                "delivered_at": (report.at or clock.now()) if report.delivered else None,
            }
            if report.error:
                values["last_error"] = scrub(f"undelivered: {report.error}")[:300]
            done = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.channel == Channel.sms.value, or_(*keys))
                .values(**values)
            )
            if cast(CursorResult[Any], done).rowcount:
                matched += 1
            else:
                unmatched += 1
    if unmatched:
        log.info("sms reports: %d matched, %d matched no message", matched, unmatched)
    return CallbackOutcome(matched=matched, unmatched=unmatched)


def apply_replies(session: Session, replies: Iterable[Reply]) -> CallbackOutcome:
    """Apply customers' replies (one transaction): a stop word withdraws their SMS
    marketing and survey consents. Other replies are only counted (no content is kept:
    it may be personal)."""
    withdrawn = 0
    with write_transaction(session):
        for reply in replies:
            withdrawn += len(stop_by_reply(session, phone=reply.phone, text=reply.text))
    return CallbackOutcome(withdrawn=withdrawn)
