"""The public survey page: a link answers once, before it expires; a reused, expired or
tampered link gets a friendly page (never an error) that says nothing helping a guess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.surveys.models import SurveyAnswer, SurveyInvitation, SurveyResponse
from tests.integration.surveys.helpers import invite

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def test_a_link_opens_its_survey_and_answers_once(
    client: Any, db: Session, mobile_customer: Any
) -> None:
    invited = invite(db, mobile_customer.id, "relationship")
    page = client.get(f"/q/{invited.token}", headers=ZH)
    assert page.status_code == 200
    assert "客户关系调查" in page.text
    assert "您有多大可能向亲友或同事推荐我们？" in page.text
    assert page.headers["cache-control"] == "no-store"
    # Small: no scripts, one small cacheable stylesheet (the CSP forbids inline styles).
    assert "<script" not in page.text
    assert page.text.count('rel="stylesheet"') == 1
    assert '<link rel="stylesheet" href="/static/css/survey-public.css">' in page.text
    assert len(page.content) < 20_000
    sent = client.post(
        f"/q/{invited.token}",
        data={"q_nps": "9", "q_nps_reason": "  送得快  ", "q_dim_price": "6"},
        headers=ZH,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/q/{invited.token}/thanks"
    thanks = client.get(sent.headers["location"], headers=ZH)
    assert "谢谢" in thanks.text
    db.expire_all()
    response = db.scalar(select(SurveyResponse).where(SurveyResponse.invitation_id == invited.id))
    assert response is not None
    assert (response.nps, response.dim_price, response.reason, response.channel) == (
        9,
        6,
        "送得快",
        "sms",
    )
    assert db.scalar(select(func.count()).where(SurveyAnswer.response_id == response.id)) == 3
    invitation = db.get(SurveyInvitation, invited.id)
    assert invitation is not None
    assert invitation.status == "answered"
    # Used: the page and a second submission both say so; nothing more is stored.
    again = client.get(f"/q/{invited.token}", headers=EN)
    assert again.status_code == 409
    assert "You have already answered" in again.text
    twice = client.post(f"/q/{invited.token}", data={"q_nps": "1"}, headers=EN)
    assert twice.status_code == 409
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_an_expired_link_is_refused_kindly(client: Any, db: Session, mobile_customer: Any) -> None:
    sent_at = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    invited = invite(db, mobile_customer.id, "relationship", now=sent_at, expiry_days=14)
    with clock.frozen(sent_at + timedelta(days=14, seconds=-1)):
        assert client.get(f"/q/{invited.token}", headers=EN).status_code == 200
    with clock.frozen(sent_at + timedelta(days=14)):
        page = client.get(f"/q/{invited.token}", headers=EN)
        assert page.status_code == 410
        assert "This survey has closed" in page.text
        post = client.post(f"/q/{invited.token}", data={"q_nps": "10"}, headers=EN)
        assert post.status_code == 410
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_tampered_and_unknown_links_say_nothing(
    client: Any, db: Session, mobile_customer: Any
) -> None:
    invited = invite(db, mobile_customer.id, "relationship")
    flipped = invited.token[:-1] + ("A" if invited.token[-1] != "A" else "B")
    texts = set()
    for token in (flipped, "x" * 22, "short", "a" * 200, "%00%27--", invited.token + "x"):
        page = client.get(f"/q/{token}", headers=EN)
        assert page.status_code == 404, token
        post = client.post(f"/q/{token}", data={"q_nps": "10"}, headers=EN)
        assert post.status_code == 404, token
        texts.add(page.text.split("<main", 1)[1])
    # One page for every kind of wrong link.
    assert len(texts) == 1
    assert "This link does not work" in texts.pop()
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_validation_names_the_question_in_the_respondents_language(
    client: Any, db: Session, mobile_customer: Any
) -> None:
    invited = invite(db, mobile_customer.id, "after_ticket")
    zh = client.post(f"/q/{invited.token}", data={"q_csat": "11", "q_dim_price": "x"}, headers=ZH)
    assert zh.status_code == 422
    assert "第 1 题“总体而言，您对本次服务的满意程度如何？”：请选择 1 到 10 分" in zh.text
    assert "第 2 题“您有多大可能向亲友或同事推荐我们？”：请作答" in zh.text
    assert "第 7 题“价格（运费、赔付）是否合理”：请选择 1 到 10 分" in zh.text
    en = client.post(f"/q/{invited.token}", data={"q_csat": "0", "q_nps": "7"}, headers=EN)
    assert en.status_code == 422
    assert (
        "Question 1 “Overall, how satisfied are you with our service this time?”: choose a "
        "score from 1 to 10" in en.text
    )
    # The answers given stay filled in; nothing was stored and the link still works.
    assert 'value="7" checked' in en.text
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    assert client.get(f"/q/{invited.token}").status_code == 200


def test_the_language_switch(client: Any, db: Session, mobile_customer: Any) -> None:
    invited = invite(db, mobile_customer.id, "relationship")
    zh = client.get(f"/q/{invited.token}", headers=ZH)
    assert f'href="/q/{invited.token}?lang=en"' in zh.text
    en = client.get(f"/q/{invited.token}?lang=en", headers=ZH)
    assert "Relationship survey" in en.text
    assert "How likely are you to recommend us to a friend or colleague?" in en.text
    assert en.cookies.get("guanxi_lang") == "en"
