"""HTML pages of staff training (``/training``): the year's monthly, quarterly and annual
plans, a course with its attendance sheet (the team's members, attended and score on one
form), and a person's training history.

A refused change comes back to the same page with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib import resources
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.core import clock, i18n
from guanxi.core.errors import DomainError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import (
    field_errors_from_pydantic,
    request_language,
    template_environment,
    translate_code,
    translate_field_error,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.tickets.teams import list_teams
from guanxi.training import service
from guanxi.training.enums import LABELS, PlanPeriod, TrainingMode, TrainingTopic
from guanxi.training.models import TrainingCourse
from guanxi.training.schemas import AttendanceSheet, TrainingCourseCreate, TrainingCourseUpdate
from guanxi.web.render import context

router = APIRouter()

Reader = Annotated[User, require(Permission.team_performance)]
Manager = Annotated[User, require(Permission.training_manage)]

# Field names as the forms label them (messages name the field).
FIELD_LABELS = {
    "title": N_("Course title"),
    "topic": N_("Topic"),
    "mode": N_("Mode"),
    "planned_on": N_("Date"),
    "hours": N_("Hours"),
    "team_id": N_("Team"),
    "plan_period": N_("Plan"),
    "notes": N_("Notes"),
    "version": N_("Version"),
    "user_id": N_("Person"),
    "attended": N_("Attended"),
    "score": N_("Score"),
    "note": N_("Note"),
}
COURSE_FIELDS = ("title", "topic", "mode", "planned_on", "hours", "team_id", "plan_period", "notes")


@cache
def _environment() -> Environment:
    """The shared template environment with this package's templates in front."""
    env = template_environment()
    folder = resources.files("guanxi") / "training" / "templates"
    assert env.loader is not None  # noqa: S101 - template_environment always sets one
    env.loader = ChoiceLoader([FileSystemLoader(str(folder)), env.loader])
    return env


def render_training(
    request: Request, template: str, status_code: int = 200, **values: Any
) -> Response:
    """Render a training template with the shared context and the training labels."""
    lang = request_language(request)

    def tlabel(code: str | None) -> str:
        return i18n.gettext(lang, LABELS.get(code, code)) if code else ""

    helpers = {
        "tlabel": tlabel,
        "topics": [t.value for t in TrainingTopic],
        "modes": [m.value for m in TrainingMode],
        "plans": [p.value for p in PlanPeriod],
    }
    html = _environment().get_template(template).render(context(request, **helpers, **values))
    return HTMLResponse(html, status_code=status_code)


def _today(request: Request) -> date:
    return clock.now().astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    return text or None


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused change as {field path: message} in the reader's language ("" for a
    message about no one field)."""
    lang = request_language(request)
    if isinstance(exc, ValidationError):
        errors = field_errors_from_pydantic(list(exc.errors()))
    elif isinstance(exc, ValidationFailed):
        errors = exc.errors
    elif isinstance(exc, DomainError):
        field = str(exc.params.get("field", ""))
        params = {k: v for k, v in exc.params.items() if k != "field"}
        return {field: translate_code(exc.message, lang, params) or exc.message}
    else:  # pragma: no cover - callers pass only the types above
        raise exc
    out: dict[str, str] = {}
    for e in errors:
        key = ".".join(str(p) for p in e.loc)
        out.setdefault(key, translate_field_error(e, lang))
    return out


def _course_data(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {name: _text(form, name) for name in COURSE_FIELDS}
    # Empty optional fields fall back to their defaults.
    for name in ("hours", "plan_period"):
        if data[name] is None:
            data.pop(name)
    return data


# --------------------------------------------------------------------------- plans


def _plans_page(
    request: Request,
    session: SessionDep,
    *,
    year: int,
    plan: str | None,
    team: int | None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    courses = service.list_courses(
        session,
        date_from=date(year, 1, 1),
        date_to=date(year + 1, 1, 1),
        team_id=team,
        plan_period=plan,
    )
    teams = list_teams(session)
    return render_training(
        request,
        "training/plans.html",
        status_code=status_code,
        year=year,
        years=list(range(_today(request).year + 1, _today(request).year - 5, -1)),
        plan=plan or "",
        team=team,
        courses=courses,
        counts=service.attendance_counts(session, [c.id for c in courses]),
        teams=teams,
        team_names={t.id: t.name for t in teams},
        errors=errors or {},
        form=form or {"planned_on": _today(request).isoformat(), "hours": "1"},
        field_labels=FIELD_LABELS,
    )


@router.get("/training", response_class=HTMLResponse)
def plans_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    year: Annotated[int | None, Query(ge=2000, le=2099)] = None,
    plan: PlanPeriod | None = None,
    team: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """The year's training plans: courses by day, with attendance; a form to plan one."""
    return _plans_page(
        request,
        session,
        year=year or _today(request).year,
        plan=plan.value if plan else None,
        team=team,
    )


@router.post("/training/courses", response_class=HTMLResponse)
async def create_course(request: Request, session: SessionDep, user: Manager) -> Response:
    """Plan a course; on to its attendance sheet."""
    form = await request.form()
    data = _course_data(form)
    try:
        course = service.create_course(
            session, course_in=TrainingCourseCreate.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        planned = data.get("planned_on") or ""
        year = int(planned[:4]) if planned[:4].isdigit() and 2000 <= int(planned[:4]) else None
        return _plans_page(
            request,
            session,
            year=year or _today(request).year,
            plan=None,
            team=None,
            errors=_messages(request, exc),
            form={k: v for k, v in data.items() if v is not None},
            status_code=422,
        )
    return RedirectResponse(f"/training/courses/{course.id}", status_code=303)


# --------------------------------------------------------------------------- a course


def _course_form(course: TrainingCourse) -> dict[str, Any]:
    """A course's fields as the form shows them (hours 1.5, not 1.50; days ISO)."""
    out: dict[str, Any] = {}
    for name in COURSE_FIELDS:
        value = getattr(course, name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, float):
            value = f"{value:g}"
        if value is not None:
            out[name] = value
    return out


def _course_page(
    request: Request,
    session: SessionDep,
    course: TrainingCourse,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    sheet: dict[int, dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    lines = service.roster(session, course)
    on_roster = {line.user.id for line in lines}
    teams = list_teams(session)
    return render_training(
        request,
        "training/course.html",
        status_code=status_code,
        course=course,
        lines=lines,
        sheet=sheet or {},
        guests=[u for u in service.staff(session) if u.id not in on_roster],
        teams=teams,
        team_names={t.id: t.name for t in teams},
        errors=errors or {},
        form=form or _course_form(course),
        field_labels=FIELD_LABELS,
    )


@router.get("/training/courses/{course_id}", response_class=HTMLResponse)
def course_page(course_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """A course: what, when, for whom, and the attendance sheet."""
    return _course_page(request, session, service.get_course(session, course_id))


@router.post("/training/courses/{course_id}", response_class=HTMLResponse)
async def update_course(
    course_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Change a course (the version the editor saw travels in the form)."""
    form = await request.form()
    data = _course_data(form) | {"version": _text(form, "version")}
    try:
        service.update_course(
            session,
            course_id=course_id,
            course_in=TrainingCourseUpdate.model_validate(data),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        course = service.get_course(session, course_id)
        return _course_page(
            request,
            session,
            course,
            errors=_messages(request, exc),
            form={k: v for k, v in data.items() if v is not None},
            status_code=422,
        )
    return RedirectResponse(f"/training/courses/{course_id}", status_code=303)


@router.post("/training/courses/{course_id}/delete", response_class=HTMLResponse)
def delete_course(
    course_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Remove a course planned by mistake; back to the plans of its year."""
    removed = service.delete_course(session, course_id=course_id, actor=user)
    return RedirectResponse(f"/training?year={removed.planned_on.year}", status_code=303)


def _sheet_lines(form: FormData) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The attendance lines of the form (``user_id`` repeated; ``attended.<id>``,
    ``score.<id>``, ``note.<id>`` per person) and the values typed, per person."""
    lines: list[dict[str, Any]] = []
    typed: dict[int, dict[str, Any]] = {}
    for raw in form.getlist("user_id"):
        if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
            continue
        uid = int(raw)
        line = {
            "user_id": uid,
            "attended": form.get(f"attended.{uid}") == "1",
            "score": _text(form, f"score.{uid}"),
            "note": _text(form, f"note.{uid}"),
        }
        lines.append(line)
        typed[uid] = line
    # The last row adds someone not on the roster (a guest from another team).
    guest = form.get("guest_id")
    if isinstance(guest, str) and guest.isdigit() and len(guest) <= 18:
        lines.append(
            {
                "user_id": int(guest),
                "attended": form.get("attended.guest") == "1",
                "score": _text(form, "score.guest"),
                "note": _text(form, "note.guest"),
            }
        )
    return lines, typed


@router.post("/training/courses/{course_id}/records", response_class=HTMLResponse)
async def record_attendance(
    course_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Save the attendance sheet: everyone's attended box, score and note at once."""
    form = await request.form()
    lines, typed = _sheet_lines(form)
    try:
        service.record_attendance(
            session,
            course_id=course_id,
            sheet=AttendanceSheet.model_validate({"records": lines}),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        messages = _messages(request, exc)
        # records.<i>.<field> -> <field>.<user id>, the input beside which it is shown.
        shown: dict[str, str] = {}
        for key, text in messages.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "records" and parts[1].isdigit():
                index = int(parts[1])
                if index < len(lines):
                    shown[f"{parts[2]}.{lines[index]['user_id']}"] = text
                    continue
            shown[key] = text
        course = service.get_course(session, course_id)
        return _course_page(request, session, course, errors=shown, sheet=typed, status_code=422)
    return RedirectResponse(f"/training/courses/{course_id}?saved=1#sheet", status_code=303)


# --------------------------------------------------------------------------- a person


@router.get("/training/people/{user_id}", response_class=HTMLResponse)
def person_page(user_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """A person's training history: every course planned for them, attended or not, with
    the scores."""
    person = service.get_person(session, user_id)
    items = service.history(session, user_id=user_id)
    teams = list_teams(session)
    return render_training(
        request,
        "training/person.html",
        person=person,
        items=items,
        totals=service.totals(items),
        team_names={t.id: t.name for t in teams},
    )
