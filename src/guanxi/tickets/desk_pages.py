"""The desk settings page (``/desk``): SLA policy and priority matrix, category tree, teams
with their members, routing rules. Each form posts to its own route and comes back to the
page; a refused change is shown at the top, translated and naming the field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.core import i18n
from guanxi.core.errors import DomainError, FieldError, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.core.web import (
    field_errors_from_pydantic,
    request_language,
    translate_code,
    translate_field_error,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission, list_users
from guanxi.tickets import categories, desk, teams
from guanxi.tickets.enums import LABELS, Priority, Severity, TicketChannel, TicketType
from guanxi.tickets.schemas import CategoryIn, MemberIn, RuleIn, TeamIn
from guanxi.web.render import render

router = APIRouter()

Admin = Annotated[User, require(Permission.desk_configure)]


def _page(
    request: Request, session: SessionDep, errors: list[str] | None = None, code: int = 200
) -> Response:
    lang = request_language(request)

    def label(value: str) -> str:
        return i18n.gettext(lang, LABELS.get(value, value))

    all_teams = teams.list_teams(session)
    members = {t.id: teams.members_of(session, t.id) for t in all_teams}
    agents = [
        (u.id, u.display_name)
        for u in list_users(session)
        if u.is_active and has_permission(u, Permission.ticket_write)
    ]
    return render(
        request,
        "tickets/desk.html",
        status_code=code,
        errors=errors or [],
        policy=desk.load_policy(session),
        tree=categories.tree(session),
        teams=all_teams,
        members=members,
        rules=teams.list_rules(session),
        team_names={t.id: t.name for t in all_teams},
        agents=agents,
        types=[t.value for t in TicketType],
        severities=[s.value for s in Severity],
        priorities=[p.value for p in Priority],
        channels=[c.value for c in TicketChannel],
        label=label,
        lang=lang,
    )


def _refused(request: Request, session: SessionDep, exc: Exception) -> Response:
    """The page again with the reasons the change was refused."""
    lang = request_language(request)
    if isinstance(exc, ValidationError):
        errs = field_errors_from_pydantic(list(exc.errors()))
        shown = [f"{'.'.join(map(str, e.loc))}: {translate_field_error(e, lang)}" for e in errs]
    elif isinstance(exc, ValidationFailed):
        shown = [
            f"{'.'.join(map(str, e.loc))}: {translate_field_error(e, lang)}" for e in exc.errors
        ]
    elif isinstance(exc, DomainError):
        shown = [translate_code(exc.message, lang, exc.params) or exc.message]
    else:  # pragma: no cover - callers pass only the types above
        raise exc
    return _page(request, session, shown, 422)


def _done() -> Response:
    return RedirectResponse("/desk", status_code=303)


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


@router.get("/desk", response_class=HTMLResponse)
def desk_page(request: Request, session: SessionDep, user: Admin) -> Response:
    """Everything an administrator configures about the service desk."""
    return _page(request, session)


@router.post("/desk/policy", response_class=HTMLResponse)
async def save_policy(request: Request, session: SessionDep, user: Admin) -> Response:
    """Save the windows, the priority matrix and the SLA table."""
    form = await request.form()
    data: dict[str, Any] = {
        "reopen_days": _text(form, "reopen_days"),
        "repeat_days": _text(form, "repeat_days"),
        "major_amount_fen": _fen(_text(form, "major_amount_yuan")),
        "priority_matrix": {
            t.value: {s.value: _text(form, f"matrix.{t.value}.{s.value}") for s in Severity}
            for t in TicketType
        },
        "sla": [
            {
                "type": t.value,
                "priority": p.value,
                "first_response_hours": _text(form, f"sla.{t.value}.{p.value}.first"),
                "resolution_hours": _text(form, f"sla.{t.value}.{p.value}.resolution"),
                "business_hours": form.get(f"sla.{t.value}.{p.value}.business") == "1",
            }
            for t in TicketType
            for p in Priority
        ],
        "regulator": {
            "first_response_hours": _text(form, "regulator.first"),
            "resolution_hours": _text(form, "regulator.resolution"),
        },
    }
    try:
        desk.save_policy(session, policy=desk.DeskPolicy.model_validate(data), actor=user)
    except (ValidationError, DomainError) as exc:
        return _refused(request, session, exc)
    return _done()


def _fen(yuan: str | None) -> int | str | None:
    """Yuan as typed ("1000", "1000.5") to fen; anything else goes on to be refused."""
    if yuan is None:
        return None
    try:
        return round(float(yuan) * 100)
    except ValueError:
        return yuan


@router.post("/desk/categories", response_class=HTMLResponse)
async def add_category(request: Request, session: SessionDep, user: Admin) -> Response:
    """Add a category."""
    form = await request.form()
    try:
        body = CategoryIn.model_validate(
            {
                "code": _text(form, "code"),
                "parent_code": _text(form, "parent_code"),
                "name_zh": _text(form, "name_zh"),
                "name_en": _text(form, "name_en"),
                "skill": _text(form, "skill"),
                "position": _text(form, "position") or 0,
            }
        )
        categories.create_category(session, actor=user, **body.model_dump())
    except (ValidationError, DomainError) as exc:
        return _refused(request, session, exc)
    return _done()


@router.post("/desk/categories/{category_id}/toggle", response_class=HTMLResponse)
def toggle_category(
    category_id: PathId, request: Request, session: SessionDep, user: Admin
) -> Response:
    """Deactivate a category (no new tickets in it) or bring it back."""
    node = next((n for n in categories.tree(session) if n.id == category_id), None)
    try:
        categories.update_category(
            session,
            category_id=category_id,
            actor=user,
            active=not node.active if node is not None else False,
        )
    except DomainError as exc:
        return _refused(request, session, exc)
    return _done()


@router.post("/desk/teams", response_class=HTMLResponse)
async def save_team(request: Request, session: SessionDep, user: Admin) -> Response:
    """Add a team, or change one (``team_id`` in the form)."""
    form = await request.form()
    try:
        body = TeamIn.model_validate(
            {
                "code": _text(form, "code"),
                "name": _text(form, "name"),
                "work_hours": _text(form, "work_hours") or "09:00-12:00,13:00-18:00",
                "active": form.get("active", "1") == "1",
            }
        )
        team_id = int(str(form.get("team_id") or 0)) or None
        teams.save_team(session, actor=user, team_id=team_id, **body.model_dump())
    except (ValidationError, DomainError) as exc:
        return _refused(request, session, exc)
    return _done()


@router.post("/desk/teams/{team_id}/members", response_class=HTMLResponse)
async def set_member(
    team_id: PathId, request: Request, session: SessionDep, user: Admin
) -> Response:
    """Add an agent to the team, or change their skills and regions."""
    form = await request.form()
    try:
        body = MemberIn.model_validate(
            {
                "skills": _text(form, "skills"),
                "regions": _text(form, "regions"),
                "is_lead": form.get("is_lead") == "1",
                "accepting": form.get("accepting", "1") == "1",
            }
        )
        user_id = int(str(form.get("user_id") or 0))
        teams.set_member(session, actor=user, team_id=team_id, user_id=user_id, **body.model_dump())
    except ValueError:
        return _refused(request, session, ValidationFailed([_receiver()]))
    except (ValidationError, DomainError) as exc:
        return _refused(request, session, exc)
    return _done()


def _receiver() -> FieldError:
    return FieldError(("user_id",), "ticket_receiver", "This user cannot work tickets")


@router.post("/desk/teams/{team_id}/members/{user_id}/remove", response_class=HTMLResponse)
def remove_member(
    team_id: PathId, user_id: PathId, request: Request, session: SessionDep, user: Admin
) -> Response:
    """Take an agent out of the team."""
    try:
        teams.remove_member(session, actor=user, team_id=team_id, user_id=user_id)
    except DomainError as exc:
        return _refused(request, session, exc)
    return _done()


@router.post("/desk/rules", response_class=HTMLResponse)
async def add_rule(request: Request, session: SessionDep, user: Admin) -> Response:
    """Add a routing rule."""
    form = await request.form()
    try:
        body = RuleIn.model_validate(
            {
                "name": _text(form, "name"),
                "team_id": _text(form, "team_id"),
                "position": _text(form, "position") or 0,
                "ticket_type": _text(form, "ticket_type"),
                "category": _text(form, "category"),
                "channel": _text(form, "channel"),
                "region": _text(form, "region"),
                "skill": _text(form, "skill"),
                "strategy": _text(form, "strategy") or "least_loaded",
            }
        )
        teams.save_rule(
            session,
            actor=user,
            name=body.name,
            team_id=body.team_id,
            position=body.position,
            ticket_type=body.ticket_type.value if body.ticket_type else None,
            category=body.category,
            channel=body.channel.value if body.channel else None,
            region=body.region,
            skill=body.skill,
            strategy=body.strategy,
        )
    except (ValidationError, DomainError) as exc:
        return _refused(request, session, exc)
    return _done()


@router.post("/desk/rules/{rule_id}/delete", response_class=HTMLResponse)
def delete_rule(rule_id: PathId, request: Request, session: SessionDep, user: Admin) -> Response:
    """Remove a routing rule."""
    try:
        teams.delete_rule(session, actor=user, rule_id=rule_id)
    except DomainError as exc:
        return _refused(request, session, exc)
    return _done()
