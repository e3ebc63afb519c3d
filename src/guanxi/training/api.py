"""JSON routes of staff training (``/api/v1/training``): the courses of the plans, their
rosters and attendance sheets, and a person's training history.

Reading needs ``team.performance`` (managers, analysts, administrators); planning courses
and recording attendance need ``training.manage`` (managers, administrators).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from guanxi.core.ids import PathId, QueryId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.training import service
from guanxi.training.enums import PlanPeriod
from guanxi.training.schemas import (
    AttendanceSheet,
    HistoryItemRead,
    PersonHistoryRead,
    RosterLineRead,
    TrainingCourseCreate,
    TrainingCourseDetail,
    TrainingCourseRead,
    TrainingCourseUpdate,
    TrainingFiguresRead,
    TrainingRecordRead,
)

router = APIRouter(prefix="/api/v1/training", tags=["training"])

Reader = Annotated[User, require(Permission.team_performance)]
Manager = Annotated[User, require(Permission.training_manage)]


def detail(
    course_read: TrainingCourseRead, lines: list[service.RosterLine]
) -> TrainingCourseDetail:
    """A course with its roster as the API shows it."""
    return TrainingCourseDetail(
        course=course_read,
        roster=[
            RosterLineRead(
                user_id=line.user.id,
                display_name=line.user.display_name,
                recorded=line.record is not None,
                attended=line.record.attended if line.record else None,
                score=line.record.score if line.record else None,
                note=line.record.note if line.record else None,
            )
            for line in lines
        ],
    )


def figures_read(fig: service.TrainingFigures) -> TrainingFiguresRead:
    """Training figures as the API shows them."""
    return TrainingFiguresRead(
        planned=fig.planned, attended=fig.attended, scored=fig.scored, score_mean=fig.score_mean
    )


@router.get("/courses", response_model=list[TrainingCourseRead])
def list_courses(
    session: SessionDep,
    user: Reader,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    team_id: QueryId = None,
    plan_period: PlanPeriod | None = None,
) -> list[TrainingCourseRead]:
    """Courses planned from ``from`` (inclusive) to ``to`` (exclusive), by day."""
    return [
        TrainingCourseRead.model_validate(c)
        for c in service.list_courses(
            session,
            date_from=date_from,
            date_to=date_to,
            team_id=team_id,
            plan_period=plan_period.value if plan_period else None,
        )
    ]


@router.post("/courses", response_model=TrainingCourseRead, status_code=201)
def create_course(
    body: TrainingCourseCreate, session: SessionDep, user: Manager
) -> TrainingCourseRead:
    """Plan a course in a monthly, quarterly or annual plan."""
    return TrainingCourseRead.model_validate(
        service.create_course(session, course_in=body, actor=user)
    )


@router.get("/courses/{course_id}", response_model=TrainingCourseDetail)
def get_course(course_id: PathId, session: SessionDep, user: Reader) -> TrainingCourseDetail:
    """A course with the people it is for and what was recorded for them."""
    course = service.get_course(session, course_id)
    return detail(TrainingCourseRead.model_validate(course), service.roster(session, course))


@router.put("/courses/{course_id}", response_model=TrainingCourseRead)
def update_course(
    course_id: PathId, body: TrainingCourseUpdate, session: SessionDep, user: Manager
) -> TrainingCourseRead:
    """Change a course (send the ``version`` you read; a stale one answers 409)."""
    return TrainingCourseRead.model_validate(
        service.update_course(session, course_id=course_id, course_in=body, actor=user)
    )


@router.delete("/courses/{course_id}", status_code=204)
def delete_course(course_id: PathId, session: SessionDep, user: Manager) -> Response:
    """Remove a course planned by mistake, with its attendance records."""
    service.delete_course(session, course_id=course_id, actor=user)
    return Response(status_code=204)


@router.put("/courses/{course_id}/records", response_model=list[TrainingRecordRead])
def record_attendance(
    course_id: PathId, body: AttendanceSheet, session: SessionDep, user: Manager
) -> list[TrainingRecordRead]:
    """Save attendance and assessment scores for many people at once."""
    return [
        TrainingRecordRead.model_validate(r)
        for r in service.record_attendance(session, course_id=course_id, sheet=body, actor=user)
    ]


@router.get("/people/{user_id}", response_model=PersonHistoryRead)
def person_history(user_id: PathId, session: SessionDep, user: Reader) -> PersonHistoryRead:
    """A person's training history, newest course first, with the totals."""
    person = service.get_person(session, user_id)
    items = service.history(session, user_id=user_id)
    return PersonHistoryRead(
        user_id=person.id,
        display_name=person.display_name,
        totals=figures_read(service.totals(items)),
        items=[
            HistoryItemRead(
                course=TrainingCourseRead.model_validate(i.course),
                attended=i.record.attended if i.record else None,
                score=i.record.score if i.record else None,
                note=i.record.note if i.record else None,
                recorded_at=i.record.recorded_at if i.record else None,
            )
            for i in items
        ],
    )
