"""HTML pages of audiences (``/campaigns/audiences``): the saved audiences, and the editor
whose count and masked sample follow the filters as they change (an htmx fragment,
re-asked half a second after the last change).

A refused save comes back to the editor with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, ImmutableMultiDict

from guanxi.analytics import labels as analytics_labels
from guanxi.analytics.policy import PROSPECT, SEGMENTS
from guanxi.campaigns import audiences as service
from guanxi.campaigns.audience_api import default_language
from guanxi.campaigns.models import Audience
from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn
from guanxi.core import i18n
from guanxi.core.errors import DomainError, FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import field_messages, request_language
from guanxi.customers.consent import Purpose
from guanxi.customers.enums import CustomerKind, LifecycleStage, SourceChannel
from guanxi.customers.validation import InvalidValue
from guanxi.imports.cleaning import parse_fen
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import list_users
from guanxi.web.render import context, environment

router = APIRouter()

Reader = Annotated[User, require(Permission.campaign_read)]
Manager = Annotated[User, require(Permission.campaign_manage)]

# Filters that are lists of codes, picked with checkboxes.
CHECKED = (
    "kinds",
    "sources",
    "lifecycle_stages",
    "languages",
    "segments",
    "relationships",
    "value_tiers",
    "frequency_classes",
    "churn_bands",
    "tiers",
    "consents",
    "owner_ids",
)
# Filters typed as text, several values separated by commas.
TYPED = ("industries", "regions", "tags_any", "tags_none")
# Whole numbers as typed; amounts in yuan typed for a field kept in fen.
NUMBERS = ("shipped_within_days", "no_shipment_for_days", "points_min", "points_max")
YUAN = {"clv_min_fen": "clv_min_yuan", "clv_max_fen": "clv_max_yuan"}


# The editor's fields as labelled (messages name the field).
FIELD_LABELS = {
    "name": N_("Audience name"),
    "description": N_("Description"),
    "version": N_("Version"),
    "archived_at": N_("Archived"),
    "kinds": N_("Customer kind"),
    "sources": N_("Source"),
    "industries": N_("Industries"),
    "lifecycle_stages": N_("Lifecycle stage"),
    "languages": N_("Language"),
    "regions": N_("Customer regions"),
    "tags_any": N_("Tags"),
    "tags_none": N_("Without the tags"),
    "segments": N_("Customer segments"),
    "relationships": N_("Relationship"),
    "value_tiers": N_("Value tier"),
    "frequency_classes": N_("Shipping frequency"),
    "churn_bands": N_("Churn risk"),
    "clv_min_yuan": N_("Lifetime value from (yuan)"),
    "clv_max_yuan": N_("Lifetime value up to (yuan)"),
    "shipped_within_days": N_("Shipped in the last (days)"),
    "no_shipment_for_days": N_("No shipment for at least (days)"),
    "tiers": N_("Membership tiers"),
    "points_min": N_("Points from"),
    "points_max": N_("Points up to"),
    "consents": N_("May be contacted for"),
    "owner_ids": N_("Owner"),
    "unowned": N_("No owner (the pool)"),
}


def _split(raw: str) -> list[str]:
    """A comma / 、 / newline separated text field as a list."""
    for sep in ("，", "、", "\n"):
        raw = raw.replace(sep, ",")
    return [p.strip() for p in raw.split(",") if p.strip()]


def definition_data(
    form: FormData | ImmutableMultiDict[str, Any],
) -> tuple[dict[str, Any], list[FieldError]]:
    """The editor's fields as a definition (validated later by the schema and the service),
    and the amounts that are not yuan."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    data: dict[str, Any] = {name: [str(v) for v in form.getlist(name)] for name in CHECKED}
    data.update({name: _split(text(name)) for name in TYPED})
    data.update({name: text(name) or None for name in NUMBERS})
    data["unowned"] = bool(text("unowned"))
    errors: list[FieldError] = []
    for name, field in YUAN.items():
        raw = text(field)
        if not raw:
            data[name] = None
            continue
        try:
            data[name] = parse_fen(raw)
        except InvalidValue as exc:
            errors.append(FieldError((field,), exc.code, exc.message))
    return data, errors


def _form_key(loc: tuple[str | int, ...]) -> str:
    """Where an error shows in the editor: its field (a list item's under its list; CLV
    under the yuan field the user typed)."""
    parts = [str(p) for p in loc if p != "definition"]
    key = parts[0] if parts else "definition"
    return YUAN.get(key, key)


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused save as {form field: message} in the reader's language."""
    return field_messages(request, exc, key=_form_key)


def _form_of(definition: AudienceDefinition) -> dict[str, Any]:
    """A definition as the editor's fields."""
    data = definition.model_dump(mode="json")
    for name, field in YUAN.items():
        fen = data.pop(name)
        data[field] = "" if fen is None else f"{fen // 100}.{fen % 100:02d}".rstrip("0").rstrip(".")
    return data


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    """Render an audience template with the shared context and the filters' choices."""
    lang = request_language(request)

    def alabel(code: str) -> str:
        return analytics_labels.name(code, lang)

    def flabel(name: str) -> str:
        return i18n.gettext(lang, FIELD_LABELS[name]) if name in FIELD_LABELS else name

    html = (
        environment()
        .get_template(template)
        .render(
            context(
                request,
                alabel=alabel,
                flabel=flabel,
                customer_kinds=[k.value for k in CustomerKind],
                sources=[s.value for s in SourceChannel],
                stages=[s.value for s in LifecycleStage],
                segments=[*SEGMENTS, PROSPECT],
                relationships=["loyal", "potential", "at_risk"],
                bands=["high", "medium", "low"],
                purposes=[p.value for p in Purpose],
                **values,
            )
        )
    )
    return HTMLResponse(html, status_code=status_code)


def _editor(
    request: Request,
    session: SessionDep,
    *,
    audience: Audience | None,
    name: str,
    description: str,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    from guanxi.loyalty.policy import load_policy

    lang = request_language(request)
    tiers = [(t.code, t.name(lang)) for t in load_policy(session).tiers]
    owners = [(u.id, u.display_name) for u in list_users(session) if u.is_active]
    return render(
        request,
        "campaigns/audience_edit.html",
        status_code=status_code,
        audience=audience,
        name=name,
        description=description,
        form=form,
        tiers=tiers,
        owners=owners,
        errors=errors or {},
    )


@router.get("/campaigns/audiences", response_class=HTMLResponse)
def audiences_page(
    request: Request, session: SessionDep, user: Reader, archived: bool = False
) -> Response:
    """The saved audiences (or the archived ones), each counted as it comes into view."""
    return render(
        request,
        "campaigns/audiences.html",
        audiences=service.list_audiences(session, archived=archived),
        archived=archived,
    )


@router.get("/campaigns/audiences/new", response_class=HTMLResponse)
def new_audience(request: Request, session: SessionDep, user: Manager) -> Response:
    """An empty editor (everyone, until filters are chosen)."""
    return _editor(
        request,
        session,
        audience=None,
        name="",
        description="",
        form=_form_of(AudienceDefinition()),
    )


@router.get("/campaigns/audiences/count", response_class=HTMLResponse)
def count_fragment(request: Request, session: SessionDep, user: Reader) -> Response:
    """The live count and a masked sample of the editor's filters (an htmx fragment)."""
    data, errors = definition_data(request.query_params)
    count, sample, messages = None, [], {}
    try:
        if errors:
            raise ValidationFailed(errors)
        definition = AudienceDefinition.model_validate(data)
        language = default_language(request)
        count = service.live_count(session, definition, default_language=language)
        sample = service.sample_members(session, definition, default_language=language)
    except (ValidationError, ValidationFailed) as exc:
        messages = _messages(request, exc)
    return render(
        request,
        "campaigns/audience_count.html",
        status_code=422 if messages else 200,
        count=count,
        sample=sample,
        errors=messages,
    )


def _saved(
    request: Request, session: SessionDep, user: User, form: FormData, audience_id: int | None
) -> Response:
    """Save the editor's audience, or show it again with the reasons it was refused."""
    data, errors = definition_data(form)
    name = str(form.get("name") or "").strip()
    description = str(form.get("description") or "").strip()
    version = str(form.get("version") or "").strip() or None
    audience = None if audience_id is None else service.get_audience(session, audience_id)
    try:
        if errors:
            raise ValidationFailed(errors)
        audience_in = AudienceIn.model_validate(
            {"name": name, "description": description, "definition": data, "version": version}
        )
        saved = service.save_audience(
            session, audience_in=audience_in, actor=user, audience_id=audience_id
        )
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        session.rollback()
        shown = {**data, **{field: str(form.get(field) or "") for field in YUAN.values()}}
        return _editor(
            request,
            session,
            audience=audience,
            name=name,
            description=description,
            form=shown,
            errors=_messages(request, exc),
            status_code=422 if isinstance(exc, ValidationError | ValidationFailed) else 409,
        )
    return RedirectResponse(f"/campaigns/audiences/{saved.id}?saved=1", status_code=303)


@router.post("/campaigns/audiences", response_class=HTMLResponse)
async def create_audience(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save a new audience; on to its page."""
    return _saved(request, session, user, await request.form(), None)


@router.get("/campaigns/audiences/{audience_id}", response_class=HTMLResponse)
def audience_page(
    audience_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """An audience's editor (read-only without campaign.manage) with its count and sample."""
    audience = service.get_audience(session, audience_id)
    return _editor(
        request,
        session,
        audience=audience,
        name=audience.name,
        description=audience.description,
        form=_form_of(service.definition_of(audience)),
    )


@router.post("/campaigns/audiences/{audience_id}", response_class=HTMLResponse)
async def update_audience(
    audience_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Save an audience's changes."""
    return _saved(request, session, user, await request.form(), audience_id)


@router.post("/campaigns/audiences/{audience_id}/archive", response_class=HTMLResponse)
def archive_audience(
    audience_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Archive an audience (a second click changes nothing)."""
    return _archive(audience_id, session, user, archived=True)


@router.post("/campaigns/audiences/{audience_id}/restore", response_class=HTMLResponse)
def restore_audience(
    audience_id: PathId, request: Request, session: SessionDep, user: Manager
) -> Response:
    """Bring an archived audience back."""
    return _archive(audience_id, session, user, archived=False)


def _archive(audience_id: int, session: SessionDep, user: User, *, archived: bool) -> Response:
    try:
        service.set_archived(session, audience_id=audience_id, archived=archived, actor=user)
    except DomainError as exc:
        if exc.status == 404:
            raise
        # Already archived / restored (a double click): the page shows the truth.
    return RedirectResponse(f"/campaigns/audiences/{audience_id}", status_code=303)


@router.get("/campaigns/audiences/{audience_id}/count", response_class=HTMLResponse)
def saved_count(
    audience_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    sample: Annotated[bool, Query()] = False,
) -> Response:
    """A saved audience's count now (an htmx fragment: the number alone for the list, with
    the masked sample for the audience's page)."""
    audience = service.get_audience(session, audience_id)
    definition = service.definition_of(audience)
    language = default_language(request)
    count = service.count_members(session, definition, default_language=language)
    members = (
        service.sample_members(session, definition, default_language=language) if sample else []
    )
    return render(
        request,
        "campaigns/audience_count.html",
        count=count,
        sample=members,
        brief=not sample,
        errors={},
    )
