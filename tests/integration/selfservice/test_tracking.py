"""Tracking on the self-service page and its public API: the right digits show the masked
public tracking, anything wrong gets one message, and the limits answer 429 at the exact
count."""

from __future__ import annotations

import re
from typing import Any

import pytest

from guanxi.selfservice import service
from guanxi.selfservice.schemas import TrackIn
from tests.integration.selfservice.base import WAYBILL, track_page

NO_MATCH_EN = "No waybill matches these details."
NO_MATCH_ZH = "没有与您输入的信息相符的运单。"


def _error(html: str) -> str:
    found = re.search(r'<p class="error banner" role="alert" id="track-error">([^<]*)</p>', html)
    assert found, html
    return found.group(1)


def test_right_digits_of_either_phone_show_the_masked_tracking(client: Any, shipment: Any) -> None:
    for digits in ("5678", "8000"):  # the sender's (customer's) phone, the receiver's
        resp = client.post(
            "/api/v1/public/track", json={"waybill_no": WAYBILL, "phone_last4": digits}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        events = body.pop("events")
        assert body == {
            "waybill_no": WAYBILL,
            "status": "in_transit",
            "service_type": "express",
            "origin": "浙江省 杭州市",
            "destination": "上海市",
            "sender": "张**",
            "receiver": "李*",
            "receiver_phone": "****8000",
            "created_at": "2026-11-20T02:00:00Z",
            "promised_at": "2026-11-23T10:00:00Z",
            "delivered_at": None,
        }
        assert events == [
            {"occurred_at": "2026-11-20T02:00:00Z", "status": "created", "location": None},
            {
                "occurred_at": "2026-11-21T06:30:00Z",
                "status": "in_transit",
                "location": "杭州转运中心",
            },
        ]
    # Lower case and spaces are forgiven; the number is the same waybill.
    resp = client.post(
        "/api/v1/public/track", json={"waybill_no": f" {WAYBILL.lower()} ", "phone_last4": "5678"}
    )
    assert resp.status_code == 200


def test_the_page_shows_the_tracking_without_personal_data(client: Any, shipment: Any) -> None:
    resp = track_page(client, WAYBILL, "8000")
    assert resp.status_code == 200
    html = resp.text
    for shown in ('id="s-sender">张**<', "李*", "****8000", "杭州转运中心", "浙江省 杭州市"):
        assert shown in html
    # No name, phone, address detail, fee or declared value in clear; staff notes left out.
    for hidden in (
        "张三丰",
        "李四",
        "13912345678",
        "13800138000",
        "12.00",
        "1200",
        "500.00",
        "司机",
    ):
        assert hidden not in html
    assert resp.headers["cache-control"] == "no-store"
    assert 'name="viewport"' in html
    assert "/customers" not in html


def test_wrong_digits_and_unknown_waybills_get_the_same_answer(client: Any, shipment: Any) -> None:
    answers = []
    for waybill, digits in ((WAYBILL, "0000"), ("ZZ0000000000", "5678"), ("ZZ0000000000", "0000")):
        resp = client.post(
            "/api/v1/public/track",
            json={"waybill_no": waybill, "phone_last4": digits},
            headers={"Accept-Language": "en"},
        )
        assert resp.status_code == 404
        body = resp.json()
        answers.append((body["title"], body["detail"], body["code"]))
        page = track_page(client, waybill, digits)
        assert page.status_code == 200
        assert _error(page.text) == NO_MATCH_EN
    assert answers == [("Not found", NO_MATCH_EN, "not_found")] * 3
    zh = client.post(
        "/api/v1/public/track",
        json={"waybill_no": WAYBILL, "phone_last4": "0000"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert zh.json()["detail"] == NO_MATCH_ZH
    assert _error(track_page(client, WAYBILL, "1111", lang="zh-CN").text) == NO_MATCH_ZH
    # No language asked for: the configured default (zh_CN).
    page = client.post("/track", data={"waybill_no": WAYBILL, "phone_last4": "1112"})
    assert _error(page.text) == NO_MATCH_ZH


def test_badly_typed_input_names_the_field(client: Any, shipment: Any) -> None:
    page = track_page(client, "SF1", "12a")
    assert page.status_code == 422
    assert "Enter the waybill number (6 to 40 letters and digits)" in page.text
    assert "Enter the last 4 digits of the phone number" in page.text
    api = client.post("/api/v1/public/track", json={"waybill_no": WAYBILL, "phone_last4": "123"})
    assert api.status_code == 422
    assert [e["field"] for e in api.json()["errors"]] == ["phone_last4"]


def test_track_compares_every_candidate(db: Any, shipment: Any) -> None:
    hit = service.track(db, track_in=TrackIn(waybill_no=WAYBILL, phone_last4="8000"))
    assert hit is not None
    assert hit.shipment_id == shipment.id
    assert service.track(db, track_in=TrackIn(waybill_no=WAYBILL, phone_last4="8001")) is None


def test_masks() -> None:
    assert service.mask_name("张三丰") == "张**"
    assert service.mask_name("李四") == "李*"
    assert service.mask_name("杭州顺达物流有限公司") == "杭***"
    assert service.mask_name("王") == "王*"
    assert service.mask_name("  ") is None
    assert service.mask_waybill("SF1234567890") == "SF12****7890"
    assert service.mask_waybill("AB1234") == "AB****"


# --------------------------------------------------------------------------- rate limits


def test_lookups_per_address_stop_at_the_limit(client: Any, shipment: Any) -> None:
    # Default: 20 lookups a minute per client address, whatever their outcome.
    for n in range(20):
        digits = "5678" if n % 2 else "0000"
        waybill = WAYBILL if n % 2 else f"ZZ{n:010d}"
        resp = client.post(
            "/api/v1/public/track", json={"waybill_no": waybill, "phone_last4": digits}
        )
        assert resp.status_code in (200, 404), (n, resp.text)
    refused = client.post(
        "/api/v1/public/track",
        json={"waybill_no": WAYBILL, "phone_last4": "5678"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["title"] == "请求过于频繁"
    assert refused.json()["detail"] == "尝试次数过多，请 1 分钟后再试。"
    page = track_page(client, WAYBILL, "5678")
    assert page.status_code == 429
    assert _error(page.text) == "Too many attempts. Please try again in 1 min."
    assert 1 <= int(page.headers["retry-after"]) <= 60


def test_failed_lookups_per_waybill_stop_guessing(app: Any, client: Any, shipment: Any) -> None:
    # Default: 10 failed lookups an hour per waybill; then even the right digits wait.
    app.state.settings = app.state.settings.model_copy(
        update={"selfservice_lookup_limit": "1000/minute"}
    )

    def lookup(waybill: str, digits: str) -> Any:
        return client.post(
            "/api/v1/public/track", json={"waybill_no": waybill, "phone_last4": digits}
        )

    for waybill in (WAYBILL, "ZZ0000000001"):  # an existing waybill and one that is not
        assert [lookup(waybill, f"{n:04d}").status_code for n in range(10)] == [404] * 10
        refused = lookup(waybill, "5678")
        assert refused.status_code == 429  # the same for both: a refusal reveals nothing
        assert 3540 <= int(refused.headers["retry-after"]) <= 3600
    # Other waybills from the same address are not affected.
    assert lookup("ZZ0000000002", "0000").status_code == 404


def test_limits_are_configurable(app: Any, client: Any, shipment: Any) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"selfservice_lookup_limit": "3/minute"}
    )
    codes = [
        client.post(
            "/api/v1/public/track", json={"waybill_no": WAYBILL, "phone_last4": "5678"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize("bad", ["20 per fortnight", "many"])
def test_a_mistyped_limit_stops_the_start(bad: str, tmp_path: Any) -> None:
    from pydantic import ValidationError

    from guanxi.config import Settings
    from tests.conftest import settings_for

    base = settings_for("sqlite://", tmp_path).model_dump()
    with pytest.raises(ValidationError, match="GUANXI_SELFSERVICE_FAILURE_LIMIT"):
        Settings(**{**base, "selfservice_failure_limit": bad})
