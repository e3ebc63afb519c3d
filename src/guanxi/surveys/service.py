"""Survey templates and their versions.

A template's questions are edited in its draft version; publishing makes the draft the
template's current version and retires the one before. A published version never changes
again: invitations and responses point at it, so an answer is always read against the
questions that were asked. Editing a template without a draft first copies the current
version into a new draft (version numbers count up per template).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import HotSelect, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.surveys.enums import SCALES, Dimension, QuestionKind, VersionStatus
from guanxi.surveys.models import SurveyOption, SurveyQuestion, SurveyTemplate, SurveyVersion
from guanxi.surveys.schemas import (
    DraftIn,
    OptionIn,
    OptionRead,
    QuestionIn,
    QuestionRead,
    TemplateCreate,
    TemplateRead,
    VersionRead,
)

# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class OptionView:
    """A choice as the answer page and the validation read it."""

    value: str
    label_zh: str
    label_en: str

    def label(self, lang: str) -> str:
        """The option in the reader's language."""
        return self.label_zh if lang.startswith("zh") else self.label_en


@dataclass(frozen=True)
class QuestionView:
    """A question as the answer page and the validation read it."""

    id: int
    position: int
    code: str
    kind: str
    dimension: str | None
    label_zh: str
    label_en: str
    required: bool
    reason_for: str | None
    options: tuple[OptionView, ...]

    def label(self, lang: str) -> str:
        """The question in the reader's language."""
        return self.label_zh if lang.startswith("zh") else self.label_en

    @property
    def scale(self) -> tuple[int, int] | None:
        """(lowest, highest) score of a scored question, else None."""
        return SCALES.get(QuestionKind(self.kind))


@dataclass(frozen=True)
class VersionView:
    """A version's questions, in order, with the template it belongs to."""

    id: int
    template_id: int
    template_code: str
    name_zh: str
    name_en: str
    number: int
    status: str
    questions: tuple[QuestionView, ...]

    def name(self, lang: str) -> str:
        """The template's name in the reader's language."""
        return self.name_zh if lang.startswith("zh") else self.name_en

    def by_code(self, code: str) -> QuestionView | None:
        """The question with ``code``, if the version has one."""
        return next((q for q in self.questions if q.code == code), None)


# Read on every answer page: compiled once, run on the driver's cursor.
_QUESTIONS = HotSelect(
    select(
        SurveyQuestion.id,
        SurveyQuestion.position,
        SurveyQuestion.code,
        SurveyQuestion.kind,
        SurveyQuestion.dimension,
        SurveyQuestion.label_zh,
        SurveyQuestion.label_en,
        SurveyQuestion.required,
        SurveyQuestion.reason_for,
    )
    .where(SurveyQuestion.version_id == bindparam("version_id"))
    .order_by(SurveyQuestion.position, SurveyQuestion.id)
)
_OPTIONS = HotSelect(
    select(
        SurveyOption.question_id,
        SurveyOption.value,
        SurveyOption.label_zh,
        SurveyOption.label_en,
    )
    .join(SurveyQuestion, SurveyQuestion.id == SurveyOption.question_id)
    .where(SurveyQuestion.version_id == bindparam("version_id"))
    .order_by(SurveyOption.question_id, SurveyOption.position)
)
_VERSION = HotSelect(
    select(
        SurveyVersion.id,
        SurveyVersion.template_id,
        SurveyVersion.number,
        SurveyVersion.status,
        SurveyTemplate.code,
        SurveyTemplate.name_zh,
        SurveyTemplate.name_en,
    )
    .join(SurveyTemplate, SurveyTemplate.id == SurveyVersion.template_id)
    .where(SurveyVersion.id == bindparam("version_id"))
)


def version_view(session: Session, version_id: int) -> VersionView:
    """A version's questions and options (three indexed reads); NotFound if none."""
    row = _VERSION.first(session, {"version_id": version_id})
    if row is None:
        raise NotFound("survey version not found", version_id=version_id)
    options: dict[int, list[OptionView]] = {}
    for o in _OPTIONS.all(session, {"version_id": version_id}):
        options.setdefault(o.question_id, []).append(OptionView(o.value, o.label_zh, o.label_en))
    questions = tuple(
        QuestionView(
            q.id,
            q.position,
            q.code,
            q.kind,
            q.dimension,
            q.label_zh,
            q.label_en,
            bool(q.required),
            q.reason_for,
            tuple(options.get(q.id, ())),
        )
        for q in _QUESTIONS.all(session, {"version_id": version_id})
    )
    return VersionView(
        row.id, row.template_id, row.code, row.name_zh, row.name_en, row.number, row.status,
        questions,
    )  # fmt: skip


def list_templates(session: Session, *, active_only: bool = False) -> list[SurveyTemplate]:
    """Every template by code."""
    stmt = select(SurveyTemplate).order_by(SurveyTemplate.code)
    if active_only:
        stmt = stmt.where(SurveyTemplate.active.is_(True))
    return list(session.scalars(stmt))


def get_template(session: Session, template_id: int) -> SurveyTemplate:
    """One template, or NotFound."""
    template = session.get(SurveyTemplate, template_id)
    if template is None:
        raise NotFound("survey template not found", template_id=template_id)
    return template


def template_by_code(session: Session, code: str, *, field: str = "template") -> SurveyTemplate:
    """The template with ``code``; a validation error naming ``field`` when there is none."""
    template = session.scalar(select(SurveyTemplate).where(SurveyTemplate.code == code))
    if template is None:
        raise ValidationFailed(
            [FieldError((field,), "survey_template_unknown", "No such survey", {"code": code})]
        )
    return template


def _version(session: Session, template_id: int, status: VersionStatus) -> SurveyVersion | None:
    return session.scalar(
        select(SurveyVersion)
        .where(SurveyVersion.template_id == template_id, SurveyVersion.status == status.value)
        .order_by(SurveyVersion.number.desc())
        .limit(1)
    )


def current_version(session: Session, template_id: int) -> SurveyVersion | None:
    """The template's published version (what new invitations ask), if any."""
    return _version(session, template_id, VersionStatus.published)


def draft_version(session: Session, template_id: int) -> SurveyVersion | None:
    """The template's draft, if one is being edited."""
    return _version(session, template_id, VersionStatus.draft)


def live_version_id(session: Session, template: SurveyTemplate, *, field: str = "template") -> int:
    """The id of the version new answers of ``template`` use; a validation error naming
    ``field`` when the template is inactive or was never published."""
    version = current_version(session, template.id) if template.active else None
    if version is None:
        raise ValidationFailed(
            [
                FieldError(
                    (field,),
                    "survey_not_published",
                    "This survey has no published version",
                    {"code": template.code},
                )
            ]
        )
    return version.id


def _version_read(session: Session, version: SurveyVersion) -> VersionRead:
    view = version_view(session, version.id)
    return VersionRead(
        id=version.id,
        number=version.number,
        status=version.status,
        created_at=version.created_at,
        published_at=version.published_at,
        questions=[
            QuestionRead(
                position=q.position,
                code=q.code,
                kind=q.kind,
                dimension=q.dimension,
                label_zh=q.label_zh,
                label_en=q.label_en,
                required=q.required,
                reason_for=q.reason_for,
                options=[
                    OptionRead(value=o.value, label_zh=o.label_zh, label_en=o.label_en)
                    for o in q.options
                ],
            )  # fmt: skip
            for q in view.questions
        ],
    )


def template_read(session: Session, template: SurveyTemplate) -> TemplateRead:
    """A template with its current version and draft."""
    current = current_version(session, template.id)
    draft = draft_version(session, template.id)
    count = session.scalar(select(func.count()).where(SurveyVersion.template_id == template.id))
    return TemplateRead(
        id=template.id,
        code=template.code,
        name_zh=template.name_zh,
        name_en=template.name_en,
        kind=template.kind,
        active=template.active,
        current=_version_read(session, current) if current else None,
        draft=_version_read(session, draft) if draft else None,
        versions=int(count or 0),
    )


# --------------------------------------------------------------------------- writing


def _code_for(question: QuestionIn, taken: set[str], position: int) -> str:
    """The code a question is known by: given, or derived from its kind."""
    if question.code:
        return question.code
    if question.kind is QuestionKind.dimension and question.dimension is not None:
        wanted = f"dim_{question.dimension.value}"
    elif question.kind in (QuestionKind.csat, QuestionKind.nps):
        wanted = question.kind.value
    else:
        wanted = f"q{position}"
    code, n = wanted, 2
    while code in taken:
        code, n = f"{wanted}_{n}", n + 1
    return code


def _check_questions(questions: Sequence[QuestionIn]) -> list[str]:
    """The codes of ``questions`` in order; refuses duplicates, a reason for a question
    that is not scored, and more than one CSAT or NPS question."""
    codes: list[str] = []
    taken = {q.code for q in questions if q.code}
    if len(taken) != len([q for q in questions if q.code]):
        raise ValidationFailed(
            [FieldError(("questions",), "survey_code_twice", "Two questions have one code")]
        )
    for position, question in enumerate(questions, start=1):
        code = _code_for(question, taken | set(codes), position)
        codes.append(code)
    kinds = {code: q.kind for code, q in zip(codes, questions, strict=True)}
    for i, question in enumerate(questions):
        target = question.reason_for
        if target is not None and kinds.get(target) not in (
            QuestionKind.csat,
            QuestionKind.nps,
            QuestionKind.dimension,
            QuestionKind.rating,
        ):
            raise ValidationFailed(
                [
                    FieldError(
                        ("questions", i, "reason_for"),
                        "survey_reason_target",
                        "A reason follows a scored question of this survey",
                    )
                ]
            )
    for kind in (QuestionKind.csat, QuestionKind.nps):
        if sum(1 for q in questions if q.kind is kind) > 1:
            raise ValidationFailed(
                [
                    FieldError(
                        ("questions",),
                        "survey_kind_twice",
                        "A survey asks at most one overall question of each kind",
                        {"kind": kind.value},
                    )
                ]
            )
    dims = [q.dimension for q in questions if q.dimension is not None]
    if len(dims) != len(set(dims)):
        raise ValidationFailed(
            [FieldError(("questions",), "survey_dimension_twice", "A dimension is asked twice")]
        )
    return codes


def _write_questions(session: Session, version_id: int, questions: Sequence[QuestionIn]) -> None:
    """Replace the questions of a draft version."""
    codes = _check_questions(questions)
    session.execute(delete(SurveyQuestion).where(SurveyQuestion.version_id == version_id))
    for position, (code, q) in enumerate(zip(codes, questions, strict=True), start=1):
        row = SurveyQuestion(
            version_id=version_id,
            position=position,
            code=code,
            kind=q.kind.value,
            dimension=q.dimension.value if q.dimension else None,
            label_zh=q.label_zh,
            label_en=q.label_en,
            required=q.required,
            reason_for=q.reason_for,
        )
        session.add(row)
        session.flush()
        for n, option in enumerate(q.options, start=1):
            session.add(
                SurveyOption(
                    question_id=row.id,
                    position=n,
                    value=option.value,
                    label_zh=option.label_zh,
                    label_en=option.label_en,
                )
            )
    session.flush()


def _questions_in(session: Session, version_id: int) -> list[QuestionIn]:
    """A version's questions as input (to copy them into a new draft)."""
    view = version_view(session, version_id)
    return [
        QuestionIn(
            code=q.code,
            kind=QuestionKind(q.kind),
            dimension=Dimension(q.dimension) if q.dimension else None,
            label_zh=q.label_zh,
            label_en=q.label_en,
            required=q.required,
            reason_for=q.reason_for,
            options=[
                OptionIn(value=o.value, label_zh=o.label_zh, label_en=o.label_en) for o in q.options
            ],
        )  # fmt: skip
        for q in view.questions
    ]


def create_template(
    session: Session, *, template_in: TemplateCreate, actor: User
) -> SurveyTemplate:
    """A new template with its questions as the draft of version 1 (publish to use it)."""
    with write_transaction(session):
        if session.scalar(select(SurveyTemplate.id).where(SurveyTemplate.code == template_in.code)):
            raise Conflict("survey_template_exists", field="code", code=template_in.code)
        now = clock.now()
        template = SurveyTemplate(
            code=template_in.code,
            name_zh=template_in.name_zh,
            name_en=template_in.name_en,
            kind=template_in.kind.value,
            active=True,
            created_at=now,
            created_by=actor.id,
        )
        session.add(template)
        session.flush()
        version = SurveyVersion(
            template_id=template.id, number=1, status=VersionStatus.draft.value,
            created_at=now, created_by=actor.id,
        )  # fmt: skip
        session.add(version)
        session.flush()
        _write_questions(session, version.id, template_in.questions)
        record(
            session,
            actor=actor_of(actor),
            action="survey.template_created",
            target_type="survey_template",
            target_id=template.id,
            after={"code": template.code, "kind": template.kind},
        )
    return template


def _open_draft(session: Session, template: SurveyTemplate, actor: User) -> SurveyVersion:
    """The template's draft, started from a copy of its current version if there is none
    (inside the caller's transaction)."""
    draft = draft_version(session, template.id)
    if draft is not None:
        return draft
    top = session.scalar(
        select(func.max(SurveyVersion.number)).where(SurveyVersion.template_id == template.id)
    )
    draft = SurveyVersion(
        template_id=template.id,
        number=int(top or 0) + 1,
        status=VersionStatus.draft.value,
        created_at=clock.now(),
        created_by=actor.id,
    )
    session.add(draft)
    session.flush()
    current = current_version(session, template.id)
    if current is not None:
        _write_questions(session, draft.id, _questions_in(session, current.id))
    return draft


def _edit(
    session: Session, *, template_id: int, actor: User, what: str, change: Any
) -> SurveyVersion:
    """Apply ``change(questions) -> questions`` to the template's draft; audited."""
    with write_transaction(session):
        template = get_template(session, template_id)
        draft = _open_draft(session, template, actor)
        before = _questions_in(session, draft.id)
        after = change(list(before))
        _write_questions(session, draft.id, after)
        record(
            session,
            actor=actor_of(actor),
            action="survey.draft_edited",
            target_type="survey_template",
            target_id=template.id,
            before={"questions": [q.code for q in before]},
            after={"version": draft.number, "change": what,
                   "questions": [q.code for q in _questions_in(session, draft.id)]},
        )  # fmt: skip
    return draft


def replace_draft(
    session: Session, *, template_id: int, draft_in: DraftIn, actor: User
) -> SurveyVersion:
    """Replace every question of the template's draft (the API's whole-list edit)."""
    return _edit(
        session, template_id=template_id, actor=actor, what="replace",
        change=lambda _old: list(draft_in.questions),
    )  # fmt: skip


def add_question(
    session: Session, *, template_id: int, question_in: QuestionIn, actor: User
) -> SurveyVersion:
    """Append a question to the template's draft."""
    return _edit(
        session, template_id=template_id, actor=actor, what="add",
        change=lambda old: [*old, question_in],
    )  # fmt: skip


def _index_of(questions: list[QuestionIn], code: str) -> int:
    for i, q in enumerate(questions):
        if q.code == code:
            return i
    raise NotFound("survey question not found", code=code)


def remove_question(session: Session, *, template_id: int, code: str, actor: User) -> SurveyVersion:
    """Remove a question from the template's draft (a reason asking about it goes too)."""

    def change(old: list[QuestionIn]) -> list[QuestionIn]:
        _index_of(old, code)
        return [q for q in old if q.code != code and q.reason_for != code]

    return _edit(session, template_id=template_id, actor=actor, what="remove", change=change)


def move_question(
    session: Session, *, template_id: int, code: str, offset: int, actor: User
) -> SurveyVersion:
    """Move a question of the draft up (``offset`` -1) or down (+1)."""

    def change(old: list[QuestionIn]) -> list[QuestionIn]:
        i = _index_of(old, code)
        j = min(max(i + offset, 0), len(old) - 1)
        old.insert(j, old.pop(i))
        return old

    return _edit(session, template_id=template_id, actor=actor, what="move", change=change)


def publish(session: Session, *, template_id: int, actor: User) -> SurveyVersion:
    """Make the draft the template's current version; the previous one is retired (its
    invitations stay answerable). A draft without questions is refused."""
    with write_transaction(session):
        template = get_template(session, template_id)
        draft = draft_version(session, template.id)
        if draft is None:
            raise Conflict("survey_no_draft", field="version")
        questions = _questions_in(session, draft.id)
        if not questions:
            raise ValidationFailed(
                [FieldError(("questions",), "survey_empty", "A survey needs a question")]
            )
        previous = current_version(session, template.id)
        if previous is not None:
            previous.status = VersionStatus.retired.value
            session.flush()
        draft.status = VersionStatus.published.value
        draft.published_at = clock.now()
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="survey.version_published",
            target_type="survey_template",
            target_id=template.id,
            before={"version": previous.number if previous else None},
            after={"version": draft.number, "questions": [q.code for q in questions]},
        )
    return draft


def set_active(session: Session, *, template_id: int, active: bool, actor: User) -> SurveyTemplate:
    """Switch a template on or off (an inactive one sends no new invitations)."""
    with write_transaction(session):
        template = get_template(session, template_id)
        before = template.active
        template.active = active
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="survey.template_active",
            target_type="survey_template",
            target_id=template.id,
            before={"active": before},
            after={"active": active},
        )
    return template
