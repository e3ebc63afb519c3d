"""HTML pages of sales (``/sales``): the pipeline board (drag a card to another stage, or
choose the stage on the card without scripts), an opportunity's page (edit, move, close as
lost with a reason, claim, assign, reopen, convert a web lead, the customer's contact log
and logging a contact), the weighted forecast (table, chart, CSV) and the sales teams with
the lost reasons. The public lead form lives in :mod:`guanxi.sales.forms`.

A refused change comes back to the same page with each message beside its field (or, on
the board, in a banner), in the reader's language; nothing is saved.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from guanxi.core import i18n
from guanxi.core.errors import DomainError
from guanxi.core.i18n import N_
from guanxi.core.ids import MAX_ID, PathId, QueryId
from guanxi.core.web import (
    ParsedForm,
    field_messages,
    request_language,
)
from guanxi.interactions.enums import InteractionKind
from guanxi.interactions.schemas import InteractionCreate
from guanxi.sales import forecast as figures
from guanxi.sales import forms, leads, service, teams
from guanxi.sales.api import CSV_HEADERS
from guanxi.sales.enums import CLOSED_STAGES, LABELS, OPEN_STAGES, Stage
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import (
    Assign,
    Convert,
    LostReasonIn,
    OpportunityCreate,
    OpportunityUpdate,
    Reopen,
    StageMove,
    TeamIn,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.web.render import render

router = APIRouter()
router.include_router(forms.router)

Seller = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]

# How many closed cards the board shows per closed column (the newest).
CLOSED_ON_BOARD = 12

FIELD_LABELS = {
    "title": N_("Opportunity title"),
    "customer_id": N_("Customer"),
    "stage": N_("Stage"),
    "owner_id": N_("Owner"),
    "expected_revenue": N_("Expected revenue (yuan)"),
    "probability": N_("Probability (%)"),
    "expected_close": N_("Expected close"),
    "next_step": N_("Next step"),
    "next_step_due": N_("Next step due"),
    "notes": N_("Notes"),
    "lost_reason": N_("Reason lost"),
    "reason": N_("Reason"),
    "version": N_("Version"),
    "name": N_("Name"),
    "manager_id": N_("Manager"),
    "member_ids": N_("Team members"),
    "code": N_("Code"),
    "label_zh": N_("Label (Chinese)"),
    "label_en": N_("Label (English)"),
    "kind": N_("Contact kind"),
    "summary": N_("What was said"),
    "occurred_at": N_("When"),
    "note": N_("Note"),
    "outcome": N_("Outcome"),
}


def render_sales(
    request: Request, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """Render a sales template with the shared context and the sales labels."""
    lang = request_language(request)

    def slabel(code: str | None) -> str:
        return i18n.gettext(lang, LABELS.get(code, code)) if code else ""

    return render(
        request,
        template,
        status_code,
        slabel=slabel,
        open_stages=[s.value for s in OPEN_STAGES],
        all_stages=[s.value for s in Stage],
        field_labels=FIELD_LABELS,
        **values,
    )


def status_of(exc: Exception) -> int:
    """The HTTP status a refused change answers with."""
    return exc.status if isinstance(exc, DomainError) else 422


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _yuan_to_fen(raw: str) -> Any:
    """A yuan amount typed in a form as fen (left as typed when it is not a number, so the
    schema names the field)."""
    if not raw:
        return 0
    try:
        yuan = float(raw.replace(",", ""))
    except ValueError:
        return raw
    # "inf" and "nan" parse as floats but are no amount: the schema refuses the text.
    return round(yuan * 100) if math.isfinite(yuan) else raw


def _fields(form: FormData) -> dict[str, Any]:
    return {
        "title": _text(form, "title"),
        "expected_revenue": _yuan_to_fen(_text(form, "expected_revenue")),
        "probability": _text(form, "probability") or None,
        "expected_close": _text(form, "expected_close") or None,
        "next_step": _text(form, "next_step") or None,
        "next_step_due": _text(form, "next_step_due") or None,
        "notes": _text(form, "notes") or None,
    }


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# --------------------------------------------------------------------------- board


def _owner_filter(owner: str | None, user: User) -> dict[str, Any]:
    if owner == "unowned":
        return {"unowned": True}
    if owner == "mine":
        return {"owner_id": user.id}
    if owner and owner.isdigit() and 0 < int(owner) <= MAX_ID:
        return {"owner_id": int(owner)}
    return {}


def _board(
    request: Request,
    session: Session,
    user: User,
    *,
    owner: str | None = None,
    banner: str | None = None,
    moved: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    where = _owner_filter(owner, user)
    open_ones = service.list_opportunities(
        session, viewer=user, stages=OPEN_STAGES, limit=1000, **where
    )
    closed: list[Opportunity] = []
    for stage in CLOSED_STAGES:
        closed += service.list_opportunities(
            session, viewer=user, stages=[stage], limit=CLOSED_ON_BOARD, **where
        )
    cards = service.reads(session, open_ones + closed)
    changeable = service.changeable_ids(session, user, open_ones)
    columns = {s.value: [c for c in cards if c.stage == s.value] for s in Stage}
    result = figures.forecast(session, viewer=user, **_forecast_owner(where))
    return render_sales(
        request,
        "sales/board.html",
        status_code,
        columns=columns,
        changeable=changeable,
        owners=service.assignable_users(session, user),
        owner=owner or "",
        banner=banner,
        moved=moved,
        total_weighted=result.total_weighted,
        total_expected=result.total_expected,
    )


def _forecast_owner(where: dict[str, Any]) -> dict[str, Any]:
    return {"owner_id": where["owner_id"]} if "owner_id" in where else {}


@router.get("/sales", response_class=HTMLResponse)
def board(
    request: Request,
    session: SessionDep,
    user: Seller,
    owner: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The pipeline board: a column per stage, the weighted total of what is shown."""
    return _board(request, session, user, owner=owner)


@router.post("/sales/opportunities/{opportunity_id}/stage", response_class=HTMLResponse)
def move_stage(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Seller, form: ParsedForm
) -> Response:
    """Move a card (the board's drag through htmx, or the card's select): the board comes
    back with the card where it now is, or with a banner saying why it did not move."""
    back = _text(form, "back")
    owner = _text(form, "owner") or None
    data = {
        "stage": _text(form, "stage"),
        "version": _text(form, "version"),
        "lost_reason": _text(form, "lost_reason") or None,
        "note": _text(form, "note") or None,
    }
    try:
        service.move_stage(
            session,
            opportunity_id=opportunity_id,
            move=StageMove.model_validate(data),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        errors = field_messages(request, exc)
        if back == "detail":
            return _detail(
                request, session, user, opportunity_id, errors=errors, status_code=status_of(exc)
            )
        lang = request_language(request)
        label = FIELD_LABELS.get(next(iter(errors)), "")
        banner = "; ".join(errors.values())
        if label:
            banner = f"{i18n.gettext(lang, label)}: {banner}"
        # htmx swaps only successful answers: the board with its banner comes back as 200.
        code = 200 if _is_htmx(request) else status_of(exc)
        return _board(
            request, session, user, owner=owner, banner=banner, moved=opportunity_id,
            status_code=code,
        )  # fmt: skip
    if back == "detail":
        return RedirectResponse(f"/sales/opportunities/{opportunity_id}", status_code=303)
    if _is_htmx(request):
        return _board(request, session, user, owner=owner, moved=opportunity_id)
    suffix = f"?owner={owner}" if owner else ""
    return RedirectResponse(f"/sales{suffix}", status_code=303)


# --------------------------------------------------------------------------- entering


def _new_form(
    request: Request,
    session: Session,
    user: User,
    *,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render_sales(
        request,
        "sales/new.html",
        status_code,
        form=form,
        errors=errors or {},
        owners=service.assignable_users(session, user),
        manager=service.is_manager(user),
    )


@router.get("/sales/opportunities/new", response_class=HTMLResponse)
def new_opportunity(
    request: Request,
    session: SessionDep,
    user: Seller,
    customer_id: QueryId = None,
) -> Response:
    """An empty form for an opportunity (of a customer, when coming from their page)."""
    return _new_form(
        request, session, user, form={"customer_id": customer_id or "", "stage": "lead"}
    )


@router.post("/sales/opportunities", response_class=HTMLResponse)
def create_opportunity(
    request: Request, session: SessionDep, user: Seller, form: ParsedForm
) -> Response:
    """Save a new opportunity; on to its page."""
    data = _fields(form)
    owner = _text(form, "owner_id")
    data.update(
        {
            "customer_id": _text(form, "customer_id") or None,
            "stage": _text(form, "stage") or "lead",
            "owner_id": owner if owner and owner != "unowned" else None,
            "unowned": owner == "unowned",
        }
    )
    try:
        created = service.create_opportunity(
            session, opportunity_in=OpportunityCreate.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        shown = {**data, "expected_revenue": _text(form, "expected_revenue"), "owner_id": owner}
        return _new_form(
            request, session, user, form=shown, errors=field_messages(request, exc),
            status_code=status_of(exc),
        )  # fmt: skip
    return RedirectResponse(f"/sales/opportunities/{created.id}", status_code=303)


# --------------------------------------------------------------------------- one opportunity


def _detail(
    request: Request,
    session: Session,
    user: User,
    opportunity_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    opportunity = service.get_opportunity(session, opportunity_id=opportunity_id, viewer=user)
    read = service.reads(session, [opportunity])[0]
    shown = form or {
        **read.model_dump(),
        "expected_revenue": f"{read.expected_revenue / 100:.2f}",
        "probability": opportunity.probability if opportunity.probability is not None else "",
    }
    return render_sales(
        request,
        "sales/opportunity.html",
        status_code,
        o=read,
        form=shown,
        errors=errors or {},
        can_change=service.can_change(session, user, opportunity),
        manager=service.is_manager(user),
        closed=Stage(opportunity.stage) in CLOSED_STAGES,
        history=service.history(session, opportunity_id=opportunity_id, viewer=user),
        interactions=service.interactions_of(session, opportunity_id=opportunity_id, viewer=user),
        interaction_kinds=[k.value for k in InteractionKind],
        lost_reasons=teams.list_lost_reasons(session),
        owners=service.assignable_users(session, user),
        user_names={u.id: u.display_name for u in service.assignable_users(session, user)},
    )


@router.get("/sales/opportunities/{opportunity_id}", response_class=HTMLResponse)
def opportunity_page(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Seller
) -> Response:
    """An opportunity: its facts, stage history, the customer's contact log and actions."""
    return _detail(request, session, user, opportunity_id)


@router.post("/sales/opportunities/{opportunity_id}", response_class=HTMLResponse)
def update_opportunity(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Seller, form: ParsedForm
) -> Response:
    """Save the edited fields."""
    data = {**_fields(form), "version": _text(form, "version")}
    try:
        service.update_opportunity(
            session,
            opportunity_id=opportunity_id,
            opportunity_in=OpportunityUpdate.model_validate(data),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        shown = {**data, "expected_revenue": _text(form, "expected_revenue")}
        return _detail(
            request, session, user, opportunity_id, errors=field_messages(request, exc),
            form=shown, status_code=status_of(exc),
        )  # fmt: skip
    return RedirectResponse(f"/sales/opportunities/{opportunity_id}", status_code=303)


def _action(
    request: Request,
    session: Session,
    user: User,
    opportunity_id: int,
    run: Any,
) -> Response:
    """Run one action on an opportunity; back to its page, with the message when refused."""
    try:
        run()
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _detail(
            request, session, user, opportunity_id, errors=field_messages(request, exc),
            status_code=status_of(exc),
        )  # fmt: skip
    return RedirectResponse(f"/sales/opportunities/{opportunity_id}", status_code=303)


@router.post("/sales/opportunities/{opportunity_id}/claim", response_class=HTMLResponse)
def claim(opportunity_id: PathId, request: Request, session: SessionDep, user: Seller) -> Response:
    """Take an unowned lead from the pool."""
    return _action(
        request,
        session,
        user,
        opportunity_id,
        lambda: service.claim(session, opportunity_id=opportunity_id, actor=user),
    )


@router.post("/sales/opportunities/{opportunity_id}/assign", response_class=HTMLResponse)
def assign(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Give the opportunity to a member of the team (or back to the pool)."""
    owner = _text(form, "owner_id")
    data = {"owner_id": owner if owner != "unowned" else None, "version": _text(form, "version")}
    return _action(
        request,
        session,
        user,
        opportunity_id,
        lambda: service.assign(
            session,
            opportunity_id=opportunity_id,
            assign_in=Assign.model_validate(data),
            actor=user,
        ),
    )


@router.post("/sales/opportunities/{opportunity_id}/reopen", response_class=HTMLResponse)
def reopen(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Reopen a won or lost opportunity, with the reason."""
    data = {"reason": _text(form, "reason"), "version": _text(form, "version")}
    return _action(
        request,
        session,
        user,
        opportunity_id,
        lambda: service.reopen(
            session,
            opportunity_id=opportunity_id,
            reopen_in=Reopen.model_validate(data),
            actor=user,
        ),
    )


@router.post("/sales/opportunities/{opportunity_id}/convert", response_class=HTMLResponse)
def convert(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Seller, form: ParsedForm
) -> Response:
    """Make a web lead a customer's (the customer number given, or a new enterprise)."""
    data = {
        "customer_id": _text(form, "customer_id") or None,
        "region": _text(form, "region") or None,
    }
    return _action(
        request,
        session,
        user,
        opportunity_id,
        lambda: leads.convert_lead(
            session,
            opportunity_id=opportunity_id,
            convert_in=Convert.model_validate(data),
            actor=user,
        ),
    )


@router.post("/sales/opportunities/{opportunity_id}/interactions", response_class=HTMLResponse)
def log_contact(
    opportunity_id: PathId, request: Request, session: SessionDep, user: Seller, form: ParsedForm
) -> Response:
    """Log a contact against the opportunity in the customer's contact log."""
    opportunity = service.get_opportunity(session, opportunity_id=opportunity_id, viewer=user)
    data = {
        "customer_id": opportunity.customer_id or 1,
        "kind": _text(form, "kind"),
        "summary": _text(form, "summary"),
        "outcome": _text(form, "outcome") or None,
    }
    return _action(
        request,
        session,
        user,
        opportunity_id,
        lambda: service.log_contact(
            session,
            opportunity_id=opportunity_id,
            interaction_in=InteractionCreate.model_validate(data),
            actor=user,
        ),
    )


# --------------------------------------------------------------------------- forecast


def _month_range(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(f"{raw}-01")
    except ValueError:
        return None


@router.get("/sales/forecast", response_class=HTMLResponse)
def forecast_page(
    request: Request,
    session: SessionDep,
    user: Seller,
    owner: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The weighted forecast by month and owner (table and chart), and per stage how the
    pipeline converts and how long opportunities stay."""
    lang = request_language(request)
    where = _forecast_owner(_owner_filter(owner, user))
    result = figures.forecast(
        session, viewer=user, unowned_label=i18n.gettext(lang, "Unowned"), **where
    )
    months = figures.by_month(result)
    no_date = i18n.gettext(lang, "No close date")
    chart = {
        "id": "sales-forecast",
        "type": "bar",
        "categories": [m or no_date for m, _e, _w in months],
        "axes": [{"suffix": ""}],
        "series": [
            {
                "name": i18n.gettext(lang, "Expected revenue (yuan)"),
                "type": "bar",
                "data": [round(e / 100, 2) for _m, e, _w in months],
            },
            {
                "name": i18n.gettext(lang, "Weighted revenue (yuan)"),
                "type": "bar",
                "data": [round(w / 100, 2) for _m, _e, w in months],
            },
        ],
    }
    return render_sales(
        request,
        "sales/forecast.html",
        forecast=result,
        months=months,
        no_date=no_date,
        charts=[chart] if months else [],
        stages=figures.stage_figures(session, viewer=user),
        owners=service.assignable_users(session, user),
        owner=owner or "",
    )


@router.get("/sales/forecast.csv")
def forecast_csv(
    request: Request,
    session: SessionDep,
    user: Seller,
    owner: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The forecast as a CSV file (amounts in yuan)."""
    lang = request_language(request)
    where = _forecast_owner(_owner_filter(owner, user))
    result = figures.forecast(
        session, viewer=user, unowned_label=i18n.gettext(lang, "Unowned"), **where
    )
    body = figures.to_csv(
        result, [i18n.gettext(lang, h) for h in CSV_HEADERS], i18n.gettext(lang, "No close date")
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sales-forecast.csv"'},
    )


# --------------------------------------------------------------------------- teams


def _teams_page(
    request: Request,
    session: Session,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    people = {u.id: u for u in teams.active_users(session)}
    return render_sales(
        request,
        "sales/teams.html",
        status_code,
        teams=teams.list_teams(session),
        reasons=teams.list_lost_reasons(session),
        people=people,
        sellers=[u for u in people.values() if has_permission(u, Permission.sales_pipeline)],
        managers=[u for u in people.values() if has_permission(u, Permission.sales_manage)],
        errors=errors or {},
        can_manage=service.is_manager(user),
    )


@router.get("/sales/teams", response_class=HTMLResponse)
def teams_page(request: Request, session: SessionDep, user: Seller) -> Response:
    """The sales teams and the lost reasons (managers edit them)."""
    return _teams_page(request, session, user)


def _team_in(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name"),
        "manager_id": _text(form, "manager_id") or None,
        "member_ids": [str(v) for v in form.getlist("member_ids") if str(v).strip()],
    }


@router.post("/sales/teams", response_class=HTMLResponse)
def create_team(request: Request, session: SessionDep, user: Manager, form: ParsedForm) -> Response:
    """Set up a team."""
    try:
        teams.save_team(session, team_in=TeamIn.model_validate(_team_in(form)), actor=user)
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _teams_page(
            request, session, user, errors=field_messages(request, exc), status_code=status_of(exc)
        )
    return RedirectResponse("/sales/teams", status_code=303)


@router.post("/sales/teams/{team_id}", response_class=HTMLResponse)
def update_team(
    team_id: PathId, request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Save a team's name, manager and members (or remove the team)."""
    try:
        if _text(form, "delete"):
            teams.delete_team(session, team_id=team_id, actor=user)
        else:
            teams.save_team(
                session, team_in=TeamIn.model_validate(_team_in(form)), actor=user, team_id=team_id
            )
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _teams_page(
            request, session, user, errors=field_messages(request, exc), status_code=status_of(exc)
        )
    return RedirectResponse("/sales/teams", status_code=303)


@router.post("/sales/lost-reasons", response_class=HTMLResponse)
def save_lost_reason(
    request: Request, session: SessionDep, user: Manager, form: ParsedForm
) -> Response:
    """Add a lost reason, or relabel / switch off one."""
    data = {
        "code": _text(form, "code"),
        "label_zh": _text(form, "label_zh"),
        "label_en": _text(form, "label_en"),
        "active": _text(form, "active") == "on",
    }
    try:
        teams.save_lost_reason(session, reason_in=LostReasonIn.model_validate(data), actor=user)
    except (ValidationError, DomainError) as exc:
        session.rollback()
        return _teams_page(
            request, session, user, errors=field_messages(request, exc), status_code=status_of(exc)
        )
    return RedirectResponse("/sales/teams", status_code=303)
