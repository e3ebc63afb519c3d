"""The rules of staff training (培训管理): managers plan courses in monthly, quarterly and
annual plans, record who attended and with what assessment score, and read a person's
training history; the team performance scorecards read the figures per person.

Who a course is for (its roster): the members of its team, or the members of every team
for a course without a team, plus anyone already recorded on it (a guest from another
team). Memberships are the teams' current ones. Every write is audited in its transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of, has_permission, list_users
from guanxi.tickets.models import Team, TeamMember
from guanxi.training.models import TrainingCourse, TrainingRecord
from guanxi.training.schemas import (
    AttendanceSheet,
    TrainingCourseCreate,
    TrainingCourseUpdate,
)

# The fields of a course kept in its audit entries.
_COURSE_FIELDS = (
    "title",
    "topic",
    "mode",
    "planned_on",
    "hours",
    "team_id",
    "plan_period",
    "notes",
)


@dataclass
class TrainingFigures:
    """A person's (or a team's) training in a period: courses planned for them, courses
    attended, and the assessment scores recorded."""

    planned: int = 0
    attended: int = 0
    scored: int = 0
    score_sum: float = 0.0

    @property
    def score_mean(self) -> float | None:
        """The mean assessment score, None without any score."""
        return self.score_sum / self.scored if self.scored else None

    def add(self, other: TrainingFigures) -> None:
        """Count ``other`` in as well (a team's figures are its members' summed)."""
        self.planned += other.planned
        self.attended += other.attended
        self.scored += other.scored
        self.score_sum += other.score_sum


@dataclass(frozen=True)
class RosterLine:
    """Someone a course is for and what was recorded for them (None: not yet)."""

    user: User
    record: TrainingRecord | None


@dataclass(frozen=True)
class HistoryItem:
    """A course on a person's roster and their record of it (None: not yet recorded)."""

    course: TrainingCourse
    record: TrainingRecord | None


def _may_manage(actor: User) -> None:
    if not has_permission(actor, Permission.training_manage):
        raise PermissionDenied("missing permission training.manage")


def _bad(loc: tuple[str | int, ...], code: str, message: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([FieldError(loc, code, message, dict(params))])


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise _bad(("team_id",), "team_unknown", "No such team")


def _snapshot(course: TrainingCourse) -> dict[str, Any]:
    """The audited fields of a course, JSON-ready."""
    out: dict[str, Any] = {}
    for name in _COURSE_FIELDS:
        value = getattr(course, name)
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def get_course(session: Session, course_id: int) -> TrainingCourse:
    """A course, or NotFound."""
    course = session.get(TrainingCourse, course_id)
    if course is None:
        raise NotFound("training course not found", course_id=course_id)
    return course


def create_course(
    session: Session, *, course_in: TrainingCourseCreate, actor: User
) -> TrainingCourse:
    """Plan a course; audited as ``training.course_created``."""
    _may_manage(actor)
    with write_transaction(session):
        _check_team(session, course_in.team_id)
        course = TrainingCourse(
            **course_in.model_dump(), created_by=actor.id, created_at=clock.now(), version=1
        )
        session.add(course)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="training.course_created",
            target_type="training_course",
            target_id=course.id,
            after=_snapshot(course),
        )
    return course


def update_course(
    session: Session, *, course_id: int, course_in: TrainingCourseUpdate, actor: User
) -> TrainingCourse:
    """Change a course the editor saw at ``course_in.version``; audited with before and
    after as ``training.course_changed``."""
    _may_manage(actor)
    with write_transaction(session):
        course = get_course(session, course_id)
        if course.version != course_in.version:
            raise Conflict("version_conflict", field="version")
        _check_team(session, course_in.team_id)
        before = _snapshot(course)
        for name, value in course_in.model_dump(exclude={"version"}).items():
            setattr(course, name, value)
        after = _snapshot(course)
        if after != before:
            course.version += 1
            session.flush()
            changed = [k for k in _COURSE_FIELDS if before[k] != after[k]]
            record(
                session,
                actor=actor_of(actor),
                action="training.course_changed",
                target_type="training_course",
                target_id=course.id,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return course


def delete_course(session: Session, *, course_id: int, actor: User) -> TrainingCourse:
    """Remove a course planned by mistake, with its records; audited (the entry keeps
    what was removed). Returns the removed course (detached)."""
    _may_manage(actor)
    with write_transaction(session):
        course = get_course(session, course_id)
        count = session.scalar(
            select(func.count())
            .select_from(TrainingRecord)
            .where(TrainingRecord.course_id == course_id)
        )
        before = _snapshot(course) | {"records": int(count or 0)}
        session.execute(delete(TrainingRecord).where(TrainingRecord.course_id == course_id))
        session.delete(course)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="training.course_deleted",
            target_type="training_course",
            target_id=course_id,
            before=before,
        )
    return course


def list_courses(
    session: Session,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    team_id: int | None = None,
    plan_period: str | None = None,
    limit: int = 500,
) -> list[TrainingCourse]:
    """Courses planned on ``date_from`` ≤ day < ``date_to``, by day."""
    stmt = select(TrainingCourse)
    if date_from is not None:
        stmt = stmt.where(TrainingCourse.planned_on >= date_from)
    if date_to is not None:
        stmt = stmt.where(TrainingCourse.planned_on < date_to)
    if team_id is not None:
        stmt = stmt.where(TrainingCourse.team_id == team_id)
    if plan_period is not None:
        stmt = stmt.where(TrainingCourse.plan_period == plan_period)
    stmt = stmt.order_by(TrainingCourse.planned_on, TrainingCourse.id).limit(limit)
    return list(session.scalars(stmt))


def attendance_counts(session: Session, course_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per course: (people recorded, people who attended)."""
    out: dict[int, tuple[int, int]] = {}
    if not course_ids:
        return out
    for course_id, attended in session.execute(
        select(TrainingRecord.course_id, TrainingRecord.attended).where(
            TrainingRecord.course_id.in_(course_ids)
        )
    ):
        recorded, came = out.get(course_id, (0, 0))
        out[course_id] = (recorded + 1, came + (1 if attended else 0))
    return out


def memberships(session: Session) -> dict[int, set[int]]:
    """The current members of every team (team id -> user ids)."""
    members: dict[int, set[int]] = defaultdict(set)
    for team_id, user_id in session.execute(select(TeamMember.team_id, TeamMember.user_id)):
        members[team_id].add(user_id)
    return members


def _addressed(team_id: int | None, members: dict[int, set[int]]) -> set[int]:
    """Who a course of ``team_id`` is for (None: every team's members)."""
    if team_id is None:
        return set().union(*members.values()) if members else set()
    return set(members.get(team_id, set()))


def roster(session: Session, course: TrainingCourse) -> list[RosterLine]:
    """The people a course is for, by name, with their records."""
    records = {
        r.user_id: r
        for r in session.scalars(
            select(TrainingRecord).where(TrainingRecord.course_id == course.id)
        )
    }
    wanted = _addressed(course.team_id, memberships(session)) | set(records)
    if not wanted:
        return []
    users = session.scalars(select(User).where(User.id.in_(wanted))).all()
    return [
        RosterLine(user=u, record=records.get(u.id))
        for u in sorted(users, key=lambda u: (u.display_name, u.id))
    ]


def staff(session: Session) -> list[User]:
    """Active people who work tickets: who can be recorded on a course."""
    return [u for u in list_users(session) if has_permission(u, Permission.ticket_write)]


def record_attendance(
    session: Session, *, course_id: int, sheet: AttendanceSheet, actor: User
) -> list[TrainingRecord]:
    """Save an attendance sheet: each line sets one person's attendance, score and note.

    Each person appears once and must be active staff who work tickets (the sheet itself
    has checked that only someone who attended has a score). Lines that change nothing
    write nothing; every changed line is audited as ``training.recorded`` with before and
    after.
    """
    _may_manage(actor)
    errors: list[FieldError] = []
    seen: set[int] = set()
    for i, line in enumerate(sheet.records):
        if line.user_id in seen:
            errors.append(
                FieldError(
                    ("records", i, "user_id"),
                    "training_user_twice",
                    "This person is on the sheet twice",
                )
            )
        seen.add(line.user_id)
    with write_transaction(session):
        get_course(session, course_id)
        users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(seen)))}
        for i, line in enumerate(sheet.records):
            user = users.get(line.user_id)
            if user is None or not has_permission(user, Permission.ticket_write):
                errors.append(
                    FieldError(
                        ("records", i, "user_id"),
                        "training_user_unknown",
                        "No such member of the service staff",
                    )
                )
        if errors:
            raise ValidationFailed(errors)
        existing = {
            r.user_id: r
            for r in session.scalars(
                select(TrainingRecord).where(
                    TrainingRecord.course_id == course_id, TrainingRecord.user_id.in_(seen)
                )
            )
        }
        now = clock.now()
        saved: list[TrainingRecord] = []
        for line in sheet.records:
            after = {"attended": line.attended, "score": line.score, "note": line.note}
            row = existing.get(line.user_id)
            before = (
                {"attended": row.attended, "score": row.score, "note": row.note}
                if row is not None
                else None
            )
            if row is not None and before == after:
                saved.append(row)
                continue
            if row is None:
                row = TrainingRecord(course_id=course_id, user_id=line.user_id)
                session.add(row)
            row.attended, row.score, row.note = line.attended, line.score, line.note
            row.recorded_by, row.recorded_at = actor.id, now
            session.flush()
            record(
                session,
                actor=actor_of(actor),
                action="training.recorded",
                target_type="training_record",
                target_id=f"{course_id}:{line.user_id}",
                before=before,
                after=after,
            )
            saved.append(row)
    return saved


def get_person(session: Session, user_id: int) -> User:
    """A user whose training is looked at, or NotFound."""
    person = session.get(User, user_id)
    if person is None:
        raise NotFound("user not found", user_id=user_id)
    return person


def history(session: Session, *, user_id: int, limit: int = 500) -> list[HistoryItem]:
    """The courses planned for a person (their teams', everyone's while they are in a team,
    and any they were recorded on), newest first, with their records."""
    teams = list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))
    addressed = [TrainingRecord.user_id.is_not(None)]
    if teams:
        addressed += [TrainingCourse.team_id.in_(teams), TrainingCourse.team_id.is_(None)]
    stmt = (
        select(TrainingCourse, TrainingRecord)
        .outerjoin(
            TrainingRecord,
            and_(TrainingRecord.course_id == TrainingCourse.id, TrainingRecord.user_id == user_id),
        )
        .where(or_(*addressed))
        .order_by(TrainingCourse.planned_on.desc(), TrainingCourse.id.desc())
        .limit(limit)
    )
    return [HistoryItem(course=c, record=r) for c, r in session.execute(stmt)]


def totals(items: list[HistoryItem]) -> TrainingFigures:
    """The figures of a list of history items."""
    out = TrainingFigures()
    for item in items:
        out.planned += 1
        if item.record is not None and item.record.attended:
            out.attended += 1
        if item.record is not None and item.record.score is not None:
            out.scored += 1
            out.score_sum += item.record.score
    return out


def figures(session: Session, *, start: date, end: date) -> dict[int, TrainingFigures]:
    """Per person, over the courses planned on ``start`` ≤ day < ``end``: courses on their
    roster (planned), attended, and their assessment scores."""
    members = memberships(session)
    courses: dict[int, int | None] = {
        course_id: team_id
        for course_id, team_id in session.execute(
            select(TrainingCourse.id, TrainingCourse.team_id).where(
                TrainingCourse.planned_on >= start, TrainingCourse.planned_on < end
            )
        )
    }
    recorded: dict[int, dict[int, TrainingRecord]] = defaultdict(dict)
    for row in session.scalars(
        select(TrainingRecord)
        .join(TrainingCourse, TrainingCourse.id == TrainingRecord.course_id)
        .where(TrainingCourse.planned_on >= start, TrainingCourse.planned_on < end)
    ):
        recorded[row.course_id][row.user_id] = row
    out: dict[int, TrainingFigures] = defaultdict(TrainingFigures)
    for course_id, team_id in courses.items():
        rows = recorded.get(course_id, {})
        for user_id in _addressed(team_id, members) | set(rows):
            fig = out[user_id]
            fig.planned += 1
            entry = rows.get(user_id)
            if entry is not None and entry.attended:
                fig.attended += 1
            if entry is not None and entry.score is not None:
                fig.scored += 1
                fig.score_sum += entry.score
    return dict(out)


def team_figures(
    session: Session, people: dict[int, TrainingFigures]
) -> dict[int, TrainingFigures]:
    """Per team: its current members' figures summed."""
    out: dict[int, TrainingFigures] = {}
    for team_id, users in memberships(session).items():
        total = TrainingFigures()
        for user_id in users:
            if user_id in people:
                total.add(people[user_id])
        out[team_id] = total
    return out
