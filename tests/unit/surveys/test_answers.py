"""Checking answers against a version's questions: required, ranges, choices, texts; every
error names its question (number and wording) in the respondent's language; the scores and
the detractor rule."""

from __future__ import annotations

from typing import Any

import pytest

from guanxi.core.errors import ValidationFailed
from guanxi.core.web import translate_field_error
from guanxi.surveys.answers import parse_answers, scores_of
from guanxi.surveys.service import OptionView, QuestionView, VersionView


def _q(n: int, code: str, kind: str, zh: str, en: str, **kw: Any) -> QuestionView:
    return QuestionView(
        id=n, position=n, code=code, kind=kind, dimension=kw.get("dimension"), label_zh=zh,
        label_en=en, required=kw.get("required", False), reason_for=kw.get("reason_for"),
        options=tuple(kw.get("options", ())),
    )  # fmt: skip


VIEW = VersionView(
    id=1,
    template_id=1,
    template_code="t",
    name_zh="测试",
    name_en="Test",
    number=1,
    status="published",
    questions=(
        _q(1, "csat", "csat", "总体满意度", "Overall satisfaction", required=True),
        _q(2, "nps", "nps", "推荐意愿", "Would you recommend us", required=True),
        _q(3, "why", "text", "原因", "Why", reason_for="nps"),
        _q(4, "dim_timeliness", "dimension", "时效", "Timeliness", dimension="timeliness"),
        _q(5, "stars", "rating", "评分", "Stars"),
        _q(
            6,
            "how",
            "single",
            "寄件方式",
            "How you shipped",
            options=(
                OptionView("outlet", "网点", "Outlet"),
                OptionView("pickup", "上门", "Pickup"),
            ),
        ),
        _q(
            7,
            "extras",
            "multi",
            "附加服务",
            "Extras",
            options=(
                OptionView("insure", "保价", "Insurance"),
                OptionView("cod", "代收", "COD"),
                OptionView("sign", "签回单", "Receipt"),
            ),
        ),
    ),  # fmt: skip
)


def _errors(raw: dict[str, Any], lang: str) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as failed:
        parse_answers(VIEW, raw, lang)
    return {str(e.loc[-1]): translate_field_error(e, lang) for e in failed.value.errors}


def test_a_full_valid_answer() -> None:
    parsed = parse_answers(
        VIEW,
        {
            "csat": "8",
            "nps": 3,
            "why": "  太慢  ",
            "dim_timeliness": "2",
            "stars": 5,
            "how": "pickup",
            "extras": ["sign", "insure", "sign"],
        },
        "zh_CN",
    )
    got = {p.question.code: (p.value_int, p.value_text, p.choices) for p in parsed}
    assert got == {
        "csat": (8, None, ()),
        "nps": (3, None, ()),
        "why": (None, "太慢", ()),
        "dim_timeliness": (2, None, ()),
        "stars": (5, None, ()),
        "how": (None, None, ("pickup",)),
        "extras": (None, None, ("insure", "sign")),  # in the options' order, once
    }
    scores = scores_of(parsed)
    assert (scores.csat, scores.nps, scores.dims, scores.reason) == (
        8, 3, {"timeliness": 2}, "太慢",
    )  # fmt: skip
    assert scores.detractor


def test_errors_name_the_question_in_english() -> None:
    errors = _errors(
        {"csat": "0", "dim_timeliness": "11", "stars": 6, "how": "drone", "extras": ["x"],
         "why": "x" * 2001, "ghost": 1},
        "en",
    )  # fmt: skip
    assert errors == {
        "csat": "Question 1 “Overall satisfaction”: choose a score from 1 to 10",
        "nps": "Question 2 “Would you recommend us”: please answer it",
        "why": "Question 3 “Why”: at most 2000 characters",
        "dim_timeliness": "Question 4 “Timeliness”: choose a score from 1 to 10",
        "stars": "Question 5 “Stars”: choose a score from 1 to 5",
        "how": "Question 6 “How you shipped”: choose from the options given",
        "extras": "Question 7 “Extras”: choose from the options given",
        "ghost": "This survey has no such question",
    }


def test_errors_name_the_question_in_chinese() -> None:
    errors = _errors({"nps": "11", "how": ["outlet", "pickup"]}, "zh_CN")
    assert errors == {
        "csat": "第 1 题“总体满意度”：请作答",
        "nps": "第 2 题“推荐意愿”：请选择 0 到 10 分",
        "how": "第 6 题“寄件方式”：请只选一项",
    }


@pytest.mark.parametrize(
    ("raw", "detractor"),
    [
        ({"csat": 10, "nps": 6}, True),  # NPS 0-6 decides when asked
        ({"csat": 1, "nps": 7}, False),
        ({"csat": 4, "nps": 9}, False),
        ({"csat": 4}, True),  # no NPS: CSAT 4 or lower
        ({"csat": 5}, False),
    ],
)
def test_the_detractor_rule(raw: dict[str, int], detractor: bool) -> None:
    view = VersionView(1, 1, "t", "t", "t", 1, "published", VIEW.questions[:2])
    questions = view.questions if "nps" in raw else view.questions[:1]
    view = VersionView(1, 1, "t", "t", "t", 1, "published", questions)
    assert scores_of(parse_answers(view, raw, "en")).detractor is detractor


def test_empty_answers_to_optional_questions_are_skipped() -> None:
    parsed = parse_answers(
        VIEW, {"csat": 9, "nps": "10", "why": "   ", "extras": [], "how": None}, "en"
    )
    assert [p.question.code for p in parsed] == ["csat", "nps"]
    assert not scores_of(parsed).detractor
