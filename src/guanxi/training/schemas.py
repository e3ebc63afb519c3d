"""JSON shapes of staff training: courses of the plans, attendance sheets, a person's
training history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from guanxi.core.ids import BodyId
from guanxi.training.enums import PlanPeriod, TrainingMode, TrainingTopic

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
# A course is planned between these days (a typo like 0026 or 2226 is refused).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
PlannedOn = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]


def _between(low: float, high: float) -> AfterValidator:
    """A range check whose message names the bounds as typed ("at most 100", not
    "100.0"), with pydantic's codes so the message is translated like any other."""

    def check(value: float) -> float:
        if value < low:
            raise PydanticCustomError(
                "greater_than_equal", "Input should be at least {ge}", {"ge": f"{low:g}"}
            )
        if value > high:
            raise PydanticCustomError(
                "less_than_equal", "Input should be at most {le}", {"le": f"{high:g}"}
            )
        return value

    return AfterValidator(check)


Hours = Annotated[
    float,
    Field(allow_inf_nan=False, json_schema_extra={"minimum": 0.5, "maximum": 200}),
    _between(0.5, 200),
]
Score = Annotated[
    float,
    Field(allow_inf_nan=False, json_schema_extra={"minimum": 0, "maximum": 100}),
    _between(0, 100),
]


class TrainingCourseCreate(BaseModel):
    """A course for a monthly, quarterly or annual plan; ``team_id`` None: for every team."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    topic: TrainingTopic
    mode: TrainingMode
    planned_on: PlannedOn
    hours: Hours = 1.0
    team_id: BodyId | None = None
    plan_period: PlanPeriod = PlanPeriod.month
    notes: Notes | None = None


class TrainingCourseUpdate(TrainingCourseCreate):
    """A changed course; ``version`` is the one the editor saw (a stale one is refused)."""

    version: Annotated[int, Field(ge=1)]


class TrainingCourseRead(BaseModel):
    """A course of a training plan."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    topic: TrainingTopic
    mode: TrainingMode
    planned_on: date
    hours: float
    team_id: int | None
    plan_period: PlanPeriod
    notes: str | None
    created_by: int | None
    created_at: datetime
    version: int


class AttendanceIn(BaseModel):
    """One person's line of an attendance sheet: attended or not, the assessment score
    (0–100, only for someone who attended) and a note."""

    model_config = ConfigDict(extra="forbid")

    user_id: BodyId
    attended: bool
    score: Score | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None

    @field_validator("score")
    @classmethod
    def _score_needs_attendance(cls, score: float | None, info: ValidationInfo) -> float | None:
        # Checked with the range, so one answer lists every problem of the sheet.
        if score is not None and info.data.get("attended") is False:
            raise PydanticCustomError(
                "training_score_absent", "A score is only given to someone who attended"
            )
        return score


class AttendanceSheet(BaseModel):
    """Attendance and scores of a course, many people at once (lines not listed stay as
    they are)."""

    model_config = ConfigDict(extra="forbid")

    records: list[AttendanceIn] = Field(min_length=1, max_length=500)


class TrainingRecordRead(BaseModel):
    """A person's attendance of a course and their assessment score."""

    model_config = ConfigDict(from_attributes=True)

    course_id: int
    user_id: int
    attended: bool
    score: float | None
    note: str | None
    recorded_by: int | None
    recorded_at: datetime


class RosterLineRead(BaseModel):
    """Someone a course is for (a member of its team, of any team for a course for
    everyone, or anyone already recorded), with what was recorded for them."""

    user_id: int
    display_name: str
    recorded: bool
    attended: bool | None
    score: float | None
    note: str | None


class TrainingCourseDetail(BaseModel):
    """A course with its roster."""

    course: TrainingCourseRead
    roster: list[RosterLineRead]


class TrainingFiguresRead(BaseModel):
    """Courses a person was planned for and attended, and their mean assessment score."""

    planned: int
    attended: int
    scored: int
    score_mean: float | None


class HistoryItemRead(BaseModel):
    """One course in a person's training history: the course and what was recorded (None
    while nothing is)."""

    course: TrainingCourseRead
    attended: bool | None
    score: float | None
    note: str | None
    recorded_at: datetime | None


class PersonHistoryRead(BaseModel):
    """A person's training history, newest course first, with the totals."""

    user_id: int
    display_name: str
    totals: TrainingFiguresRead
    items: list[HistoryItemRead]
