"""Checking answers against the questions of the version asked, and the scores they give.

Every error names its question: its number and its wording in the respondent's language
(error codes ``survey_*`` in core/messages.py), so the page and the API say which answer is
wrong and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.surveys.enums import CSAT_DETRACTOR_UP_TO, DETRACTOR_UP_TO, QuestionKind
from guanxi.surveys.schemas import AnswerValue
from guanxi.surveys.service import QuestionView, VersionView

TEXT_MAX = 2000


@dataclass(frozen=True)
class Parsed:
    """One question's answer, checked."""

    question: QuestionView
    value_int: int | None = None
    value_text: str | None = None
    choices: tuple[str, ...] = ()


def _error(q: QuestionView, lang: str, code: str, message: str, **params: Any) -> FieldError:
    """An error naming the question: its number and its wording in the reader's language."""
    return FieldError(
        ("answers", q.code),
        code,
        f"Question {q.position} \u201c{q.label_en}\u201d: {message}",
        {"number": q.position, "question": q.label(lang), **params},
    )


def _empty(value: AnswerValue) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return not [v for v in value if str(v).strip()]
    return False


def _score(q: QuestionView, value: AnswerValue, lang: str) -> Parsed | FieldError:
    low, high = q.scale or (0, 0)
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        return _error(
            q, lang, "survey_range", f"choose a score from {low} to {high}", low=low, high=high
        )
    return Parsed(q, value_int=number)


def _choices(q: QuestionView, value: AnswerValue, lang: str) -> Parsed | FieldError:
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    allowed = [o.value for o in q.options]
    picked = [str(v).strip() for v in values or [] if str(v).strip()]
    if values is None or any(v not in allowed for v in picked):
        return _error(q, lang, "survey_choice", "choose from the options given")
    if q.kind == QuestionKind.single.value and len(picked) != 1:
        return _error(q, lang, "survey_choice_one", "choose one option")
    ordered = tuple(v for v in allowed if v in picked)
    return Parsed(q, choices=ordered)


def parse_answers(view: VersionView, raw: Mapping[str, AnswerValue], lang: str) -> list[Parsed]:
    """The answers checked against the version's questions: required ones given, scores
    in range, choices among the options, texts not too long. Raises ValidationFailed with
    one error per offending question, each naming it in ``lang``."""
    errors: list[FieldError] = []
    out: list[Parsed] = []
    known = {q.code for q in view.questions}
    for code in raw:
        if code not in known:
            errors.append(
                FieldError(
                    ("answers", code), "survey_question_unknown", "This survey has no such question"
                )
            )
    for q in view.questions:
        value = raw.get(q.code)
        if _empty(value):
            if q.required:
                errors.append(_error(q, lang, "survey_required", "answer this question"))
            continue
        kind = QuestionKind(q.kind)
        parsed: Parsed | FieldError
        if q.scale is not None:
            parsed = _score(q, value, lang)
        elif kind in (QuestionKind.single, QuestionKind.multi):
            parsed = _choices(q, value, lang)
        elif not isinstance(value, str) or "\x00" in value:
            parsed = _error(q, lang, "survey_text", "write text")
        elif len(value.strip()) > TEXT_MAX:
            parsed = _error(
                q, lang, "survey_text_long", f"at most {TEXT_MAX} characters", max_length=TEXT_MAX
            )
        else:
            parsed = Parsed(q, value_text=value.strip())
        if isinstance(parsed, FieldError):
            errors.append(parsed)
        else:
            out.append(parsed)
    if errors:
        raise ValidationFailed(errors)
    return out


@dataclass
class Scores:
    """The overall and dimension scores and the reason of a set of answers."""

    csat: int | None = None
    nps: int | None = None
    dims: dict[str, int] = field(default_factory=dict)
    reason: str | None = None

    @property
    def detractor(self) -> bool:
        """NPS 0-6; where no NPS was asked, CSAT 4 or lower."""
        if self.nps is not None:
            return self.nps <= DETRACTOR_UP_TO
        return self.csat is not None and self.csat <= CSAT_DETRACTOR_UP_TO


def scores_of(parsed: list[Parsed]) -> Scores:
    """The figures the results aggregate, from the checked answers."""
    scores = Scores()
    reasons: dict[str, str] = {}
    for p in parsed:
        kind = p.question.kind
        if kind == QuestionKind.csat.value:
            scores.csat = p.value_int
        elif kind == QuestionKind.nps.value:
            scores.nps = p.value_int
        elif kind == QuestionKind.dimension.value and p.question.dimension:
            assert p.value_int is not None  # noqa: S101 - a scored question
            scores.dims[p.question.dimension] = p.value_int
        elif p.question.reason_for and p.value_text:
            reasons[p.question.reason_for] = p.value_text
    # The reason for the recommendation first, else for overall satisfaction, else any.
    scores.reason = reasons.get("nps") or reasons.get("csat") or next(iter(reasons.values()), None)
    return scores
