"""JSON shapes of surveys: templates and their questions, answers, responses, results."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from guanxi.core.ids import BodyId
from guanxi.surveys.enums import Dimension, QuestionKind, TemplateKind


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text: say so instead of failing on insert.
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,29}$")]
OptionValue = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,29}$")]
TemplateCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_nul),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_no_nul),
]
OptionLabel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]
# One answer: a score, a text, or the chosen option values.
AnswerValue = int | str | list[str] | None
CHOICE_KINDS = (QuestionKind.single, QuestionKind.multi)


class OptionIn(BaseModel):
    """A choice of a single- or multiple-choice question."""

    model_config = ConfigDict(extra="forbid")

    value: OptionValue
    label_zh: OptionLabel
    label_en: OptionLabel


class QuestionIn(BaseModel):
    """A question as an administrator writes it. ``code`` is given by the service when
    left out (``csat``, ``nps``, ``dim_<dimension>``, else ``q<n>``)."""

    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    kind: QuestionKind
    dimension: Dimension | None = None
    label_zh: Label
    label_en: Label
    required: bool = False
    # A text question asking why: the code of the scored question it follows.
    reason_for: Code | None = None
    options: list[OptionIn] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.kind is QuestionKind.dimension) != (self.dimension is not None):
            raise ValueError("dimension: a dimension question names exactly one dimension")
        if self.kind in CHOICE_KINDS:
            if len(self.options) < 2:
                raise ValueError("options: a choice question has at least two options")
            if len({o.value for o in self.options}) != len(self.options):
                raise ValueError("options: option values must differ")
        elif self.options:
            raise ValueError("options: only choice questions have options")
        if self.reason_for is not None and self.kind is not QuestionKind.text:
            raise ValueError("reason_for: only a text question asks for a reason")
        return self


class TemplateCreate(BaseModel):
    """A new template; its questions become the draft of version 1."""

    model_config = ConfigDict(extra="forbid")

    code: TemplateCode
    name_zh: Name
    name_en: Name
    kind: TemplateKind = TemplateKind.custom
    questions: list[QuestionIn] = Field(default_factory=list, max_length=50)


class DraftIn(BaseModel):
    """The whole question list of a template's draft, in order (replaces the draft's)."""

    model_config = ConfigDict(extra="forbid")

    questions: list[QuestionIn] = Field(min_length=1, max_length=50)


class OptionRead(BaseModel):
    """A choice as stored."""

    model_config = ConfigDict(from_attributes=True)

    value: str
    label_zh: str
    label_en: str


class QuestionRead(BaseModel):
    """A question as stored."""

    model_config = ConfigDict(from_attributes=True)

    position: int
    code: str
    kind: str
    dimension: str | None
    label_zh: str
    label_en: str
    required: bool
    reason_for: str | None
    options: list[OptionRead] = Field(default_factory=list)


class VersionRead(BaseModel):
    """A version with its questions."""

    id: int
    number: int
    status: str
    created_at: datetime
    published_at: datetime | None
    questions: list[QuestionRead]


class TemplateRead(BaseModel):
    """A template with its published version and its draft (if any)."""

    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    active: bool
    current: VersionRead | None
    draft: VersionRead | None
    versions: int


class ResponseIn(BaseModel):
    """Answers an agent types in from paper or the phone. ``answers`` maps question codes to
    a score, a text, or a list of option values. With ``ticket_id`` the answer is the
    ticket's survey (its open invitation is used up)."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateCode
    channel: Literal["paper", "phone"]
    customer_id: BodyId | None = None
    ticket_id: BodyId | None = None
    answers: dict[Code, AnswerValue] = Field(default_factory=dict, max_length=60)
    language: Literal["zh_CN", "en"] = "zh_CN"


class AnswerRead(BaseModel):
    """One answer with the question it answers."""

    code: str
    kind: str
    label_zh: str
    label_en: str
    value_int: int | None
    value_text: str | None
    choices: list[str]


class ResponseRead(BaseModel):
    """A stored response with its scores and answers."""

    id: int
    template: str
    version: int
    customer_id: int | None
    ticket_id: int | None
    shipment_id: int | None
    trigger: str
    channel: str
    language: str
    entered_by: int | None
    submitted_at: datetime
    csat: int | None
    nps: int | None
    dimensions: dict[str, int | None]
    reason: str | None
    region: str | None
    service_type: str | None
    agent_id: int | None
    follow_up: str
    follow_up_ticket_id: int | None
    answers: list[AnswerRead]


class InviteIn(BaseModel):
    """Invite one customer by hand (SMS if they have a mobile, else e-mail)."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateCode
    customer_id: BodyId


class InvitationRead(BaseModel):
    """A new invitation; ``url`` (the secret link) is shown this once."""

    id: int
    customer_id: int | None
    channel: str
    expires_at: datetime
    url: str


class OutletCreate(BaseModel):
    """An outlet whose QR code opens the template's survey."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    region: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, max_length=30), AfterValidator(_no_nul)
        ]
        | None
    ) = None
    template: TemplateCode


class OutletRead(BaseModel):
    """An outlet with its QR link."""

    id: int
    code: str
    name: str
    region: str | None
    template: str
    active: bool
    url: str


# --------------------------------------------------------------------------- results


class ScoreSummary(BaseModel):
    """CSAT, NPS and dimension figures of a set of responses."""

    responses: int
    csat_answers: int
    csat_mean: float | None
    satisfied_share: float | None
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    dimensions: dict[str, float | None]
    dimension_answers: dict[str, int]


class ResultsRead(BaseModel):
    """The results page as JSON: the figures, the response rate, the trend and one
    breakdown."""

    start: date
    end: date
    summary: ScoreSummary
    invitations: int
    answered_invitations: int
    response_rate: float | None
    trend_period: str
    trend: list[tuple[str, ScoreSummary]]
    breakdown_by: str
    breakdown: list[tuple[str, ScoreSummary]]


class DriverRead(BaseModel):
    """One dimension's pull on overall satisfaction."""

    dimension: str
    beta: float
    p_value: float
    correlation: float
    mean: float


class DriversRead(BaseModel):
    """Which dimension moves overall satisfaction most (standardised OLS of CSAT on the
    dimension scores), strongest first."""

    responses: int
    r_squared: float | None
    drivers: list[DriverRead]


class SideRead(BaseModel):
    """One side of a before / after comparison."""

    start: date
    end: date
    responses: int
    csat_mean: float | None
    csat_ci: tuple[float, float] | None
    nps: float | None
    nps_ci: tuple[float, float] | None


class CompareRead(BaseModel):
    """Before and after a date: means and NPS with 95 % intervals, Welch's t-test."""

    at: date
    before: SideRead
    after: SideRead
    csat_p_value: float | None
    nps_p_value: float | None
