"""Stop words of SMS replies, the opt-out line of marketing texts, template rendering and
webhook signatures for receivers."""

from __future__ import annotations

import time

import pytest

from guanxi.notify.sms.templates import BUILTIN
from guanxi.notify.unsubscribe import email_footer, is_stop_reply, sms_suffix
from guanxi.notify.webhooks import signature_header, verify_signature


@pytest.mark.parametrize(
    "text",
    ["TD", "td", "ＴＤ", " t ", "N", "退订", "取消", "Unsubscribe", "TD。", "【TD】", "stop"],
)
def test_stop_words(text: str) -> None:
    assert is_stop_reply(text)


@pytest.mark.parametrize("text", ["谢谢", "TD退订吗", "好的", "TDD", "", "not now"])
def test_not_stop_words(text: str) -> None:
    assert not is_stop_reply(text)


def test_marketing_sms_end_with_the_opt_out_line_once() -> None:
    assert sms_suffix("张先生您好，好久不见！", "zh_CN") == "张先生您好，好久不见！回TD退订"
    assert sms_suffix("Hello, we miss you!", "en") == "Hello, we miss you! Reply TD to unsubscribe"
    assert sms_suffix("优惠来了，拒收请回复R退订", "zh_CN") == "优惠来了，拒收请回复R退订"
    assert sms_suffix("Offer inside. Reply TD to stop", "en") == "Offer inside. Reply TD to stop"
    assert email_footer("https://x/u/t", "en") == (
        "To stop receiving these e-mails, unsubscribe here: https://x/u/t"
    )


def test_builtin_templates_render_in_both_languages() -> None:
    invite = BUILTIN["survey_invite"]
    assert invite.param_order == ("days", "link")
    params = {"days": "7", "link": "https://g.cn/v/ab"}
    assert invite.render("zh_CN", params) == (
        "您好，感谢您选择我们的服务，请花1分钟评价本次服务（7天内有效）：https://g.cn/v/ab"
    )
    assert invite.render("en", params) == (
        "Hello, thank you for choosing us. Please rate our service within 7 days: https://g.cn/v/ab"
    )
    birthday = BUILTIN["care_birthday"]
    assert birthday.param_order == ("name", "company", "coupon_name", "coupon_code")
    # A missing parameter renders empty rather than failing the send.
    assert birthday.render("zh_CN", {"name": "李", "company": "关系速递", "coupon_code": "X1"}) == (
        "李，关系速递祝您生日快乐！送上，券码X1。"
    )
    assert {t.code for t in BUILTIN.values()} == {
        "survey_invite",
        "survey_reminder",
        "care_greeting",
        "care_birthday",
        "care_winback",
        "care_thanks",
        "loyalty_tier",
        "coupon_issued",
    }
    assert BUILTIN["coupon_issued"].provider_template("aliyun") is None
    assert BUILTIN["coupon_issued"].provider_template("local") == "coupon_issued"


def test_verify_signature() -> None:
    body = b'{"event":"survey.detractor"}'
    now = int(time.time())
    header = signature_header("whsec_a", body, now)
    assert verify_signature("whsec_a", header, body)
    assert not verify_signature("whsec_b", header, body)
    assert not verify_signature("whsec_a", header, body + b" ")
    assert not verify_signature("whsec_a", header, body, now=now + 301)
    assert verify_signature("whsec_a", header, body, now=now + 300)
    assert not verify_signature("whsec_a", "garbage", body)
    # During a rotation a sender may sign with both secrets: one match is enough.
    both = header + "," + signature_header("whsec_new", body, now).split(",")[1]
    assert verify_signature("whsec_new", both, body)
